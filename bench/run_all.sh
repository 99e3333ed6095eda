#!/usr/bin/env bash
# Runs every evaluation/benchmark that exists, in CI mode when CI=true. Each writes bench/results/NAME.md.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
status=0
for name in schema_conformance pii_eval extraction_eval advisory_eval retrieval_eval constrained_decoding gateway_overhead audit_overhead faults claims_eval scale_out tracing_overhead; do
  entry=""
  [ -f "bench/$name/run.py" ] && entry="$PY bench/$name/run.py"
  [ -f "bench/$name/run.sh" ] && entry="bash bench/$name/run.sh"
  [ -z "$entry" ] && continue
  echo "== bench/$name"
  start=$(date +%s)
  if ! PYTHONPATH=src timeout 1500 $entry; then
    echo "bench/$name FAILED"; status=1
  fi
  echo "== bench/$name took $(( $(date +%s) - start ))s"
done
exit $status
