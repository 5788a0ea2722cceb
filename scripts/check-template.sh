#!/usr/bin/env bash
# Static checks of template.yaml, offline (no AWS account, no credentials, no network after
# the one-time checkov install). Run from anywhere; works from the repository root.
#
#   1. sam validate, and sam validate --lint (cfn-lint on the SAM template)
#   2. the SAM template expanded to CloudFormation (scripts/sam_transform.py), then cfn-lint
#      on that: zero errors and zero warnings
#   3. checkov (own virtualenv under ~/.cache/vehicle-ocr, from scripts/checkov-requirements.txt) on
#      template.yaml and on the expanded template; every skip is justified in the template
#      (resource Metadata: checkov: skip: - id/comment)
#
# Exits non-zero if any step fails; runs every step and prints a summary with timings.
#
# With TEMPLATE unset, both deployable templates are checked, side by side: template.yaml and
# its container-image variant build/template.local-engine.json (RecognizeFunction with the
# offline engine), derived from it by scripts/local_engine_template.py. TEMPLATE=FILE checks one.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="${VENV:-$ROOT/.venv}"
# checkov's virtualenv is shared by every clone of the project on this machine, one per version of its
# requirements (a fresh clone otherwise spent a minute installing it again).
CHECKOV_REQ_SHA="$(sha256sum "$ROOT/scripts/checkov-requirements.txt" | cut -c1-16)"
CACHE_HOME="${XDG_CACHE_HOME:-${HOME:+$HOME/.cache}}" # no HOME (some CI users): the repository's own
CHECKOV_VENV="${CHECKOV_VENV:-${CACHE_HOME:-$ROOT/.cache}/vehicle-ocr/checkov-$CHECKOV_REQ_SHA}"
TEMPLATE="${TEMPLATE:-}"
NAME="$(basename "${TEMPLATE%.*}")"
TRANSFORMED="build/$NAME.transformed.json"
REGION="${AWS_REGION:-us-east-1}"

# Nothing here talks to AWS, but botocore and sam want a region and some credentials to
# exist; dummy ones make sure nothing can use real ones by accident.
export AWS_REGION="$REGION" AWS_DEFAULT_REGION="$REGION"
export AWS_ACCESS_KEY_ID=offline-check AWS_SECRET_ACCESS_KEY=offline-check AWS_SESSION_TOKEN=offline-check
unset AWS_PROFILE AWS_DEFAULT_PROFILE
export SAM_CLI_TELEMETRY=0 BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false
export PYTHONWARNINGS=ignore

declare -a SUMMARY=()
FAILED=0

now() { date +%s.%N; }

step() { # step NAME COMMAND...
  local name="$1"; shift
  echo
  echo "==> [$name] $*"
  local start end rc
  start="$(now)"
  "$@"
  rc=$?
  end="$(now)"
  local took
  took="$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1fs", e - s }')"
  if [ "$rc" -eq 0 ]; then
    SUMMARY+=("PASS  $took  $name")
  else
    SUMMARY+=("FAIL  $took  $name (exit $rc)")
    FAILED=1
  fi
  echo "<== [$name] exit $rc in $took"
  return 0
}

ensure_checkov() { # one installer at a time per virtualenv (two clones may check at once)
  mkdir -p "$(dirname "$CHECKOV_VENV")"
  (
    if command -v flock >/dev/null; then flock 9; fi # no flock (macOS): unlocked, as before
    install_checkov
  ) 9> "$CHECKOV_VENV.lock"
}

install_checkov() {
  local req="scripts/checkov-requirements.txt"
  local stamp="$CHECKOV_VENV/.requirements.sha256"
  local want
  want="$(sha256sum "$req" | cut -d' ' -f1)"
  # Shared by clones and kept across upgrades of the machine: its interpreter must still run.
  if [ -x "$CHECKOV_VENV/bin/checkov" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] &&
    "$CHECKOV_VENV/bin/python" -c '' 2>/dev/null; then
    return 0
  fi
  echo "installing checkov into $CHECKOV_VENV (one time, about a minute)"
  # checkov pins an older boto3 than aws-sam-cli: keep it out of .venv.
  local py="" cand
  # First interpreter that actually runs (a pyenv shim can exist and still refuse).
  for cand in python3.12 python3.11 python3; do
    if "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 9))' >/dev/null 2>&1; then
      py="$cand"; break
    fi
  done
  [ -n "$py" ] || { echo "no usable python3 for checkov" >&2; return 1; }
  rm -rf "$CHECKOV_VENV"
  mkdir -p build
  if "$py" -m venv "$CHECKOV_VENV" &&
    "$CHECKOV_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req" > build/checkov-install.log 2>&1; then
    echo "$want" > "$stamp"
  else
    cat build/checkov-install.log >&2
    return 1
  fi
}

run_checkov() { # run_checkov FILE REPORT.json
  # One checkov run writing JSON to REPORT; the summary below prints every failed check,
  # and every skipped check with the justification taken from the template (a skip without
  # one fails). No network: --skip-download, no platform API key.
  mkdir -p "$(dirname "$2")"
  "$CHECKOV_VENV/bin/checkov" --skip-download --framework cloudformation --config-file .checkov.yaml \
    -f "$1" -o json > "$2" 2> "$2.stderr"
  local rc=$?
  if [ ! -s "$2" ]; then
    cat "$2.stderr" >&2
    return 1
  fi
  "$VENV/bin/python" - "$2" <<'PY' || rc=1
import json
import sys

report = json.load(open(sys.argv[1], encoding="utf-8"))
status = 0
for r in report if isinstance(report, list) else [report]:
    s = r.get("summary", {})
    results = r.get("results", {})
    print("checkov: passed {}, failed {}, skipped {}, parsing errors {}".format(
        s.get("passed"), s.get("failed"), s.get("skipped"), s.get("parsing_errors")))
    if s.get("parsing_errors"):
        print("  FAILED  checkov could not parse the template", file=sys.stderr)
        status = 1
    if not (s.get("passed") or s.get("failed") or s.get("skipped")):
        print("  FAILED  checkov ran no check (nothing recognised in the template?)", file=sys.stderr)
        status = 1
    for c in results.get("failed_checks", []):
        lines = c.get("file_line_range") or []
        print("  FAILED  {} {} on {} (lines {}): {}".format(
            c["check_id"], c.get("check_name", ""), c["resource"], lines, c.get("guideline") or ""))
        status = 1
    for c in results.get("skipped_checks", []):
        comment = (c.get("check_result") or {}).get("suppress_comment") or ""
        print("  skipped {} on {}: {}".format(c["check_id"], c["resource"], comment))
        if not comment.strip():
            print("  ^ skip without a justification", file=sys.stderr)
            status = 1
sys.exit(status)
PY
  return "$rc"
}

if [ -z "$TEMPLATE" ]; then
  # Both templates at once (two cores; each check is one process at a time). checkov is
  # installed first so that the two runs do not both install it.
  mkdir -p build
  ensure_checkov || exit 1
  "$VENV/bin/python" scripts/local_engine_template.py -o build/template.local-engine.json || exit 1
  TEMPLATE=template.yaml "$0" > build/check-template.template.log 2>&1 &
  main=$!
  TEMPLATE=build/template.local-engine.json "$0" > build/check-template.local-engine.log 2>&1 &
  image=$!
  wait "$main"; main_rc=$?
  wait "$image"; image_rc=$?
  cat build/check-template.template.log
  echo
  echo "######## the container-image variant (scripts/local_engine_template.py)"
  cat build/check-template.local-engine.log
  [ "$main_rc" -eq 0 ] && [ "$image_rc" -eq 0 ] || exit 1
  exit 0
fi

step "sam validate" "$VENV/bin/sam" validate --region "$REGION" -t "$TEMPLATE"
step "sam validate --lint" "$VENV/bin/sam" validate --lint --region "$REGION" -t "$TEMPLATE"
rm -f "$TRANSFORMED" # never lint a stale expansion
step "sam transform (offline)" "$VENV/bin/python" scripts/sam_transform.py -t "$TEMPLATE" -o "$TRANSFORMED" --region "$REGION"
if [ -f "$TRANSFORMED" ]; then
  step "cfn-lint (transformed)" "$VENV/bin/cfn-lint" --regions "$REGION" -- "$TRANSFORMED"
else
  SUMMARY+=("FAIL  -     cfn-lint (transformed): no $TRANSFORMED"); FAILED=1
fi
step "checkov install" ensure_checkov
if [ -x "$CHECKOV_VENV/bin/checkov" ]; then
  step "checkov ($TEMPLATE)" run_checkov "$TEMPLATE" "build/checkov-$NAME.json"
  [ -f "$TRANSFORMED" ] && step "checkov (transformed)" run_checkov "$TRANSFORMED" "build/checkov-$NAME.transformed.json"
fi

echo
echo "==== check-template summary: $TEMPLATE"
printf '%s\n' "${SUMMARY[@]}"
if [ "$FAILED" -ne 0 ]; then
  echo "check-template: FAILED"
  exit 1
fi
echo "check-template: all passed"
