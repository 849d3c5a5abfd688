//! The write floor: a minimal client making exactly the 2 writes per Node the ccm makes at
//! initialization (a `nodes/status` merge patch of the addresses, then one merge patch of providerID,
//! labels and taints guarded by `metadata.resourceVersion`), with the ccm's concurrency, against the
//! same apiserver. It knows the answers in advance, so it asks CloudSigma nothing.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{Node, NodeAddress};
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{WatchStreamExt, reflector, watcher},
};
use serde_json::json;

use crate::{
    error::{Error, Result},
    nodes::UNINITIALIZED,
};

/// What the floor client writes to one Node.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The Node as listed before the run (its resourceVersion is not needed: the status patch returns
    /// the fresh one).
    pub node: Node,
    /// The addresses to write.
    pub addresses: Vec<NodeAddress>,
    /// Labels to set.
    pub labels: BTreeMap<String, String>,
    /// providerID to set when the Node has none.
    pub provider_id: String,
}

/// The outcome of a floor run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Floor {
    /// Wall time of the 2N writes.
    pub elapsed: Duration,
    /// Writes made (2 per Node).
    pub writes: u64,
}

/// Makes the writes with `concurrency` Nodes in flight and times them.
pub async fn run(api: &Api<Node>, targets: Vec<Target>, concurrency: usize) -> Result<Floor> {
    let start = Instant::now();
    let writes: Vec<u64> = stream::iter(targets)
        .map(|t| initialize(api, t))
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    Ok(Floor {
        elapsed: start.elapsed(),
        writes: writes.iter().sum(),
    })
}

/// Like [`run`], with what any controller also has open while it writes: a watch of the Nodes
/// (`selector`) feeding a reflector store, started and synced before the timer starts. The difference
/// to [`run`] is the cost of watching, on the apiserver and in the client.
pub async fn run_watched(
    api: &Api<Node>,
    targets: Vec<Target>,
    concurrency: usize,
    selector: &str,
) -> Result<Floor> {
    let (reader, writer) = reflector::store();
    let events = watcher(api.clone(), watcher::Config::default().labels(selector))
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    let task = tokio::spawn(async move {
        futures::pin_mut!(events);
        while events.next().await.is_some() {}
    });
    let synced = tokio::time::timeout(Duration::from_secs(60), reader.wait_until_ready()).await;
    let result = match synced {
        Ok(Ok(())) => run(api, targets, concurrency).await,
        Ok(Err(e)) => Err(Error::Check(format!("floor watch: the store was dropped: {e}"))),
        Err(_) => Err(Error::Timeout {
            what: "the floor client's Node watch to sync".into(),
            after: Duration::from_secs(60),
        }),
    };
    task.abort();
    result
}

async fn initialize(api: &Api<Node>, t: Target) -> Result<u64> {
    let name = t.node.name_any();
    let status = json!({ "status": { "addresses": t.addresses } });
    let latest = api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .map_err(|e| Error::kube(format!("floor: patch status of {name}"), e))?;
    let taints: Vec<_> = latest
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|taint| taint.key != UNINITIALIZED)
        .collect();
    let mut spec = json!({ "taints": taints });
    if latest
        .spec
        .as_ref()
        .and_then(|s| s.provider_id.as_ref())
        .is_none()
    {
        spec["providerID"] = json!(t.provider_id);
    }
    let patch = json!({
        "metadata": { "resourceVersion": latest.metadata.resource_version, "labels": t.labels },
        "spec": spec,
    });
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::kube(format!("floor: patch {name}"), e))?;
    Ok(2)
}
