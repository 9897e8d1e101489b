#!/usr/bin/env bash
# SIEM content packs: export the rule pack as Sigma, `sigma check` it, convert it per SIEM with
# the generated processing pipelines, fail when the committed packs in connectors/ differ from
# what the rules give, build the Splunk app and run Splunk AppInspect on it.
#
#   .ci/content-packs.sh            check (what CI runs)
#   .ci/content-packs.sh --update   regenerate connectors/ after changing rules/ or the catalogue
#
# Needs python3 (3.11) with venv; installs the pinned toolchain from PyPI into
# $AIWARDEN_PACKS_VENV (default ~/.cache/aiwarden-packs-venv), once per requirements change.
set -euo pipefail
cd "$(dirname "$0")/.."

update=false
if [ "${1:-}" = "--update" ]; then update=true; fi

venv="${AIWARDEN_PACKS_VENV:-$HOME/.cache/aiwarden-packs-venv}"
requirements=.ci/content-packs-requirements.txt
if ! cmp -s "$requirements" "$venv/installed-requirements.txt" 2>/dev/null; then
  echo "== content packs: installing the Sigma and AppInspect toolchain into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/installed-requirements.txt"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== content packs: aiwarden rules export --format sigma"
cargo run --quiet --locked -- rules export --format sigma "$work/export" --rules-dir rules

echo "== content packs: sigma check"
# Left out: attacktag and d3_fendtag download MITRE data at run time (no internet in CI) and
# check only attack.*/d3fend.* tags, which the export does not write; namespace_tag knows no
# ATLAS namespace, and the ATLAS techniques are what these tags carry (atlas.aml.t0051).
"$venv/bin/sigma" check --fail-on-error --fail-on-issues \
  --exclude attacktag --exclude d3_fendtag --exclude namespace_tag "$work/export/rules"

echo "== content packs: convert per SIEM and build the packs"
cp -R connectors "$work/connectors"
rm -rf "$work/connectors/sigma/rules" "$work/connectors/sigma/pipelines"
cp -R "$work/export/rules" "$work/export/pipelines" "$work/export/skipped.md" "$work/connectors/sigma/"
"$venv/bin/python" connectors/sigma/convert.py --export "$work/export" --connectors "$work/connectors"

if $update; then
  rm -rf connectors
  cp -R "$work/connectors" connectors
  echo "connectors/ regenerated; review with git diff"
elif ! diff -ru connectors "$work/connectors"; then
  echo "error: the committed content packs are not what the rules give; run .ci/content-packs.sh --update and commit" >&2
  exit 1
fi

echo "== content packs: build the Splunk app and run AppInspect"
archive="$(bash connectors/splunk/build.sh "$work/app" | tail -n1)"
"$venv/bin/splunk-appinspect" inspect "$archive" --mode precert \
  --output-file "$work/appinspect.json" --data-format json >"$work/appinspect.log" 2>&1 || {
  cat "$work/appinspect.log"; exit 1; }
"$venv/bin/python" - "$work/appinspect.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
bad = [(check["result"], check["name"], [m["message"] for m in check["messages"]])
       for app in report["reports"] for group in app["groups"] for check in group["checks"]
       if check["result"] in ("failure", "error", "manual_check_failure")]
summary = report["summary"]
print("appinspect:", ", ".join(f"{k} {v}" for k, v in summary.items()))
for result, name, messages in bad:
    print(f"{result}: {name}: {messages}")
sys.exit(1 if bad or summary.get("failure", 0) or summary.get("error", 0) else 0)
PY
echo "content packs: OK"
