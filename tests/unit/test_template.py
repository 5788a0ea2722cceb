"""template.yaml as CloudFormation sees it: expanded offline by scripts/sam_transform.py (the
AWS::Serverless transform), then read for what S3 may invoke and what RecognizeFunction is told."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from scripts.sam_transform import main as sam_transform
from tests.conftest import ROOT
from vehicle_ocr.settings import Settings
from vehicle_ocr_local.template import LocalResources, load_template, local_name, parameter_defaults

# The images bucket's name, built by string (see the naming notes at the top of template.yaml).
IMAGES_BUCKET_NAME = "${AWS::StackName}-images-${AWS::AccountId}-${AWS::Region}"


@pytest.fixture(scope="module")
def transformed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    output = tmp_path_factory.mktemp("transform") / "template.json"
    assert sam_transform(["-t", str(ROOT / "template.yaml"), "-o", str(output), "--region", "us-east-1"]) == 0
    return json.loads(output.read_text(encoding="utf-8"))


def _of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in template["Resources"].items() if resource["Type"] == resource_type}


def test_s3_may_invoke_the_function_for_the_images_bucket_only(transformed):
    # Given the template expanded to CloudFormation
    resources = transformed["Resources"]
    assert resources["ImagesBucket"]["Properties"]["BucketName"] == {"Fn::Sub": IMAGES_BUCKET_NAME}
    # When the Lambda permissions granted to S3 are read
    s3_permissions = {
        name: resource["Properties"]
        for name, resource in _of_type(transformed, "AWS::Lambda::Permission").items()
        if resource["Properties"]["Principal"] == "s3.amazonaws.com"
    }
    # Then there is one, for RecognizeFunction, limited to exactly the images bucket (SourceArn)
    # of this account (SourceAccount), not to any bucket of the account
    assert len(s3_permissions) == 1, sorted(s3_permissions)
    ((name, permission),) = s3_permissions.items()
    assert permission["FunctionName"] in ({"Fn::GetAtt": ["RecognizeFunction", "Arn"]}, {"Ref": "RecognizeFunction"})
    assert permission["Action"] == "lambda:InvokeFunction"
    assert permission["SourceArn"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::" + IMAGES_BUCKET_NAME}
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}
    # And the bucket sets its notifications only once S3 may invoke the function
    assert name in resources["ImagesBucket"]["DependsOn"]


def test_the_images_bucket_notifies_the_function_for_both_prefixes(transformed):
    # Given the expanded template / When the images bucket's notifications are read
    configurations = transformed["Resources"]["ImagesBucket"]["Properties"]["NotificationConfiguration"]
    lambdas = configurations["LambdaConfigurations"]
    # Then every object created under either prefix, and nothing else, goes to RecognizeFunction
    assert {json.dumps(c["Function"]) for c in lambdas} == {json.dumps({"Fn::GetAtt": ["RecognizeFunction", "Arn"]})}
    assert [c["Event"] for c in lambdas] == ["s3:ObjectCreated:*", "s3:ObjectCreated:*"]
    prefixes = [rule["Value"] for c in lambdas for rule in c["Filter"]["S3Key"]["Rules"] if rule["Name"] == "prefix"]
    assert sorted(json.dumps(p) for p in prefixes) == sorted(
        json.dumps({"Ref": name}) for name in ("PlatePrefix", "LicensePrefix")
    )
    assert set(configurations) == {"LambdaConfigurations"}


def test_function_is_told_its_bucket_and_upstream_limits(transformed):
    # Given the expanded template
    parameters = transformed["Parameters"]
    # When RecognizeFunction's environment is read
    function = transformed["Resources"]["RecognizeFunction"]["Properties"]
    env = function["Environment"]["Variables"]
    # Then it names the images bucket by the bucket's own name string, so events from any other
    # bucket can be told apart
    assert env["IMAGES_BUCKET"] == {"Fn::Sub": IMAGES_BUCKET_NAME}
    # And the upstream limits come from parameters with their documented defaults and bounds
    assert env["UPSTREAM_TIMEOUT_RETRIES"] == {"Ref": "UpstreamTimeoutRetries"}
    assert env["UPSTREAM_MAX_ANSWER_BYTES"] == {"Ref": "UpstreamMaxAnswerBytes"}
    assert env["UPSTREAM_CALL_DEADLINE"] == {"Ref": "UpstreamCallDeadlineSeconds"}
    retries = parameters["UpstreamTimeoutRetries"]
    assert (retries["Type"], retries["Default"], retries["MinValue"], retries["MaxValue"]) == ("Number", 1, 0, 3)
    assert (parameters["UpstreamMaxAnswerBytes"]["Type"], parameters["UpstreamMaxAnswerBytes"]["Default"]) == (
        "Number",
        4194304,
    )
    assert (
        parameters["UpstreamCallDeadlineSeconds"]["Type"],
        parameters["UpstreamCallDeadlineSeconds"]["Default"],
    ) == ("Number", 30)
    assert all(parameters[name]["Description"] for name in ("UpstreamTimeoutRetries", "UpstreamMaxAnswerBytes"))


def test_local_stack_resolves_the_bucket_name_and_notifications_to_its_own_bucket():
    # Given the template's resources as the local stack names them (its bucket: vehicle-ocr-images)
    template = load_template()
    resources = LocalResources(parameters=parameter_defaults(template), template=template)
    for logical_id in template["Resources"]:
        resources.refs[logical_id] = local_name(logical_id)
        resources.arns[logical_id] = f"arn:aws:local:::{local_name(logical_id)}"
    resources.refs["ImagesBucket"] = "vehicle-ocr-images"
    # When RecognizeFunction's environment and the bucket's notifications are resolved locally
    env = resources.function_environment("RecognizeFunction")
    notifications = resources.lambda_notifications("ImagesBucket", "RecognizeFunction")
    # Then IMAGES_BUCKET is the local bucket (not the AWS name string), the upstream limits are
    # the parameter defaults, and both prefix filters reach the local bucket's notifications
    assert env["IMAGES_BUCKET"] == "vehicle-ocr-images"
    assert (env["UPSTREAM_TIMEOUT_RETRIES"], env["UPSTREAM_MAX_ANSWER_BYTES"], env["UPSTREAM_CALL_DEADLINE"]) == (
        "1",
        "4194304",
        "30",
    )
    assert [n["Filter"]["S3Key"]["Rules"] for n in notifications] == [
        [{"Name": "prefix", "Value": "plates/"}],
        [{"Name": "prefix", "Value": "vehicle-licenses/"}],
    ]


# --- retention -----------------------------------------------------------------------------------


def _resolve(template: dict[str, Any], parameters: dict[str, str], value: Any) -> Any:
    """``value`` as CloudFormation would deploy it with ``parameters``: conditions, Fn::If, NoValue, parameter Refs."""

    def condition(expression: Any) -> bool:
        ((name, arg),) = expression.items()
        if name == "Condition":
            return condition(template["Conditions"][arg])
        if name == "Fn::Not":
            return not condition(arg[0])
        if name == "Fn::And":
            return all(condition(item) for item in arg)
        if name == "Fn::Or":
            return any(condition(item) for item in arg)
        if name == "Fn::Equals":
            left, right = (resolve(item) for item in arg)
            return str(left) == str(right)
        raise AssertionError(f"condition {name} not evaluated by this test")

    def resolve(item: Any) -> Any:
        if isinstance(item, dict):
            if set(item) == {"Fn::If"}:
                name, when_true, when_false = item["Fn::If"]
                return resolve(when_true if condition(template["Conditions"][name]) else when_false)
            if set(item) == {"Ref"} and item["Ref"] in parameters:
                return parameters[item["Ref"]]
            resolved = {key: resolve(inner) for key, inner in item.items()}
            return {key: inner for key, inner in resolved.items() if inner != {"Ref": "AWS::NoValue"}}
        if isinstance(item, list):
            return [inner for inner in (resolve(inner) for inner in item) if inner != {"Ref": "AWS::NoValue"}]
        return item

    return resolve(value)


@pytest.mark.parametrize("days", ["1", "30", "365", "99999"])
def test_images_expire_after_the_image_retention_when_one_is_given(transformed, days):
    # Given the expanded template deployed with ImageRetentionDays set
    bucket = transformed["Resources"]["ImagesBucket"]["Properties"]
    # When the images bucket's lifecycle rules are resolved
    rules = _resolve(transformed, {"ImageRetentionDays": days}, bucket["LifecycleConfiguration"]["Rules"])
    # Then one enabled rule, for every object (no prefix or filter), expires current versions after
    # that many days and deletes noncurrent versions that many days after they became noncurrent
    retention = [rule for rule in rules if "ExpirationInDays" in rule]
    assert len(retention) == 1, rules
    (rule,) = retention
    assert rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] == days
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": days}
    assert not {"Prefix", "Filter", "TagFilters", "ObjectSizeGreaterThan"} & set(rule)


def test_images_are_kept_when_the_image_retention_is_empty(transformed):
    # Given the expanded template deployed with the default ImageRetentionDays (empty)
    parameters = transformed["Parameters"]
    assert parameters["ImageRetentionDays"]["Default"] == ""
    bucket = transformed["Resources"]["ImagesBucket"]["Properties"]
    # When the images bucket's lifecycle rules are resolved
    rules = _resolve(transformed, {"ImageRetentionDays": ""}, bucket["LifecycleConfiguration"]["Rules"])
    # Then no rule expires current versions: only the bucket's housekeeping of noncurrent versions remains
    assert [rule for rule in rules if "ExpirationInDays" in rule or "ExpirationDate" in rule] == []
    assert [rule["Id"] for rule in rules] == ["expire-noncurrent-versions"]


@pytest.mark.parametrize("name", ["ImageRetentionDays", "RecordRetentionDays"])
def test_retention_parameters_take_empty_or_a_whole_number_of_days(transformed, name):
    # Given a retention parameter: a String (a Number must be an integer or a float), empty by default
    parameter = transformed["Parameters"][name]
    assert (parameter["Type"], parameter["Default"]) == ("String", "")
    assert parameter["Description"] and parameter["ConstraintDescription"]
    # When values are checked against its AllowedPattern (CloudFormation matches the whole value)
    pattern = re.compile(parameter["AllowedPattern"])
    # Then empty and whole numbers of days pass; zero, signs, fractions, words and leading zeros do not
    assert all(pattern.fullmatch(value) for value in ("", "1", "30", "365", "99999"))
    assert not any(
        pattern.fullmatch(value) for value in ("0", "-1", "+3", "1.5", "30d", "thirty", "030", " 30", "100000")
    )


def test_results_table_ttl_and_the_record_retention_reach_the_function(transformed):
    # Given the expanded template
    resources = transformed["Resources"]
    # When the results table's TTL and RecognizeFunction's environment are read
    ttl = resources["ResultsTable"]["Properties"]["TimeToLiveSpecification"]
    env = resources["RecognizeFunction"]["Properties"]["Environment"]["Variables"]
    # Then the table's TTL attribute is expires_at, always enabled (bookkeeping items expire whatever
    # the retention; an item without the attribute is never deleted), and the function is told the
    # record retention, which decides whether records and sightings carry it (tests/unit/test_record_retention.py)
    assert ttl == {"AttributeName": "expires_at", "Enabled": True}
    assert env["RECORD_RETENTION_DAYS"] == {"Ref": "RecordRetentionDays"}


@pytest.mark.parametrize(("days", "retention"), [("", None), ("30", 30)])
def test_the_record_retention_parameter_becomes_the_functions_setting(days, retention):
    # Given the template's RecognizeFunction environment resolved with RecordRetentionDays (as the local stack does)
    template = load_template()
    resources = LocalResources(
        parameters={**parameter_defaults(template), "RecordRetentionDays": days}, template=template
    )
    for logical_id in template["Resources"]:
        resources.refs[logical_id] = local_name(logical_id)
        resources.arns[logical_id] = f"arn:aws:local:::{local_name(logical_id)}"
    env = resources.local_function_environment("RecognizeFunction")
    # When the function reads its settings from it
    # (the offline engine: locally the API keys come from the environment, and none is set here)
    settings = Settings.from_env({**env, "PLATE_PROVIDER": "local", "LICENSE_PROVIDER": "local"})
    # Then empty keeps records forever, a number of days is the retention
    assert settings.record_retention_days == retention


# --- least privilege -----------------------------------------------------------------------------


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        if isinstance(statement, dict) and "Fn::If" not in statement
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement.get("Action", [])
    return [actions] if isinstance(actions, str) else list(actions)


def test_recognize_function_reads_images_and_may_not_write_them(transformed):
    # Given RecognizeFunction's role as SAM expands it
    role = transformed["Resources"]["RecognizeFunctionRole"]
    # When its S3 statements are read
    s3 = [
        (statement, action) for statement in _statements(role) for action in _actions(statement) if action[:3] == "s3:"
    ]
    by_action = {action: statement["Resource"] for statement, action in s3}
    # Then GetObject and GetObjectVersion (the function reads by VersionId or IfMatch) on the images
    # bucket's objects, and ListBucket on the bucket itself only (kept so that a vanished object is
    # a 404, not a 403: see the template), and nothing else: no write, no wildcard, no other bucket
    objects = {"Fn::Sub": "arn:${AWS::Partition}:s3:::" + IMAGES_BUCKET_NAME + "/*"}
    assert by_action == {
        "s3:GetObject": objects,
        "s3:GetObjectVersion": objects,
        "s3:ListBucket": {"Fn::Sub": "arn:${AWS::Partition}:s3:::" + IMAGES_BUCKET_NAME},
    }
    assert all(statement["Effect"] == "Allow" and "Condition" not in statement for statement, _ in s3)


@pytest.mark.parametrize(
    ("function", "log_group"), [("RecognizeFunction", "RecognizeLogGroup"), ("QueryFunction", "QueryLogGroup")]
)
def test_each_function_may_write_logs_to_its_own_log_group_only(transformed, function, log_group):
    # Given a function's role: SAM attaches AWSLambdaBasicExecutionRole (logs on "*") to every role it generates
    resources = transformed["Resources"]
    role = resources[f"{function}Role"]["Properties"]
    assert resources[function]["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": log_group}}
    # When its permissions boundary is read
    boundary = role["PermissionsBoundary"]
    assert set(boundary) == {"Ref"}
    policy = resources[boundary["Ref"]]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    # Then the boundary allows no CloudWatch Logs action anywhere but the function's own log group
    # (and its streams), and leaves every other permission to the role's own policies
    assert all(statement["Effect"] == "Allow" for statement in statements)
    everything_else = [statement for statement in statements if "NotAction" in statement]
    assert [(s["NotAction"], s["Resource"]) for s in everything_else] == [("logs:*", "*")]
    logs = [statement for statement in statements if "Action" in statement]
    assert {action for statement in logs for action in _actions(statement)} == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    assert [statement["Resource"] for statement in logs] == [{"Fn::GetAtt": [log_group, "Arn"]}]


def test_the_event_bus_is_encrypted_with_the_stacks_key_and_eventbridge_may_use_it_for_that_bus(transformed):
    # Given the expanded template
    resources = transformed["Resources"]
    bus = resources["EventBus"]["Properties"]
    # When the bus and the key policy are read
    statements = {s["Sid"]: s for s in resources["DataKey"]["Properties"]["KeyPolicy"]["Statement"]}
    # Then the bus names the stack's key, and the key lets EventBridge use it for this bus only
    assert bus["KmsKeyIdentifier"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    events = statements["EventBridgeForTheStackBus"]
    assert events["Principal"] == {"Service": "events.amazonaws.com"}
    assert sorted(_actions(events)) == ["kms:Decrypt", "kms:GenerateDataKey"]
    bus_arn = events["Condition"]["StringEquals"]["kms:EncryptionContext:aws:events:event-bus:arn"]
    assert bus_arn == {
        "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/" + bus["Name"]["Fn::Sub"]
    }
    assert events["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_the_key_policy_names_the_roles_that_decrypt_the_results_table(transformed):
    # Given the expanded template
    resources = transformed["Resources"]
    statements = {s["Sid"]: s for s in resources["DataKey"]["Properties"]["KeyPolicy"]["Statement"]}
    # When the statement for the results table is read
    table = statements["ResultsTableDecryptForTheFunctionRoles"]
    # Then it allows kms:Decrypt through DynamoDB, to principals whose ARN is one of the two function roles
    assert (table["Effect"], _actions(table)) == ("Allow", ["kms:Decrypt"])
    assert table["Condition"]["StringEquals"]["kms:ViaService"] == {"Fn::Sub": "dynamodb.${AWS::Region}.amazonaws.com"}
    patterns = [pattern["Fn::Sub"] for pattern in table["Condition"]["ArnLike"]["aws:PrincipalArn"]]
    # And each pattern is exactly the path SAM gives that function's role (its name is generated)
    paths = [
        resources[f"{name}Role"]["Properties"]["Path"]["Fn::Sub"] for name in ("RecognizeFunction", "QueryFunction")
    ]
    assert patterns == [f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role{path}*" for path in paths]
    assert len(set(paths)) == 2 and all(path.startswith("/${AWS::StackName}-${AWS::Region}/") for path in paths)
    # And the account keeps administering the key (without it no one could change its policy)
    admin = statements["AccountAdministration"]
    assert (admin["Principal"], admin["Action"]) == (
        {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}},
        "kms:*",
    )
