//! What initializing a Node means: providerID, labels, addresses, taints.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeAddress, Taint};

use super::{
    addresses::{AddressError, desired_addresses},
    labels::{LabelError, desired_labels},
    taints::{SHUTDOWN_TAINT, UNINITIALIZED_TAINT, taints_of, without},
};
use crate::{PowerState, ServerFacts, provider_id::provider_id_for};

/// The changes that initialize a Node.
#[derive(Debug, Clone, PartialEq)]
pub struct InitPlan {
    /// `Some(id)` when `spec.providerID` is empty and must be set; an existing one is never changed.
    pub provider_id: Option<String>,
    /// The labels this CCM owns, to be merged into the Node's labels (all other labels are kept).
    pub labels: BTreeMap<String, String>,
    /// The complete address list (written through `nodes/status`, replacing the list).
    pub addresses: Vec<NodeAddress>,
    /// The complete taint list after initialization: the uninitialized taint removed (and a stale
    /// shutdown taint removed when the server runs); every other taint kept in order.
    pub taints: Vec<Taint>,
}

/// Why a Node cannot be initialized yet. The taint stays; the reason becomes a Warning event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitBlocked {
    /// The addresses cannot be decided (provided node IP not found, no IP at all, bad annotation).
    #[error(transparent)]
    Addresses(#[from] AddressError),
    /// A label value would be refused.
    #[error(transparent)]
    Label(#[from] LabelError),
}

impl InitBlocked {
    /// The Event reason for this block.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Addresses(AddressError::ProvidedIpNotFound { .. }) => "ProvidedNodeIPNotFound",
            Self::Addresses(AddressError::InvalidProvidedIp { .. }) => "InvalidProvidedNodeIP",
            Self::Addresses(AddressError::NoIpAddress { .. }) => "NoNodeAddresses",
            Self::Label(_) => "InvalidNodeLabel",
        }
    }
}

/// Plans the initialization of `node`, found to be `server`, in `region`.
pub fn plan_initialization(node: &Node, server: &ServerFacts, region: &str) -> Result<InitPlan, InitBlocked> {
    let addresses = desired_addresses(node, server)?;
    let labels = desired_labels(server, region)?;
    let has_provider_id = node
        .spec
        .as_ref()
        .and_then(|s| s.provider_id.as_deref())
        .is_some_and(|p| !p.is_empty());
    let provider_id = (!has_provider_id).then(|| provider_id_for(&server.uuid));
    let mut taints = without(taints_of(node), UNINITIALIZED_TAINT);
    if server.power == PowerState::Running {
        taints = without(&taints, SHUTDOWN_TAINT);
    }
    Ok(InitPlan {
        provider_id,
        labels,
        addresses,
        taints,
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{
        api::core::v1::{NodeSpec, NodeStatus},
        apimachinery::pkg::apis::meta::v1::ObjectMeta,
    };

    use super::*;
    use crate::{NicFacts, decide::addresses::PROVIDED_NODE_IP_ANNOTATION};

    fn taint(key: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        }
    }

    fn node(provider_id: Option<&str>, taints: Vec<Taint>, annotations: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some("worker-a".into()),
                labels: Some([("kubernetes.io/hostname".to_owned(), "worker-a".to_owned())].into()),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                provider_id: provider_id.map(Into::into),
                taints: Some(taints),
                ..NodeSpec::default()
            }),
            status: Some(NodeStatus::default()),
        }
    }

    fn server() -> ServerFacts {
        ServerFacts {
            uuid: "5f0c7b7e-0000-4000-8000-000000000001".into(),
            name: "worker-a".into(),
            cpu_mhz: 2000,
            mem_bytes: 4 << 30,
            power: PowerState::Running,
            nics: vec![NicFacts {
                vlan: false,
                ipv4: Some("203.0.113.7".parse().unwrap()),
                ipv6: None,
            }],
        }
    }

    #[test]
    fn full_plan_for_a_fresh_node() {
        let n = node(
            None,
            vec![taint(UNINITIALIZED_TAINT), taint("example.com/keep")],
            &[],
        );
        let plan = plan_initialization(&n, &server(), "zrh").unwrap();
        assert_eq!(
            plan.provider_id.as_deref(),
            Some("cloudsigma://5f0c7b7e-0000-4000-8000-000000000001")
        );
        assert_eq!(
            plan.labels["node.kubernetes.io/instance-type"],
            "cpu-2000-mem-4096"
        );
        assert_eq!(plan.labels["topology.kubernetes.io/zone"], "zrh");
        assert_eq!(plan.taints, vec![taint("example.com/keep")]);
        assert_eq!(plan.addresses.len(), 2);
    }

    #[test]
    fn existing_provider_id_is_never_changed() {
        let n = node(
            Some("cloudsigma://5f0c7b7e-0000-4000-8000-000000000001"),
            vec![taint(UNINITIALIZED_TAINT)],
            &[],
        );
        assert_eq!(
            plan_initialization(&n, &server(), "zrh").unwrap().provider_id,
            None
        );
    }

    #[test]
    fn stale_shutdown_taint_goes_when_running_and_stays_when_stopped() {
        let n = node(None, vec![taint(UNINITIALIZED_TAINT), taint(SHUTDOWN_TAINT)], &[]);
        assert!(
            plan_initialization(&n, &server(), "zrh")
                .unwrap()
                .taints
                .is_empty()
        );
        let mut stopped = server();
        stopped.power = PowerState::Stopped;
        let n = node(
            None,
            vec![taint(UNINITIALIZED_TAINT), taint(SHUTDOWN_TAINT)],
            &[(PROVIDED_NODE_IP_ANNOTATION, "203.0.113.7")],
        );
        assert_eq!(
            plan_initialization(&n, &stopped, "zrh").unwrap().taints,
            vec![taint(SHUTDOWN_TAINT)]
        );
    }

    #[test]
    fn blocked_when_the_provided_ip_is_missing() {
        let n = node(
            None,
            vec![taint(UNINITIALIZED_TAINT)],
            &[(PROVIDED_NODE_IP_ANNOTATION, "10.1.1.1")],
        );
        let err = plan_initialization(&n, &server(), "zrh").unwrap_err();
        assert_eq!(err.reason(), "ProvidedNodeIPNotFound");
        assert!(err.to_string().contains("10.1.1.1"));
    }

    #[test]
    fn blocked_on_an_invalid_region_label() {
        let n = node(None, vec![taint(UNINITIALIZED_TAINT)], &[]);
        let err = plan_initialization(&n, &server(), "bad region").unwrap_err();
        assert_eq!(err.reason(), "InvalidNodeLabel");
    }
}
