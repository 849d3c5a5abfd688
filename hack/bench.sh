#!/usr/bin/env bash
# `make bench`: the node-controller benchmark (docs/performance.md).
#
#  1. builds the real `ccm` and the harness `ccm-bench` with the optimized `bench-release` profile;
#  2. starts a control plane of its own (genuine kube-apiserver v1.20.2 + etcd, own data dir and ports,
#     so it never touches the one the tests use);
#  3. runs ccm-bench for N = 100 and N = 1000 (emulator in-process, the ccm as a child process), prints
#     the tables and writes them into docs/performance.md between the `make bench` markers;
#  4. stops everything it started.
#
# Extra arguments go to ccm-bench (e.g. `hack/bench.sh --nodes 100`; `make bench BENCH_ARGS=...`).
# BENCH_UPDATE_DOC=0 leaves docs/performance.md alone. The kube-apiserver must have been built once
# (`hack/local-kube.sh build`, as `make test` and CI do); if it is missing it is built first, which takes
# 5-7 minutes more and is not part of the 15-minute budget.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'bench: %s\n' "$*" >&2; }
profile="${BENCH_PROFILE:-bench-release}"
export KUBE_LOCAL_DIR="${BENCH_KUBE_DIR:-/tmp/cloudsigma-k8s-bench-kube}"
export KUBE_LOCAL_APISERVER_PORT="${BENCH_APISERVER_PORT:-36443}"
export KUBE_LOCAL_ETCD_PORT="${BENCH_ETCD_PORT:-43790}"
export KUBE_LOCAL_ETCD_PEER_PORT="${BENCH_ETCD_PEER_PORT:-43800}"
out=target/bench
mkdir -p "$out"
pidfile="$out/ccm.pid"
total_start=$SECONDS

kube_started=0
cleanup() {
  # the ccm child of ccm-bench, if ccm-bench itself was killed before it could stop it
  if [ -f "$pidfile" ]; then
    pid="$(cat "$pidfile")"
    if [ -n "$pid" ] && grep -q "ccm" "/proc/$pid/cmdline" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
    rm -f "$pidfile"
  fi
  if [ "$kube_started" = 1 ]; then hack/local-kube.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

log "building ccm and ccm-bench with --profile $profile"
build_start=$SECONDS
cargo build --profile "$profile" -p ccm -p ccm-bench
build_seconds=$((SECONDS - build_start))
log "build took ${build_seconds} s"

log "starting the benchmark's own control plane on 127.0.0.1:$KUBE_LOCAL_APISERVER_PORT ($KUBE_LOCAL_DIR)"
hack/local-kube.sh stop >/dev/null 2>&1 || true
kube_started=1
hack/local-kube.sh start

doc_args=(--update-doc docs/performance.md)
[ "${BENCH_UPDATE_DOC:-1}" = 0 ] && doc_args=()
"target/$profile/ccm-bench" \
  --kubeconfig "$KUBE_LOCAL_DIR/kubeconfig" \
  --ccm-bin "target/$profile/ccm" \
  --profile "$profile" \
  --build-seconds "$build_seconds" \
  --log-dir "$out" \
  --pid-file "$pidfile" \
  "${doc_args[@]}" \
  "$@"
log "done in $((SECONDS - total_start)) s (build ${build_seconds} s)"
