#!/usr/bin/env bash
# The Python OpenTelemetry SDK (with its OTLP/HTTP and OTLP/gRPC log exporters) in a virtual
# environment, for the exporter interop test (tests/it/inputs/python_sdk.rs). Idempotent: a
# second run with the same pinned requirements only checks the imports. Prints the interpreter.
#   AIWARDEN_OTEL_VENV   where the environment lives (default ~/.cache/aiwarden-otel-venv);
#                        the test looks there too, unless AIWARDEN_OTEL_PYTHON names one.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${AIWARDEN_OTEL_VENV:-$HOME/.cache/aiwarden-otel-venv}"
requirements="tests/fixtures/otel/requirements.txt"
python="$venv/bin/python"
stamp="$venv/.aiwarden-requirements"
imports="import opentelemetry.sdk._logs, opentelemetry.exporter.otlp.proto.http._log_exporter, opentelemetry.exporter.otlp.proto.grpc._log_exporter"

# The stamp holds the requirements the environment was built from: a change rebuilds it.
if [ -x "$python" ] && [ -f "$stamp" ] && cmp -s "$requirements" "$stamp" \
   && "$python" -c "$imports" 2>/dev/null; then
  echo "$python"
  exit 0
fi

echo "== installing the Python OpenTelemetry SDK into $venv (OTLP exporter interop test)" >&2
rm -rf "$venv"
# Debian's python3 lacks ensurepip until python3-venv is installed.
if ! python3 -m venv "$venv" >&2; then
  rm -rf "$venv"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >&2
  python3 -m venv "$venv" >&2
fi
"$python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
"$python" -c "$imports"
cp "$requirements" "$stamp"
echo "$python"
