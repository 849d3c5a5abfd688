//! Test support: a genuine local kube-apiserver for integration tests.
//!
//! Integration tests reach a real Kubernetes control plane through this crate instead of a hand-written
//! fake. By default that is the kube-apiserver v1.20.2 + etcd pair run by `hack/local-kube.sh start`
//! (its kubeconfig is `$KUBE_LOCAL_DIR/kubeconfig`, default `/tmp/cloudsigma-k8s-kube/kubeconfig`);
//! setting `E2E_KUBECONFIG` points the same tests at any other cluster (kind, k3d, ...). When no control
//! plane answers, [`client`] fails with a message saying how to start one: such tests fail, they are
//! never skipped.
//!
//! # Sharing one control plane
//! All tests share the one control plane. Nodes are cluster-scoped and a CCM acts on every Node it sees,
//! so a test that creates Nodes or runs a CCM must hold [`exclusive`] for its whole run: the guard is a
//! file lock (it serializes test processes, which is how nextest runs tests) and, on acquisition, deletes
//! every Node left behind by an earlier test. Tests that only touch namespaced objects use their own
//! namespace (see [`unique_name`]) and need no lock.

use std::{
    fs::{File, OpenOptions},
    path::{Path, PathBuf},
    time::Duration,
};

use k8s_openapi::api::core::v1::Node;
use kube::{
    Api, Client, Config,
    api::{DeleteParams, ListParams},
    config::{KubeConfigOptions, Kubeconfig},
};

/// Environment variable naming a kubeconfig of an existing cluster to test against.
pub const E2E_KUBECONFIG: &str = "E2E_KUBECONFIG";
/// Environment variable overriding the data dir of `hack/local-kube.sh`.
pub const KUBE_LOCAL_DIR: &str = "KUBE_LOCAL_DIR";
/// The default data dir of `hack/local-kube.sh`.
pub const DEFAULT_KUBE_LOCAL_DIR: &str = "/tmp/cloudsigma-k8s-kube";

/// Why the test control plane could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No kubeconfig file where one was expected.
    #[error(
        "no Kubernetes control plane for tests: {path} does not exist. Start the local one with \
         `hack/local-kube.sh start` (or run `make test`), or set {E2E_KUBECONFIG} to a cluster's kubeconfig"
    )]
    NoKubeconfig {
        /// The path that was looked at.
        path: PathBuf,
    },
    /// The kubeconfig could not be read or used.
    #[error("cannot use kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The kubeconfig path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The control plane did not answer.
    #[error(
        "the Kubernetes control plane of {path} does not answer ({source}); is it running? \
         `hack/local-kube.sh status` tells, `hack/local-kube.sh start` starts it"
    )]
    Unreachable {
        /// The kubeconfig path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: kube::Error,
    },
    /// A Kubernetes API call made by the test support failed.
    #[error("kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    /// Objects left by earlier tests could not be removed.
    #[error("cleaning up the control plane failed: {0}")]
    Cleanup(String),
    /// The lock file could not be opened or locked.
    #[error("cannot lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// The kubeconfig tests use: `$E2E_KUBECONFIG` if set, else the local control plane's.
pub fn kubeconfig_path() -> PathBuf {
    if let Some(p) = std::env::var_os(E2E_KUBECONFIG).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let dir = std::env::var_os(KUBE_LOCAL_DIR)
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_KUBE_LOCAL_DIR), PathBuf::from);
    dir.join("kubeconfig")
}

/// A client configuration for the test control plane, read from [`kubeconfig_path`].
pub async fn config() -> Result<Config, Error> {
    let path = kubeconfig_path();
    if !path.exists() {
        return Err(Error::NoKubeconfig { path });
    }
    let kubeconfig = Kubeconfig::read_from(&path).map_err(|e| Error::Kubeconfig {
        path: path.clone(),
        source: Box::new(e),
    })?;
    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| Error::Kubeconfig {
            path,
            source: Box::new(e),
        })
}

/// A `kube::Client` for the test control plane, after checking that it answers.
pub async fn client() -> Result<Client, Error> {
    let path = kubeconfig_path();
    let client = Client::try_from(config().await?).map_err(|e| Error::Kubeconfig {
        path: path.clone(),
        source: Box::new(e),
    })?;
    client
        .apiserver_version()
        .await
        .map_err(|source| Error::Unreachable { path, source })?;
    Ok(client)
}

/// A name no other test run uses: `<prefix>-<8 hex digits>`, valid as a Kubernetes object name.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..8])
}

/// Exclusive use of the shared control plane's cluster-scoped objects (Nodes) for one test.
///
/// Released when dropped. Holds an OS file lock, so it serializes tests across processes.
pub struct ExclusiveCluster {
    client: Client,
    _lock: File,
}

impl std::fmt::Debug for ExclusiveCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExclusiveCluster").finish_non_exhaustive()
    }
}

impl ExclusiveCluster {
    /// The client for the control plane this guard protects.
    pub fn client(&self) -> Client {
        self.client.clone()
    }
}

/// Waits for exclusive use of the control plane, then deletes every Node so the test starts clean.
pub async fn exclusive() -> Result<ExclusiveCluster, Error> {
    let client = client().await?;
    let path = lock_path(&kubeconfig_path());
    let lock = tokio::task::spawn_blocking(move || -> Result<File, Error> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Lock {
                path: path.clone(),
                source,
            })?;
        file.lock().map_err(|source| Error::Lock { path, source })?;
        Ok(file)
    })
    .await
    .map_err(|e| Error::Lock {
        path: PathBuf::from("<lock task>"),
        source: std::io::Error::other(e),
    })??;
    delete_all_nodes(&client).await?;
    Ok(ExclusiveCluster { client, _lock: lock })
}

/// Deletes every Node and waits (up to 10 s) until the list is empty.
pub async fn delete_all_nodes(client: &Client) -> Result<(), Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    if nodes
        .list_metadata(&ListParams::default())
        .await?
        .items
        .is_empty()
    {
        return Ok(());
    }
    nodes
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await?;
    for _ in 0..100 {
        if nodes
            .list_metadata(&ListParams::default())
            .await?
            .items
            .is_empty()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Error::Cleanup(
        "Nodes still listed 10 s after deleting them all".into(),
    ))
}

fn lock_path(kubeconfig: &Path) -> PathBuf {
    let tag: String = kubeconfig
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    std::env::temp_dir().join(format!("cloudsigma-k8s-cluster-{tag}.lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_valid_and_distinct() {
        let a = unique_name("ns");
        let b = unique_name("ns");
        assert_ne!(a, b);
        assert!(a.starts_with("ns-") && a.len() == 11, "{a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{a}"
        );
    }

    #[test]
    fn lock_path_depends_on_the_kubeconfig() {
        let a = lock_path(Path::new("/tmp/a/kubeconfig"));
        let b = lock_path(Path::new("/tmp/b/kubeconfig"));
        assert_ne!(a, b);
        assert!(a.starts_with(std::env::temp_dir()));
    }
}
