//! Shared helpers of the integration tests: a namespace of its own on the genuine local kube-apiserver,
//! a controller running in-process, polling helpers and a log capture.
#![allow(dead_code, clippy::unwrap_used)]

use std::{
    future::Future,
    io::Write,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use ccm_csitoken::{Config, CsiTokenController, Metrics, TokenSource};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::{
    Api, Client,
    api::{DeleteParams, ObjectMeta, PostParams},
};
use tokio::{sync::oneshot, task::JoinHandle};
use tracing::instrument::WithSubscriber;

/// A test namespace on the shared control plane.
pub struct Env {
    pub client: Client,
    pub ns: String,
    pub secrets: Api<Secret>,
}

impl Env {
    /// Creates a fresh namespace `<prefix>-<8 hex>`.
    pub async fn new(prefix: &str) -> Self {
        let client = testkit::client().await.unwrap();
        let ns = testkit::unique_name(prefix);
        create_namespace(&client, &ns).await;
        Self::without_namespace(client, ns)
    }

    /// An environment whose namespace does not exist (yet).
    pub fn without_namespace(client: Client, ns: String) -> Self {
        let secrets = Api::namespaced(client.clone(), &ns);
        Self { client, ns, secrets }
    }

    /// Test settings: this namespace, the default Secret name, short delays.
    pub fn config(&self) -> Config {
        Config {
            namespace: self.ns.clone(),
            refresh_interval: Duration::from_secs(2),
            margin: Duration::from_secs(1),
            propagation: Duration::ZERO,
            min_delay: Duration::from_millis(200),
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(1),
            ..Config::default()
        }
    }

    /// Starts a controller with `client` (usually `self.client`) in the background.
    pub fn spawn_with(&self, client: Client, config: Config, source: Arc<dyn TokenSource>) -> Running {
        let logs = LogCapture::default();
        let metrics = Metrics::new();
        let controller = CsiTokenController::new(client, config, source, metrics.clone()).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("ccm_csitoken=debug,cs_auth=info")
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish();
        let handle = tokio::spawn(
            controller
                .run(async {
                    let _ = stopped.await;
                })
                .with_subscriber(subscriber),
        );
        Running {
            metrics,
            logs,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Starts a controller with the admin client.
    pub fn spawn(&self, config: Config, source: Arc<dyn TokenSource>) -> Running {
        self.spawn_with(self.client.clone(), config, source)
    }

    /// The Secret `cloudsigma-token`, if present.
    pub async fn secret(&self) -> Option<Secret> {
        self.secrets.get_opt("cloudsigma-token").await.unwrap()
    }

    /// Polls (every 50 ms) until the Secret satisfies `pred`; fails after `timeout` naming `what`.
    pub async fn wait_secret(&self, what: &str, timeout: Duration, pred: impl Fn(&Secret) -> bool) -> Secret {
        let start = Instant::now();
        loop {
            if let Some(s) = self.secret().await
                && pred(&s)
            {
                return s;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for: {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Deletes the namespace (it stays Terminating on this apiserver; the data dir is throw-away).
    pub async fn cleanup(self) {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let _ = namespaces.delete(&self.ns, &DeleteParams::default()).await;
    }
}

pub async fn create_namespace(client: &Client, ns: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let object = Namespace {
        metadata: ObjectMeta {
            name: Some(ns.to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    namespaces.create(&PostParams::default(), &object).await.unwrap();
}

/// A controller running in the background.
pub struct Running {
    pub metrics: Metrics,
    pub logs: LogCapture,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Running {
    /// Asks it to stop and waits (at most 5 s) until it did.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(5), handle)
                .await
                .expect("controller stops within 5 s of shutdown")
                .unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(handle) = &self.handle {
            handle.abort();
        }
    }
}

/// Polls `cond` every 20 ms until it holds; fails after `timeout` naming `what`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A data value of the Secret as text.
pub fn data(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .map(|v| String::from_utf8(v.0.clone()).unwrap())
}

/// The Secret's `expires_at`, parsed.
pub fn expires_at(secret: &Secret) -> Timestamp {
    data(secret, "expires_at").unwrap().parse().unwrap()
}

pub fn resource_version(secret: &Secret) -> String {
    secret.metadata.resource_version.clone().unwrap()
}

/// Everything the controller logged, for checks that no token value leaks.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A token source for the Kubernetes-side tests: hands out `tok-<n>-<random>` tokens of a fixed
/// lifetime, renewed after 2/3 of it (as cs-auth's cache does), and fails while `failing` is set.
pub struct LocalIssuer {
    lifetime: Duration,
    state: Mutex<Option<(ccm_csitoken::IssuedToken, Timestamp)>>,
    pub issued: std::sync::atomic::AtomicU32,
    pub failing: std::sync::atomic::AtomicBool,
}

impl LocalIssuer {
    pub fn new(lifetime: Duration) -> Arc<Self> {
        Arc::new(Self {
            lifetime,
            state: Mutex::new(None),
            issued: Default::default(),
            failing: Default::default(),
        })
    }

    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl TokenSource for LocalIssuer {
    async fn token(&self) -> ccm_csitoken::Result<ccm_csitoken::IssuedToken> {
        use std::sync::atomic::Ordering;
        if self.failing.load(Ordering::SeqCst) {
            return Err(ccm_csitoken::Error::Source {
                reason: ccm_csitoken::FailureReason::IssuerTimeout,
                message: "impersonation step 3 (impersonate) failed (HTTP 504): Gateway Timeout".into(),
            });
        }
        let now = Timestamp::now();
        let mut state = self.state.lock().unwrap();
        if let Some((token, renew_at)) = state.as_ref()
            && now < *renew_at
        {
            return Ok(token.clone());
        }
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let renew_at = now.checked_add(self.lifetime.mul_f64(2.0 / 3.0)).unwrap();
        let token = ccm_csitoken::IssuedToken {
            token: format!("tok-{n}-{}", uuid::Uuid::new_v4().simple()).into(),
            expires_at: now.checked_add(self.lifetime).unwrap(),
            renew_at: Some(renew_at),
            region: "zrh".into(),
            user_email: "tenant@example.com".into(),
        };
        *state = Some((token.clone(), renew_at));
        Ok(token)
    }
}
