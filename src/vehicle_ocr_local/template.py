"""Create the stack's stateful resources on an AWS emulator from template.yaml itself.

The template is the one source of truth: the table's keys and indexes, the queues and their
redrive, the bus and the bucket (and its notifications) are read from it, and so is the
RecognizeFunction's environment, with ``Ref``/``GetAtt``/``Sub`` resolved to the local resources.
A ``Sub`` that names a bucket the way its ``BucketName`` does (the template names the images
bucket by string to avoid a circular dependency) resolves to that bucket's local name.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
LOCAL_BUCKET = "vehicle-ocr-images"  # DESIGN.md: the local stack's bucket
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
# Locally the API keys come from the environment (DESIGN.md), not from these SSM parameters.
SSM_KEY_PARAMETERS = ("TIANAPI_KEY_PARAMETER", "APIZERO_KEY_PARAMETER")


# libyaml's parser where PyYAML has it: the pure-Python one takes 0.4 s over template.yaml.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CfnLoader(_SafeLoader):
    """YAML loader that turns CloudFormation short tags (!Ref, !Sub, ...) into their long form."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """The template as a dict (a copy of its own: callers may change it), parsed once per version of the file."""
    stat = path.stat()
    return copy.deepcopy(_parsed_template(path.resolve(), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _parsed_template(path: Path, _mtime_ns: int, _size: int) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def local_name(logical_id: str, prefix: str = "vehicle-ocr") -> str:
    """``FailureDeadLetterQueue`` → ``vehicle-ocr-failure-dead-letter-queue``."""
    return f"{prefix}-" + re.sub(r"(?<!^)(?=[A-Z])", "-", logical_id).lower()


@dataclass
class LocalResources:
    """Physical names of what was created, by logical id, and the template's parameter values."""

    parameters: dict[str, str]
    refs: dict[str, str] = field(default_factory=dict)  # what !Ref returns
    arns: dict[str, str] = field(default_factory=dict)  # what !GetAtt X.Arn returns
    template: dict[str, Any] = field(default_factory=dict)

    def resolve(self, value: Any) -> Any:
        """Resolve the intrinsic functions the function environment uses."""
        if isinstance(value, dict) and len(value) == 1:
            ((name, arg),) = value.items()
            if name == "Ref":
                return self._ref(arg)
            if name == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                if attribute == "Arn":
                    return self.arns[logical_id]
                if attribute in ("QueueUrl",):
                    return self.refs[logical_id]
                if attribute in ("QueueName", "Name"):
                    return self.refs[logical_id].rsplit("/", 1)[-1]
                raise KeyError(f"GetAtt {logical_id}.{attribute} is not emulated locally")
            if name == "Fn::Sub":
                bucket = self._bucket_named_by(value)
                if bucket is not None:
                    return bucket
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                return re.sub(
                    r"\$\{([^}!]+)\}",
                    lambda m: str(
                        self.resolve(variables[m.group(1)]) if m.group(1) in variables else self._ref(m.group(1))
                    ),
                    text,
                )
            if name == "Fn::Join":
                separator, items = arg
                return separator.join(str(self.resolve(item)) for item in items)
        if isinstance(value, dict):
            return {key: self.resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        return value

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": "vehicle-ocr",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if "." in name:  # ${Resource.Attribute} inside a Sub
            logical_id, attribute = name.split(".", 1)
            return self.resolve({"Fn::GetAtt": [logical_id, attribute]})
        return self.refs[name]

    def _bucket_named_by(self, value: Any) -> str | None:
        """The local name of the template's bucket whose ``BucketName`` is exactly ``value``, if any."""
        for logical_id, resource in resources_of_type(self.template, "AWS::S3::Bucket").items():
            if logical_id in self.refs and (resource.get("Properties") or {}).get("BucketName") == value:
                return self.refs[logical_id]
        return None

    def lambda_notifications(self, bucket: str, function: str) -> list[dict[str, Any]]:
        """The bucket's ``NotificationConfiguration.LambdaConfigurations`` that invoke ``function``, resolved."""
        properties = self.template["Resources"][bucket].get("Properties") or {}
        configurations = (properties.get("NotificationConfiguration") or {}).get("LambdaConfigurations") or []
        targets = ({"Fn::GetAtt": [function, "Arn"]}, {"Ref": function})
        return [
            self.resolve({name: value for name, value in configuration.items() if name != "Function"})
            for configuration in configurations
            if configuration.get("Function") in targets
        ]

    def function_environment(self, logical_id: str = "RecognizeFunction") -> dict[str, str]:
        """The function's environment as the template defines it (Globals merged), resolved locally."""
        globals_env = self.template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        resource = self.template["Resources"][logical_id]
        own_env = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        return {name: str(self.resolve(value)) for name, value in {**globals_env, **own_env}.items()}

    def local_function_environment(self, logical_id: str = "RecognizeFunction") -> dict[str, str]:
        """``function_environment`` as it runs here: without the SSM key parameters (keys come from the environment)."""
        env = self.function_environment(logical_id)
        for name in SSM_KEY_PARAMETERS:
            env.pop(name, None)
        return env


def parameter_defaults(template: dict[str, Any]) -> dict[str, str]:
    return {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}


def create_resources(
    session: Any,
    *,
    template: dict[str, Any] | None = None,
    parameters: dict[str, str] | None = None,
    bucket_name: str = LOCAL_BUCKET,
    prefix: str = "vehicle-ocr",
) -> LocalResources:
    """Create tables, queues, buses and buckets of ``template`` with ``session`` (pointed at the emulator)."""
    template = template or load_template()
    resources = LocalResources(parameters={**parameter_defaults(template), **(parameters or {})}, template=template)
    _create_tables(session.client("dynamodb"), template, resources, prefix)
    _create_queues(session.client("sqs"), template, resources, prefix)
    _create_buses(session.client("events"), template, resources, prefix)
    _create_buckets(session.client("s3"), template, resources, bucket_name)
    return resources


def _create_tables(client: Any, template: dict[str, Any], resources: LocalResources, prefix: str) -> None:
    for logical_id, resource in resources_of_type(template, "AWS::DynamoDB::Table").items():
        props = resource["Properties"]
        name = local_name(logical_id, prefix)
        request: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            request["GlobalSecondaryIndexes"] = [
                {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
                for index in props["GlobalSecondaryIndexes"]
            ]
        description = client.create_table(**request)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            client.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
            )
        resources.refs[logical_id] = name
        resources.arns[logical_id] = description["TableArn"]


def _create_queues(client: Any, template: dict[str, Any], resources: LocalResources, prefix: str) -> None:
    pending = dict(resources_of_type(template, "AWS::SQS::Queue"))
    while pending:  # dead-letter queues first: a redrive policy names its target's ARN
        progressed = False
        for logical_id, resource in list(pending.items()):
            props = resource.get("Properties", {})
            redrive = props.get("RedrivePolicy")
            target: str | None = None
            if redrive:
                target = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
                if target not in resources.arns:
                    continue
            attributes = {
                name: str(props[name])
                for name in ("MessageRetentionPeriod", "VisibilityTimeout", "DelaySeconds")
                if name in props
            }
            if redrive and target is not None:
                attributes["RedrivePolicy"] = json.dumps(
                    {"deadLetterTargetArn": resources.arns[target], "maxReceiveCount": int(redrive["maxReceiveCount"])}
                )
            url = client.create_queue(QueueName=local_name(logical_id, prefix), Attributes=attributes)["QueueUrl"]
            resources.refs[logical_id] = url
            resources.arns[logical_id] = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            del pending[logical_id]
            progressed = True
        if not progressed:
            raise ValueError(f"queues with unresolvable redrive targets: {sorted(pending)}")


def _create_buses(client: Any, template: dict[str, Any], resources: LocalResources, prefix: str) -> None:
    for logical_id in resources_of_type(template, "AWS::Events::EventBus"):
        name = local_name(logical_id, prefix)
        resources.arns[logical_id] = client.create_event_bus(Name=name)["EventBusArn"]
        resources.refs[logical_id] = name


def _create_buckets(client: Any, template: dict[str, Any], resources: LocalResources, bucket_name: str) -> None:
    buckets = resources_of_type(template, "AWS::S3::Bucket")
    # The images bucket is the one the function's S3 events name; any other bucket (access logs) gets a derived name.
    for logical_id, resource in buckets.items():
        name = bucket_name if logical_id == "ImagesBucket" else f"{bucket_name}-{local_name(logical_id, '')[1:]}"
        client.create_bucket(Bucket=name)
        versioning = resource.get("Properties", {}).get("VersioningConfiguration", {})
        if versioning.get("Status") == "Enabled":
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        resources.refs[logical_id] = name
        resources.arns[logical_id] = f"arn:aws:s3:::{name}"
