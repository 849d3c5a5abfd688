//! The node controllers: initialization (event driven), address refresh and lifecycle (periodic).
//!
//! All three share one reflector store of Nodes (stripped of images and managed fields) and one
//! [`ServerCache`], so a burst of joining Nodes costs a handful of CloudSigma list calls.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::{FutureExt, StreamExt, future::Shared};
use k8s_openapi::api::core::v1::Node;
use kube::{
    Api, ResourceExt,
    runtime::{
        Controller, WatchStreamExt,
        controller::{Action, Config as ControllerConfig},
        reflector::{self, Store},
        watcher,
    },
};
use tracing::{debug, info, warn};

use crate::{
    cache::ServerCache,
    cloud::CloudError,
    decide::{
        self, InitBlocked, LifecycleDecision, Lookup, has_taint,
        lifecycle::{GoneState, LifecycleInput},
        taints::{SHUTDOWN_TAINT, UNINITIALIZED_TAINT, shutdown_taint, taints_of, without},
    },
    events::{EventKind, NodeEvents},
    lookup::{LookupError, find_server, provider_id},
    metrics::Metrics,
    provider_id::parse_provider_id,
    writes::{MetaSpecChange, NodeWriter, is_conflict, is_not_found},
};

/// Settings of the node controllers.
#[derive(Debug, Clone)]
pub struct NodeControllerConfig {
    /// The CloudSigma location of the cluster (region and zone labels).
    pub region: String,
    /// Address refresh period (`--node-status-update-frequency`, default 5 min).
    pub status_update_frequency: Duration,
    /// Lifecycle period (`--node-monitor-period`, default 30 s).
    pub monitor_period: Duration,
    /// Minimum time between the two not-found checks before deletion (`--node-delete-grace`, 60 s).
    pub delete_grace: Duration,
    /// `false` under `--disable-node-deletion`.
    pub deletion_enabled: bool,
    /// Nodes initialized in parallel (`--concurrent-node-syncs`).
    pub concurrency: u16,
    /// First retry delay of a Node that cannot be initialized.
    pub retry_base: Duration,
    /// Longest retry delay of a Node that cannot be initialized.
    pub retry_max: Duration,
}

impl NodeControllerConfig {
    /// The defaults, for `region`.
    pub fn new(region: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            status_update_frequency: Duration::from_secs(300),
            monitor_period: Duration::from_secs(30),
            delete_grace: Duration::from_secs(60),
            deletion_enabled: true,
            concurrency: 16,
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(300),
        }
    }
}

/// Why an initialization pass did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The server could not be found or looked for.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// The server was found but the Node cannot be initialized yet.
    #[error(transparent)]
    Blocked(#[from] InitBlocked),
    /// A Kubernetes write failed.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
}

impl ReconcileError {
    /// Low-cardinality reason, also the Event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Lookup(e) => e.reason(),
            Self::Blocked(e) => e.reason(),
            Self::Kube(_) => "KubernetesError",
        }
    }
}

struct Context {
    writer: NodeWriter,
    cache: Arc<ServerCache>,
    events: NodeEvents,
    metrics: Metrics,
    cfg: NodeControllerConfig,
    /// Node UID -> when its uninitialized taint was first seen.
    first_seen: Mutex<HashMap<String, Instant>>,
    /// Node name -> consecutive failed initialization passes.
    failures: Mutex<HashMap<String, u32>>,
    /// Node UID -> lifecycle memory.
    gone: Mutex<HashMap<String, GoneState>>,
    /// Node UID -> resourceVersions of that Node that still carried the uninitialized taint and that
    /// this process has since initialized (its own intermediate writes). A reconcile that sees one of
    /// them works on a stale copy from the store and waits for the newer version instead of writing.
    superseded: Mutex<HashMap<String, (Vec<String>, Instant)>>,
}

/// The node controllers, ready to run.
pub struct NodeControllers {
    client: kube::Client,
    ctx: Arc<Context>,
}

impl std::fmt::Debug for NodeControllers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeControllers")
            .field("config", &self.ctx.cfg)
            .finish_non_exhaustive()
    }
}

impl NodeControllers {
    /// Controllers acting on the cluster of `client`, finding servers through `cache`.
    pub fn new(
        client: kube::Client,
        cache: Arc<ServerCache>,
        cfg: NodeControllerConfig,
        metrics: Metrics,
        instance: Option<String>,
    ) -> Self {
        let ctx = Arc::new(Context {
            writer: NodeWriter::new(client.clone(), metrics.clone()),
            events: NodeEvents::new(client.clone(), instance),
            cache,
            metrics,
            cfg,
            first_seen: Mutex::default(),
            failures: Mutex::default(),
            gone: Mutex::default(),
            superseded: Mutex::default(),
        });
        Self { client, ctx }
    }

    /// Runs the three controllers until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let shutdown: Shared<futures::future::BoxFuture<'static, ()>> = shutdown.boxed().shared();
        let api: Api<Node> = Api::all(self.client.clone());
        let (reader, writer) = reflector::store();
        // Pages of 100 Nodes while listing (kube's default is 500): smaller transient buffers at start.
        let nodes = watcher(api, watcher::Config::default().page_size(100))
            .default_backoff()
            .modify(strip_node)
            .reflect(writer)
            .applied_objects();
        let ctx = Arc::clone(&self.ctx);
        let init = Controller::for_stream(nodes, reader.clone())
            .with_config(ControllerConfig::default().concurrency(ctx.cfg.concurrency))
            .graceful_shutdown_on(shutdown.clone())
            .run(reconcile, error_policy, Arc::clone(&ctx))
            .for_each(|res| async move {
                if let Err(e) = res {
                    debug!(error = %e, "node controller event");
                }
            });
        // kube-runtime's graceful shutdown lets running reconciles finish but first waits for the Node
        // store to be ready, which never happens while the API is unreachable: bound that wait, so a
        // SIGTERM always ends the process.
        let init = {
            let (shutdown, reader) = (shutdown.clone(), reader.clone());
            async move {
                let mut init = std::pin::pin!(init);
                tokio::select! {
                    () = &mut init => {}
                    () = shutdown => {
                        // A store that never got ready means no reconcile ever ran: nothing to wait for.
                        if reader.wait_until_ready().now_or_never().is_none() {
                            info!("stopping before the Node store was ever ready");
                            return;
                        }
                        if tokio::time::timeout(SHUTDOWN_GRACE, &mut init).await.is_err() {
                            warn!(grace = ?SHUTDOWN_GRACE,
                                  "node controller still busy after the shutdown grace; stopping it");
                        }
                    }
                }
            }
        };
        let refresh = periodic(ctx.cfg.status_update_frequency, shutdown.clone(), {
            let (ctx, reader) = (Arc::clone(&ctx), reader.clone());
            move || {
                let (ctx, reader) = (Arc::clone(&ctx), reader.clone());
                async move { refresh_addresses(&ctx, &reader).await }
            }
        });
        let lifecycle = periodic(ctx.cfg.monitor_period, shutdown.clone(), {
            let (ctx, reader) = (Arc::clone(&ctx), reader.clone());
            move || {
                let (ctx, reader) = (Arc::clone(&ctx), reader.clone());
                async move { monitor_lifecycle(&ctx, &reader).await }
            }
        });
        // The gauge of tainted Nodes follows the store on its own short period (a read of the store,
        // no request), so an alert on it does not wait for the address refresh.
        let gauge = periodic(UNINITIALIZED_GAUGE_PERIOD, shutdown.clone(), {
            let (ctx, reader) = (Arc::clone(&ctx), reader.clone());
            move || {
                count_uninitialized(&ctx, &reader);
                futures::future::ready(())
            }
        });
        info!(region = %ctx.cfg.region, "node controllers started");
        tokio::join!(init, refresh, lifecycle, gauge);
        info!("node controllers stopped");
    }
}

/// Drops the parts of a Node no controller reads, to keep the store small (about 1000 Nodes must fit in
/// a few MiB): managed fields, images, volumes, capacity, node info, every condition but `Ready`, every
/// annotation but `alpha.kubernetes.io/provided-node-ip`. Writes only ever send providerID, labels,
/// taints and addresses, so nothing dropped here can be lost on the server.
fn strip_node(node: &mut Node) {
    node.metadata.managed_fields = None;
    if let Some(annotations) = node.metadata.annotations.as_mut() {
        annotations.retain(|k, _| k == decide::addresses::PROVIDED_NODE_IP_ANNOTATION);
    }
    if let Some(status) = node.status.as_mut() {
        status.images = None;
        status.volumes_attached = None;
        status.volumes_in_use = None;
        status.capacity = None;
        status.allocatable = None;
        status.node_info = None;
        status.daemon_endpoints = None;
        status.config = None;
        if let Some(conditions) = status.conditions.as_mut() {
            conditions.retain(|c| c.type_ == "Ready");
        }
    }
}

async fn periodic<F, Fut>(
    period: Duration,
    shutdown: Shared<futures::future::BoxFuture<'static, ()>>,
    mut f: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = shutdown;
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = tick.tick() => f().await,
        }
    }
}

fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

async fn publish(ctx: &Context, node: &Node, kind: EventKind, reason: &str, note: String) {
    if let Err(e) = ctx.events.publish(node, kind, reason, &note).await {
        warn!(node = %node.name_any(), error = %e, "could not publish event");
    }
}

/// How long running reconciliations may take to finish after shutdown was asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How often `cloudsigma_ccm_uninitialized_nodes` is recounted from the Node store.
const UNINITIALIZED_GAUGE_PERIOD: Duration = Duration::from_secs(2);

fn count_uninitialized(ctx: &Context, reader: &Store<Node>) {
    let n = reader
        .state()
        .iter()
        .filter(|n| has_taint(n, UNINITIALIZED_TAINT))
        .count();
    ctx.metrics.set_uninitialized(n);
}

async fn reconcile(node: Arc<Node>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    if !has_taint(&node, UNINITIALIZED_TAINT) {
        return Ok(Action::await_change());
    }
    let uid = node.uid().unwrap_or_default();
    let stale = node.resource_version().is_some_and(|rv| {
        lock(&ctx.superseded)
            .get(&uid)
            .is_some_and(|(rvs, _)| rvs.contains(&rv))
    });
    if stale {
        debug!(node = %node.name_any(), "stale copy of a node this process initialized; waiting for the newer one");
        return Ok(Action::await_change());
    }
    let seen_at = *lock(&ctx.first_seen)
        .entry(uid.clone())
        .or_insert_with(Instant::now);
    let name = node.name_any();
    let result = initialize(&node, &ctx).await;
    match &result {
        Ok(()) => {
            lock(&ctx.first_seen).remove(&uid);
            lock(&ctx.failures).remove(&name);
            let secs = seen_at.elapsed().as_secs_f64();
            ctx.metrics.initialized(secs);
            ctx.metrics.reconciled("init", "ok");
            info!(node = %name, seconds = secs, "node initialized");
        }
        Err(e) => {
            let result = if matches!(e, ReconcileError::Kube(_)) {
                "error"
            } else {
                "blocked"
            };
            ctx.metrics.reconciled("init", result);
            ctx.metrics.error("init", e.reason());
            warn!(node = %name, reason = e.reason(), error = %e, "node stays uninitialized");
            publish(
                &ctx,
                &node,
                EventKind::Warning,
                e.reason(),
                format!("Node not initialized: {e}"),
            )
            .await;
        }
    }
    result.map(|()| Action::await_change())
}

async fn initialize(node: &Node, ctx: &Context) -> Result<(), ReconcileError> {
    let server = find_server(&ctx.cache, node).await?;
    let plan = decide::plan_initialization(node, &server, &ctx.cfg.region)?;
    let name = node.name_any();
    let current = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_deref())
        .unwrap_or(&[]);
    let mut seen_rvs: Vec<String> = node.resource_version().into_iter().collect();
    let mut latest = if current == plan.addresses.as_slice() {
        node.clone()
    } else {
        ctx.writer.patch_addresses(&name, &plan.addresses).await?
    };
    seen_rvs.extend(latest.resource_version());
    // One guarded update of providerID, labels and taints; on a conflict re-read and recompute the
    // taint list from the fresh Node (someone else may have added a taint).
    for attempt in 0..5 {
        let mut taints = without(taints_of(&latest), UNINITIALIZED_TAINT);
        if server.power == crate::PowerState::Running {
            taints = without(&taints, SHUTDOWN_TAINT);
        }
        let fresh_pid = provider_id(&latest).is_none();
        let change = MetaSpecChange {
            provider_id: plan.provider_id.clone().filter(|_| fresh_pid),
            labels: plan.labels.clone(),
            taints: Some(taints),
        };
        if change.is_noop_for(&latest) {
            return Ok(());
        }
        match ctx.writer.apply_change(&latest, &change).await {
            Ok(_) => {
                remember_superseded(ctx, node, seen_rvs);
                return Ok(());
            }
            Err(e) if is_conflict(&e) && attempt < 4 => {
                debug!(node = %name, "conflict updating node; re-reading");
                latest = ctx.writer.api().get(&name).await?;
                seen_rvs.extend(latest.resource_version());
                if !has_taint(&latest, UNINITIALIZED_TAINT) {
                    return Ok(());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn remember_superseded(ctx: &Context, node: &Node, rvs: Vec<String>) {
    let mut map = lock(&ctx.superseded);
    map.retain(|_, (_, at)| at.elapsed() < Duration::from_secs(600));
    map.insert(node.uid().unwrap_or_default(), (rvs, Instant::now()));
}

fn error_policy(node: Arc<Node>, _err: &ReconcileError, ctx: Arc<Context>) -> Action {
    let mut failures = lock(&ctx.failures);
    let n = failures.entry(node.name_any()).or_insert(0);
    *n = n.saturating_add(1);
    Action::requeue(backoff(ctx.cfg.retry_base, ctx.cfg.retry_max, *n))
}

/// Exponential backoff with up to 20 % jitter subtracted: base * 2^(n-1), capped at `max`.
pub fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    let capped = exp.min(max);
    let jitter = capped.mul_f64(rand::random::<f64>() * 0.2);
    capped.saturating_sub(jitter)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn our_uuid(node: &Node) -> Option<String> {
    provider_id(node).and_then(|p| parse_provider_id(p).ok())
}

async fn refresh_addresses(ctx: &Context, reader: &Store<Node>) {
    let nodes: Vec<Arc<Node>> = reader
        .state()
        .into_iter()
        .filter(|n| !has_taint(n, UNINITIALIZED_TAINT) && our_uuid(n).is_some())
        .collect();
    if nodes.is_empty() {
        return;
    }
    let snapshot = match ctx.cache.snapshot().await {
        Ok(s) => s,
        Err(e) => {
            ctx.metrics.error("refresh", e.metric_label());
            warn!(error = %e, "address refresh skipped: cannot list servers");
            return;
        }
    };
    let mut written = 0usize;
    for node in nodes {
        let Some(server) = our_uuid(&node).and_then(|u| snapshot.by_uuid(&u).cloned()) else {
            continue;
        };
        match decide::refreshed_addresses(&node, &server) {
            Ok(None) => {}
            Ok(Some(addresses)) => match ctx.writer.patch_addresses(&node.name_any(), &addresses).await {
                Ok(_) => written += 1,
                Err(e) => {
                    ctx.metrics.error("refresh", "kubernetes");
                    warn!(node = %node.name_any(), error = %e, "address refresh failed");
                }
            },
            Err(e) => {
                ctx.metrics.error("refresh", "addresses");
                warn!(node = %node.name_any(), error = %e, "addresses not refreshed");
            }
        }
    }
    ctx.metrics.reconciled("refresh", "ok");
    debug!(written, "address refresh done");
}

async fn monitor_lifecycle(ctx: &Context, reader: &Store<Node>) {
    let candidates: Vec<Arc<Node>> = reader
        .state()
        .into_iter()
        .filter(|n| (!is_ready(n) || has_taint(n, SHUTDOWN_TAINT)) && our_uuid(n).is_some())
        .collect();
    if candidates.is_empty() {
        return;
    }
    let snapshot = ctx.cache.snapshot().await;
    if let Err(e) = &snapshot {
        ctx.metrics.error("lifecycle", e.metric_label());
        warn!(error = %e, "lifecycle: cannot list servers; no node is changed");
    }
    for node in candidates {
        let Some(uuid) = our_uuid(&node) else { continue };
        let ready = is_ready(&node);
        let lookup = match (&snapshot, ready) {
            (_, true) => Lookup::Failed,
            (Err(_), false) => Lookup::Failed,
            (Ok(snap), false) => match snap.by_uuid(&uuid) {
                Some(server) => Lookup::Found(server.clone()),
                None => match ctx.cache.cloud().get_server(&uuid).await {
                    Ok(server) => Lookup::Found(server),
                    Err(CloudError::NotFound { .. }) => Lookup::ConfirmedNotFound,
                    Err(e) => {
                        ctx.metrics.error("lifecycle", e.metric_label());
                        warn!(node = %node.name_any(), error = %e, "lifecycle: server lookup failed; node kept");
                        Lookup::Failed
                    }
                },
            },
        };
        let uid = node.uid().unwrap_or_default();
        let state = lock(&ctx.gone).get(&uid).copied().unwrap_or_default();
        let decision = decide::decide_lifecycle(&LifecycleInput {
            ready,
            has_shutdown_taint: has_taint(&node, SHUTDOWN_TAINT),
            has_provider_id: true,
            lookup: &lookup,
            state,
            now: Instant::now(),
            grace: ctx.cfg.delete_grace,
            deletion_enabled: ctx.cfg.deletion_enabled,
        });
        let next = decision.next_state(state, &lookup);
        if next == GoneState::default() {
            lock(&ctx.gone).remove(&uid);
        } else {
            lock(&ctx.gone).insert(uid.clone(), next);
        }
        if let Err(e) = act(ctx, &node, &uuid, decision).await {
            ctx.metrics.error("lifecycle", "kubernetes");
            warn!(node = %node.name_any(), error = %e, "lifecycle action failed");
        }
    }
    ctx.metrics.reconciled("lifecycle", "ok");
}

async fn act(ctx: &Context, node: &Node, uuid: &str, decision: LifecycleDecision) -> Result<(), kube::Error> {
    let name = node.name_any();
    match decision {
        LifecycleDecision::Keep => Ok(()),
        LifecycleDecision::AddShutdownTaint | LifecycleDecision::RemoveShutdownTaint => {
            let add = decision == LifecycleDecision::AddShutdownTaint;
            let mut latest = node.clone();
            for attempt in 0..5 {
                let mut taints = without(taints_of(&latest), SHUTDOWN_TAINT);
                if add {
                    taints.push(shutdown_taint());
                }
                let change = MetaSpecChange {
                    taints: Some(taints),
                    ..MetaSpecChange::default()
                };
                if change.is_noop_for(&latest) {
                    return Ok(());
                }
                match ctx.writer.apply_change(&latest, &change).await {
                    Ok(_) => {
                        info!(node = %name, shutdown = add, "shutdown taint {}", if add { "added" } else { "removed" });
                        return Ok(());
                    }
                    Err(e) if is_conflict(&e) && attempt < 4 => latest = ctx.writer.api().get(&name).await?,
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
        LifecycleDecision::AwaitSecondCheck { .. } => {
            info!(node = %name, server = uuid, grace = ?ctx.cfg.delete_grace, "server not found; checking again after the grace period");
            Ok(())
        }
        LifecycleDecision::GoneButDeletionDisabled => {
            let note = format!(
                "Server {uuid} no longer exists; node deletion is disabled (--disable-node-deletion)"
            );
            publish(ctx, node, EventKind::Warning, "ServerGone", note).await;
            Ok(())
        }
        LifecycleDecision::Delete => {
            let note = format!(
                "Deleting node: server {uuid} no longer exists (confirmed twice, {:?} apart)",
                ctx.cfg.delete_grace
            );
            publish(ctx, node, EventKind::Normal, "DeletingNode", note).await;
            match ctx.writer.delete(node).await {
                Ok(()) => {
                    info!(node = %name, server = uuid, "node deleted: its server is gone");
                    lock(&ctx.gone).remove(&node.uid().unwrap_or_default());
                    Ok(())
                }
                Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(()),
                Err(e) => Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_secs(2);
        let max = Duration::from_secs(300);
        let b1 = backoff(base, max, 1);
        assert!(b1 <= base && b1 >= base.mul_f64(0.8), "{b1:?}");
        let b4 = backoff(base, max, 4);
        assert!(
            b4 <= Duration::from_secs(16) && b4 >= Duration::from_secs(12),
            "{b4:?}"
        );
        let b30 = backoff(base, max, 30);
        assert!(b30 <= max && b30 >= max.mul_f64(0.8), "{b30:?}");
    }
}
