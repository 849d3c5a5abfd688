//! What the node controllers count. The binary owns the registry and calls [`Metrics::register`].

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

type Labels = Vec<(&'static str, &'static str)>;

/// Node-controller metrics. Cheap to clone: clones share the same series.
#[derive(Clone, Debug)]
pub struct Metrics {
    reconciles: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    writes: Family<Labels, Counter>,
    cache: Family<Labels, Counter>,
    init_seconds: Histogram,
    tainted_nodes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            reconciles: Family::default(),
            errors: Family::default(),
            writes: Family::default(),
            cache: Family::default(),
            // 50 ms .. ~27 min
            init_seconds: Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.05, 2.0, 16,
            )),
            tainted_nodes: Gauge::default(),
        }
    }
}

impl Metrics {
    /// Registers every series under the `cloudsigma_ccm_` prefix.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "cloudsigma_ccm_node_reconciles",
            "Node reconciliations by controller (init, refresh, lifecycle) and result",
            self.reconciles.clone(),
        );
        registry.register(
            "cloudsigma_ccm_node_errors",
            "Node reconciliation errors by controller and reason",
            self.errors.clone(),
        );
        registry.register(
            "cloudsigma_ccm_node_writes",
            "Writes to Node objects by kind (status, update, delete)",
            self.writes.clone(),
        );
        registry.register(
            "cloudsigma_ccm_server_cache_requests",
            "Lookups of the shared server list by result (hit, miss)",
            self.cache.clone(),
        );
        registry.register(
            "cloudsigma_ccm_node_initialization_seconds",
            "Seconds from first seeing a Node with the uninitialized taint to removing it",
            self.init_seconds.clone(),
        );
        registry.register(
            "cloudsigma_ccm_uninitialized_nodes",
            "Nodes currently carrying the uninitialized taint, as last seen",
            self.tainted_nodes.clone(),
        );
    }

    /// A reconciliation of `controller` ended with `result` (`ok`, `error`, `blocked`).
    pub fn reconciled(&self, controller: &'static str, result: &'static str) {
        self.reconciles
            .get_or_create(&vec![("controller", controller), ("result", result)])
            .inc();
    }

    /// An error of `controller` for `reason`.
    pub fn error(&self, controller: &'static str, reason: &'static str) {
        self.errors
            .get_or_create(&vec![("controller", controller), ("reason", reason)])
            .inc();
    }

    /// A write of `kind` (`status`, `update`, `delete`) to a Node.
    pub fn write(&self, kind: &'static str) {
        self.writes.get_or_create(&vec![("kind", kind)]).inc();
    }

    /// How many writes of `kind` were counted (for tests and benchmarks).
    pub fn writes(&self, kind: &'static str) -> u64 {
        self.writes.get_or_create(&vec![("kind", kind)]).get()
    }

    /// The server list was served from the cache.
    pub fn cache_hit(&self) {
        self.cache.get_or_create(&vec![("result", "hit")]).inc();
    }

    /// The server list had to be fetched.
    pub fn cache_miss(&self) {
        self.cache.get_or_create(&vec![("result", "miss")]).inc();
    }

    /// A Node was initialized `seconds` after its taint was first seen.
    pub fn initialized(&self, seconds: f64) {
        self.init_seconds.observe(seconds);
    }

    /// The number of Nodes carrying the uninitialized taint.
    pub fn set_uninitialized(&self, n: usize) {
        self.tainted_nodes.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}
