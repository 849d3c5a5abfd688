#!/usr/bin/env bash
# Runs the whole test suite (unit + integration + control-plane e2e) the way CI does:
#   1. makes sure the local kube-apiserver is running (starts it if not, and stops it again afterwards);
#   2. runs every test of the workspace with cargo-nextest (or `cargo test` when nextest is absent);
#   3. fails unless every test named in hack/required-tests.txt ran and passed.
# Extra arguments go to the test runner (e.g. a filter).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'run-tests: %s\n' "$*" >&2; }

started_here=0
if ! hack/local-kube.sh status >/dev/null 2>&1; then
  hack/local-kube.sh start
  started_here=1
fi
cleanup() { if [ "$started_here" = 1 ]; then hack/local-kube.sh stop; fi; }
trap cleanup EXIT
eval "$(hack/local-kube.sh env)"

mkdir -p target
out=target/test-output.log
status=0
if cargo nextest --version >/dev/null 2>&1; then
  runner=nextest
  cargo nextest run --workspace --no-fail-fast "$@" 2>&1 | tee "$out" || status=$?
else
  runner=cargo-test
  log "cargo-nextest not found; using cargo test"
  cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$out" || status=$?
fi
[ "$status" = 0 ] || { log "tests failed (exit $status)"; exit "$status"; }

if [ $# -eq 0 ]; then
  missing=()
  while read -r name; do
    name="${name%%#*}"; name="$(echo "$name" | tr -d '[:space:]')"
    [ -n "$name" ] || continue
    if [ "$runner" = nextest ]; then
      grep -Eq "PASS \[.*\] .*[ :]${name}\$" "$out" || missing+=("$name")
    else
      grep -Eq "^test (.*::)?${name} \.\.\. ok\$" "$out" || missing+=("$name")
    fi
  done < hack/required-tests.txt
  if [ ${#missing[@]} -gt 0 ]; then
    log "these required tests did not run and pass: ${missing[*]}"
    exit 1
  fi
  log "all required control-plane tests ran and passed ($(grep -cv '^\s*\(#\|$\)' hack/required-tests.txt))"
fi
