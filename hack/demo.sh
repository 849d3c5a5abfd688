#!/usr/bin/env bash
# `make demo`: starts the genuine local control plane and shows how to reach it.
# (The CCM demo with the CloudSigma emulator is added with the ccm binary.)
set -euo pipefail
cd "$(dirname "$0")/.."
hack/local-kube.sh start
eval "$(hack/local-kube.sh env)"
echo
echo "The local control plane is running:"
kubectl --kubeconfig "$KUBECONFIG" get --raw /version; echo
kubectl --kubeconfig "$KUBECONFIG" get namespaces
echo
echo "Reach it with:   eval \"\$(hack/local-kube.sh env)\"; kubectl get nodes"
echo "Stop it with:    hack/local-kube.sh stop"
