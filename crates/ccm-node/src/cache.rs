//! One briefly cached, shared list of the account's servers for every reconcile.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::Mutex;

use crate::{
    ServerFacts,
    cloud::{Cloud, CloudError},
    metrics::Metrics,
};

/// A snapshot of all servers, indexed by UUID and by name.
#[derive(Debug, Default)]
pub struct Snapshot {
    servers: Vec<ServerFacts>,
    by_uuid: HashMap<String, usize>,
    by_name: HashMap<String, Vec<usize>>,
}

impl Snapshot {
    /// Builds the indexes over a complete server list.
    pub fn new(servers: Vec<ServerFacts>) -> Self {
        let mut by_uuid = HashMap::with_capacity(servers.len());
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::with_capacity(servers.len());
        for (i, s) in servers.iter().enumerate() {
            by_uuid.insert(s.uuid.to_ascii_lowercase(), i);
            by_name.entry(s.name.clone()).or_default().push(i);
        }
        Self {
            servers,
            by_uuid,
            by_name,
        }
    }

    /// The server with this UUID, if listed.
    pub fn by_uuid(&self, uuid: &str) -> Option<&ServerFacts> {
        self.by_uuid
            .get(&uuid.to_ascii_lowercase())
            .map(|&i| &self.servers[i])
    }

    /// Every server with exactly this name.
    pub fn by_name(&self, name: &str) -> Vec<&ServerFacts> {
        self.by_name
            .get(name)
            .map(|v| v.iter().map(|&i| &self.servers[i]).collect())
            .unwrap_or_default()
    }

    /// How many servers are listed.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// True when no server is listed.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }
}

/// Caches the server list for `ttl`; concurrent callers share one listing; failures are not cached.
pub struct ServerCache {
    cloud: Arc<dyn Cloud>,
    ttl: Duration,
    slot: Mutex<Option<(Instant, Arc<Snapshot>)>>,
    metrics: Metrics,
}

impl std::fmt::Debug for ServerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl ServerCache {
    /// A cache over `cloud` whose snapshots live `ttl`.
    pub fn new(cloud: Arc<dyn Cloud>, ttl: Duration, metrics: Metrics) -> Self {
        Self {
            cloud,
            ttl,
            slot: Mutex::new(None),
            metrics,
        }
    }

    /// The underlying cloud, for direct GETs.
    pub fn cloud(&self) -> &Arc<dyn Cloud> {
        &self.cloud
    }

    /// A snapshot no older than the TTL, listing the servers when needed.
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, CloudError> {
        let mut slot = self.slot.lock().await;
        if let Some((at, snap)) = slot.as_ref()
            && at.elapsed() < self.ttl
        {
            self.metrics.cache_hit();
            return Ok(Arc::clone(snap));
        }
        self.metrics.cache_miss();
        let servers = self.cloud.list_servers().await?;
        let snap = Arc::new(Snapshot::new(servers));
        *slot = Some((Instant::now(), Arc::clone(&snap)));
        Ok(snap)
    }

    /// The current snapshot if it is younger than `max_age`, without listing (for lookups that can use
    /// a somewhat older list when it contains what they look for).
    pub async fn recent(&self, max_age: Duration) -> Option<Arc<Snapshot>> {
        let slot = self.slot.lock().await;
        slot.as_ref()
            .filter(|(at, _)| at.elapsed() < max_age)
            .map(|(_, snap)| Arc::clone(snap))
    }

    /// Forgets the snapshot, so the next call lists again.
    pub async fn invalidate(&self) {
        *self.slot.lock().await = None;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::PowerState;

    struct Counting {
        lists: AtomicUsize,
        fail: bool,
    }

    #[async_trait]
    impl Cloud for Counting {
        async fn list_servers(&self) -> Result<Vec<ServerFacts>, CloudError> {
            self.lists.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            if self.fail {
                return Err(CloudError::Unavailable("503".into()));
            }
            Ok(vec![
                ServerFacts {
                    uuid: "A".into(),
                    name: "n".into(),
                    cpu_mhz: 1,
                    mem_bytes: 1,
                    power: PowerState::Running,
                    nics: vec![],
                },
                ServerFacts {
                    uuid: "b".into(),
                    name: "n".into(),
                    cpu_mhz: 1,
                    mem_bytes: 1,
                    power: PowerState::Running,
                    nics: vec![],
                },
            ])
        }
        async fn get_server(&self, uuid: &str) -> Result<ServerFacts, CloudError> {
            Err(CloudError::NotFound { uuid: uuid.into() })
        }
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_listing_and_errors_are_not_cached() {
        let cloud = Arc::new(Counting {
            lists: AtomicUsize::new(0),
            fail: false,
        });
        let cache = Arc::new(ServerCache::new(
            cloud.clone(),
            Duration::from_secs(10),
            Metrics::default(),
        ));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let c = cache.clone();
                tokio::spawn(async move { c.snapshot().await.unwrap().len() })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 2);
        }
        assert_eq!(cloud.lists.load(Ordering::SeqCst), 1);
        let snap = cache.snapshot().await.unwrap();
        assert_eq!(snap.by_uuid("a").unwrap().uuid, "A");
        assert_eq!(snap.by_name("n").len(), 2);
        assert!(snap.by_name("m").is_empty());

        let failing = Arc::new(Counting {
            lists: AtomicUsize::new(0),
            fail: true,
        });
        let cache = ServerCache::new(failing.clone(), Duration::from_secs(10), Metrics::default());
        assert!(cache.snapshot().await.is_err());
        assert!(cache.snapshot().await.is_err());
        assert_eq!(
            failing.lists.load(Ordering::SeqCst),
            2,
            "a failure must not be cached"
        );
    }

    #[tokio::test]
    async fn snapshots_expire() {
        let cloud = Arc::new(Counting {
            lists: AtomicUsize::new(0),
            fail: false,
        });
        let cache = ServerCache::new(cloud.clone(), Duration::from_millis(30), Metrics::default());
        cache.snapshot().await.unwrap();
        cache.snapshot().await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        cache.snapshot().await.unwrap();
        assert_eq!(cloud.lists.load(Ordering::SeqCst), 2);
    }
}
