//! The writes the controllers make to Node objects, each counted.
//!
//! Addresses go through `nodes/status` as a JSON merge patch (the list is replaced wholesale, never
//! strategic-merged by its wrong `type` key); providerID, labels and taints go through the Node itself as
//! one JSON merge patch guarded by `metadata.resourceVersion`, so a concurrent writer gets us a 409
//! instead of being overwritten. No server-side apply on Nodes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeAddress, Taint};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams, Preconditions},
};
use serde_json::{Map, Value, json};

use crate::metrics::Metrics;

/// Writes to Nodes.
#[derive(Clone)]
pub struct NodeWriter {
    api: Api<Node>,
    metrics: Metrics,
}

impl std::fmt::Debug for NodeWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeWriter").finish_non_exhaustive()
    }
}

/// A change to a Node's metadata and spec.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetaSpecChange {
    /// Set `spec.providerID` (only ever when it is empty).
    pub provider_id: Option<String>,
    /// Labels to set (other labels are kept).
    pub labels: BTreeMap<String, String>,
    /// The complete new taint list, when it changes.
    pub taints: Option<Vec<Taint>>,
}

impl MetaSpecChange {
    /// True when applying it to `node` changes nothing.
    pub fn is_noop_for(&self, node: &Node) -> bool {
        let labels = node.metadata.labels.as_ref();
        self.provider_id.is_none()
            && self
                .labels
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            && self.taints.as_ref().is_none_or(|t| {
                t.as_slice()
                    == node
                        .spec
                        .as_ref()
                        .and_then(|s| s.taints.as_deref())
                        .unwrap_or(&[])
            })
    }
}

impl NodeWriter {
    /// A writer through this client.
    pub fn new(client: kube::Client, metrics: Metrics) -> Self {
        Self {
            api: Api::all(client),
            metrics,
        }
    }

    /// The Node API.
    pub fn api(&self) -> &Api<Node> {
        &self.api
    }

    /// Replaces `status.addresses` through the status subresource.
    pub async fn patch_addresses(&self, name: &str, addresses: &[NodeAddress]) -> Result<Node, kube::Error> {
        let patch = json!({ "status": { "addresses": addresses } });
        let node = self
            .api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        self.metrics.write("status");
        Ok(node)
    }

    /// Applies `change` to `node`, guarded by the Node's resourceVersion (a stale one gets 409).
    pub async fn apply_change(&self, node: &Node, change: &MetaSpecChange) -> Result<Node, kube::Error> {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let mut metadata = Map::new();
        metadata.insert("resourceVersion".into(), json!(node.metadata.resource_version));
        let current = node.metadata.labels.as_ref();
        let labels: Map<String, Value> = change
            .labels
            .iter()
            .filter(|(k, v)| current.and_then(|l| l.get(*k)) != Some(*v))
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        if !labels.is_empty() {
            metadata.insert("labels".into(), Value::Object(labels));
        }
        let mut spec = Map::new();
        if let Some(pid) = &change.provider_id {
            spec.insert("providerID".into(), json!(pid));
        }
        if let Some(taints) = &change.taints {
            spec.insert("taints".into(), json!(taints));
        }
        let patch = json!({ "metadata": metadata, "spec": spec });
        let node = self
            .api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        self.metrics.write("update");
        Ok(node)
    }

    /// Deletes `node`, only if it is still the same object (UID precondition).
    pub async fn delete(&self, node: &Node) -> Result<(), kube::Error> {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: node.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        self.api.delete(name, &params).await?;
        self.metrics.write("delete");
        Ok(())
    }
}

/// True when the error is a 409 Conflict.
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// True when the error is a 404 Not Found.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}
