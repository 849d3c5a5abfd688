//! Events about Nodes, as `core/v1` Events in the `default` namespace.
//!
//! Nodes are cluster-scoped. `events.k8s.io/v1` Events about cluster-scoped objects must live in
//! `kube-system` on Kubernetes up to 1.21 (and the kube-rs recorder puts them in `default`, which such
//! servers refuse), while `kubectl describe node` looks for `core/v1` Events whose `involvedObject` has an
//! empty namespace. So, like the kubelet and the upstream cloud controller manager, we write `core/v1`
//! Events in `default`. Repeats of the same (node, type, reason) within 10 minutes update one Event's
//! `count` instead of creating new objects.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::core::v1::{Event, EventSource, Node, ObjectReference},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
    jiff::Timestamp,
};
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;
use tokio::sync::Mutex;

/// Namespace of the Events about Nodes.
pub const EVENT_NAMESPACE: &str = "default";
/// `source.component` / `reportingComponent` of our Events.
pub const COMPONENT: &str = "cloudsigma-ccm";
const SERIES_TTL: Duration = Duration::from_secs(600);

/// Severity of an Event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `Normal`.
    Normal,
    /// `Warning`.
    Warning,
}

impl EventKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

struct Series {
    name: String,
    count: i32,
    last: Instant,
}

/// Publishes Events about Nodes.
pub struct NodeEvents {
    api: Api<Event>,
    instance: Option<String>,
    series: Mutex<HashMap<(String, EventKind, String), Series>>,
}

impl std::fmt::Debug for NodeEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeEvents")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl NodeEvents {
    /// Events written through `client`; `instance` (e.g. the pod name) goes into `reportingInstance`.
    pub fn new(client: kube::Client, instance: Option<String>) -> Self {
        Self {
            api: Api::namespaced(client, EVENT_NAMESPACE),
            instance,
            series: Mutex::default(),
        }
    }

    /// Records an Event about `node`. Failures are returned for logging; they never change a decision.
    pub async fn publish(
        &self,
        node: &Node,
        kind: EventKind,
        reason: &str,
        message: &str,
    ) -> Result<(), kube::Error> {
        let uid = node.uid().unwrap_or_default();
        let key = (uid, kind, reason.to_owned());
        let now = Timestamp::now();
        let mut series = self.series.lock().await;
        series.retain(|_, s| s.last.elapsed() < SERIES_TTL);
        if let Some(s) = series.get_mut(&key) {
            let patch = json!({
                "count": s.count + 1,
                "lastTimestamp": Time(now),
                "message": truncate(message),
            });
            match self
                .api
                .patch(&s.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    s.count += 1;
                    s.last = Instant::now();
                    return Ok(());
                }
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let node_name = node.name_any();
        let name = format!("{node_name}.{:x}", now.as_nanosecond());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(EVENT_NAMESPACE.into()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(node_name.clone()),
                uid: node.uid(),
                ..ObjectReference::default()
            },
            reason: Some(reason.to_owned()),
            message: Some(truncate(message)),
            type_: Some(kind.as_str().into()),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            source: Some(EventSource {
                component: Some(COMPONENT.into()),
                host: None,
            }),
            reporting_component: Some(COMPONENT.into()),
            reporting_instance: self.instance.clone(),
            ..Event::default()
        };
        self.api.create(&PostParams::default(), &event).await?;
        series.insert(
            key,
            Series {
                name,
                count: 1,
                last: Instant::now(),
            },
        );
        Ok(())
    }
}

fn truncate(message: &str) -> String {
    // The API limits an Event message to 1 KiB.
    let mut end = message.len().min(1000);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_owned()
}
