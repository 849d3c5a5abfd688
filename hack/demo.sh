#!/usr/bin/env bash
# `make demo`: the main job end to end on this machine.
#
#  1. starts the genuine local kube-apiserver (hack/local-kube.sh) and the CloudSigma emulator with
#     examples/seed.yaml (one user's account: web-1 and db-1 running, batch-1 stopped);
#  2. registers tainted Nodes the way kubelets with --cloud-provider=external do;
#  3. runs the real `ccm` with impersonation (service account demo-client acting as user@example.com)
#     and the CSI token controller;
#  4. shows the Nodes before and after, the Events, the CSI token Secret (without the token) and a few
#     metrics; then stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cloudsigma-demo.XXXXXX")"
pids=()
kube_started=0
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$kube_started" = 1 ]; then hack/local-kube.sh stop; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# The demo runs its own control plane (own data dir and ports), so it never touches the one the tests use.
export KUBE_LOCAL_DIR="${DEMO_KUBE_DIR:-/tmp/cloudsigma-k8s-demo-kube}"
export KUBE_LOCAL_APISERVER_PORT="${DEMO_APISERVER_PORT:-26443}"
export KUBE_LOCAL_ETCD_PORT="${DEMO_ETCD_PORT:-33790}"
export KUBE_LOCAL_ETCD_PEER_PORT="${DEMO_ETCD_PEER_PORT:-33800}"
say "Local control plane (genuine kube-apiserver v1.20.2) on 127.0.0.1:$KUBE_LOCAL_APISERVER_PORT"
hack/local-kube.sh stop >/dev/null 2>&1 || true
kube_started=1
hack/local-kube.sh start
eval "$(hack/local-kube.sh env)"
command -v kubectl >/dev/null || { echo "kubectl is missing: run 'hack/local-kube.sh deps'"; exit 1; }
k() { kubectl --kubeconfig "$KUBECONFIG" "$@"; }

say "Building ccm and cs-emulator (the first build takes several minutes)"
cargo build -q -p ccm -p cs-emulator
bin=target/debug

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"
metrics_port="$(free_port)"
say "CloudSigma emulator on 127.0.0.1:$port with examples/seed.yaml"
"$bin/cs-emulator" --listen "127.0.0.1:$port" --seed examples/seed.yaml >"$tmp/emulator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$port/api/2.0/locations/" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS -u user@example.com:pass "http://127.0.0.1:$port/api/2.0/servers/detail/" |
  python3 -c 'import json,sys; [print("  server %-8s %-8s %s" % (s["name"], s["status"], s["uuid"])) for s in json.load(sys.stdin)["objects"]]'

say "Registering Nodes as kubelets do (uninitialized taint; db-1 passes --node-ip of its VLAN NIC)"
register() { # name [provided-ip]
  local ann=""
  [ -n "${2:-}" ] && ann="  annotations: {alpha.kubernetes.io/provided-node-ip: \"$2\"}"
  k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $1
  labels: {kubernetes.io/hostname: $1, kubernetes.io/os: linux}
$ann
spec:
  taints: [{key: node.cloudprovider.kubernetes.io/uninitialized, value: "true", effect: NoSchedule}]
EOF
  # a kubelet with --node-ip seeds its InternalIP
  if [ -n "${2:-}" ]; then
    k patch node "$1" --subresource=status --type=merge \
      -p "{\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"$2\"},{\"type\":\"Hostname\",\"address\":\"$1\"}]}}" >/dev/null 2>&1 ||
    curl -fsS -X PATCH --cacert "$(dirname "$KUBECONFIG")/pki/ca.crt" -H "Authorization: Bearer $(cat "$(dirname "$KUBECONFIG")/token")" \
      -H 'Content-Type: application/merge-patch+json' "https://127.0.0.1:${KUBE_LOCAL_APISERVER_PORT:-16443}/api/v1/nodes/$1/status" \
      -d "{\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"$2\"},{\"type\":\"Hostname\",\"address\":\"$1\"}]}}" >/dev/null
  fi
}
register web-1
register db-1 192.168.50.11
register batch-1

show() {
  k get nodes -o custom-columns='NAME:.metadata.name,PROVIDER-ID:.spec.providerID,TAINTS:.spec.taints[*].key,ADDRESSES:.status.addresses[*].address'
  echo
  k get nodes -L node.kubernetes.io/instance-type -L topology.kubernetes.io/region -L topology.kubernetes.io/zone
}
say "Before"
show

say "Running ccm with impersonation (and --csi-token-enabled)"
CLOUDSIGMA_CLIENT_SECRET=demo-secret-not-for-production "$bin/ccm" \
  --region zrh \
  --impersonation-enabled --oauth-url "http://127.0.0.1:$port/oauth" --client-id demo-client \
  --user-email user@example.com \
  --api-url "http://127.0.0.1:$port/{region}/api/2.0/" \
  --direct-api-url "http://127.0.0.1:$port/{region}/direct/api/2.0/" \
  --impersonation-url "http://127.0.0.1:$port/{region}/direct/" \
  --allow-insecure-http \
  --kubeconfig "$KUBECONFIG" --cluster-name demo \
  --csi-token-enabled --csi-token-create-namespace \
  --metrics-bind-address "127.0.0.1:$metrics_port" --health-probe-bind-address 0 >"$tmp/ccm.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do
  left="$(k get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.spec.taints[*].key}{"\n"}{end}' |
    grep -E '^(web-1|db-1)=.*uninitialized' || true)"
  [ -z "$left" ] && break
  sleep 0.2
done
sleep 1

say "After"
show
say "Events (why batch-1 stays tainted: its VM is stopped, so it has no address)"
k get events -n default --field-selector reason!=Scheduled -o custom-columns='NODE:.involvedObject.name,TYPE:.type,REASON:.reason,MESSAGE:.message'
say "CSI token Secret in the tenant cluster (token not shown)"
k -n cloudsigma-csi get secret cloudsigma-token -o jsonpath='{range .metadata.labels}{end}type={.type} keys=' && \
  k -n cloudsigma-csi get secret cloudsigma-token -o go-template='{{range $k, $v := .data}}{{$k}} {{end}}' && echo
echo "expires_at=$(k -n cloudsigma-csi get secret cloudsigma-token -o jsonpath='{.data.expires_at}' | base64 -d)"
say "A few ccm metrics (http://127.0.0.1:$metrics_port/metrics)"
curl -fsS "http://127.0.0.1:$metrics_port/metrics" |
  grep -E '^cloudsigma_(ccm_node_writes_total|ccm_uninitialized_nodes|api_requests_total|auth_requests_total|csi_token_secret_writes_total)' |
  head -n 20 || echo "  (metrics endpoint did not answer)"
say "ccm log (first lines)"
sed 's/\x1b\[[0-9;]*m//g' "$tmp/ccm.log" | grep -v DEBUG | head -n 12
say "Done; stopping the emulator, ccm and the demo control plane"
