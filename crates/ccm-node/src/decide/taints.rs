//! The taints this CCM manages.

use k8s_openapi::api::core::v1::{Node, Taint};

/// Put on by a kubelet started with `--cloud-provider=external`; removed once the Node is initialized.
pub const UNINITIALIZED_TAINT: &str = "node.cloudprovider.kubernetes.io/uninitialized";
/// Put on a not-Ready Node whose server is stopped; removed when it runs again.
pub const SHUTDOWN_TAINT: &str = "node.cloudprovider.kubernetes.io/shutdown";

/// True when the Node carries a taint with this key (any effect).
pub fn has_taint(node: &Node, key: &str) -> bool {
    taints_of(node).iter().any(|t| t.key == key)
}

/// The Node's taints (empty when none).
pub fn taints_of(node: &Node) -> &[Taint] {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[])
}

/// The taints without any taint of this key; order of the others kept.
pub fn without(taints: &[Taint], key: &str) -> Vec<Taint> {
    taints.iter().filter(|t| t.key != key).cloned().collect()
}

/// The shutdown taint, as `NoSchedule`.
pub fn shutdown_taint() -> Taint {
    Taint {
        key: SHUTDOWN_TAINT.to_owned(),
        effect: "NoSchedule".to_owned(),
        ..Taint::default()
    }
}
