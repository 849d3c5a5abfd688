//! Shared pieces of the `ccm` end-to-end tests: the emulator with one tenant account, the genuine
//! control plane (exclusively held), kubelet-style Node registration, and the real `ccm` binary run as a
//! child process.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    future::Future,
    net::{Ipv4Addr, TcpListener},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use cs_emulator::{Config, Emulator, NicSeed, ServerSeed};
use k8s_openapi::api::core::v1::Node;
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;

pub const USER: &str = "owner@example.com";
pub const PASSWORD: &str = "owner-password-e2e-7f3a";
pub const CLIENT_ID: &str = "ccm-e2e-client";
pub const CLIENT_SECRET: &str = "client-secret-e2e-5c1d9";
pub const SERVICE_ACCOUNT: &str = "service-account@example.com";
pub const REGION: &str = "zrh";
pub const UNINITIALIZED: &str = "node.cloudprovider.kubernetes.io/uninitialized";
pub const SHUTDOWN: &str = "node.cloudprovider.kubernetes.io/shutdown";

/// An emulator with the tenant account and the service account, plus exclusive use of the cluster.
pub struct Env {
    pub emulator: Emulator,
    pub cluster: testkit::ExclusiveCluster,
    pub client: kube::Client,
    pub nodes: Api<Node>,
}

pub async fn env_with(config: Config) -> Env {
    let cluster = testkit::exclusive().await.unwrap();
    let client = cluster.client();
    let emulator = Emulator::start_with(config).await.unwrap();
    emulator.add_user(USER, PASSWORD);
    emulator.add_oauth_client(CLIENT_ID, CLIENT_SECRET, SERVICE_ACCOUNT);
    let nodes = Api::all(client.clone());
    Env {
        emulator,
        cluster,
        client,
        nodes,
    }
}

pub async fn env() -> Env {
    env_with(Config::default()).await
}

impl Env {
    /// A running server with one public NIC.
    pub fn server(&self, name: &str, ip: Ipv4Addr) -> String {
        self.emulator.add_server(
            REGION,
            USER,
            ServerSeed {
                name: name.into(),
                cpu: 2000,
                mem: 4 << 30,
                nics: vec![NicSeed::Public {
                    ip_v4: Some(ip),
                    ip_v6: None,
                }],
                ..ServerSeed::default()
            },
        )
    }

    /// Registers a Node the way a kubelet with `--cloud-provider=external` does.
    pub async fn register(&self, name: &str, provider_id: Option<&str>, provided_ip: Option<&str>) -> Node {
        let mut node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": { "name": name, "labels": { "kubernetes.io/hostname": name, "example.com/team": "e2e" } },
            "spec": { "taints": [{ "key": UNINITIALIZED, "value": "true", "effect": "NoSchedule" }] }
        });
        if let Some(pid) = provider_id {
            node["spec"]["providerID"] = json!(pid);
        }
        if let Some(ip) = provided_ip {
            node["metadata"]["annotations"] = json!({ "alpha.kubernetes.io/provided-node-ip": ip });
        }
        let node: Node = serde_json::from_value(node).unwrap();
        self.nodes.create(&PostParams::default(), &node).await.unwrap()
    }

    /// Sets the Node's Ready condition as a kubelet (or the node-lifecycle controller) would.
    pub async fn set_ready(&self, name: &str, ready: bool) {
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        let patch = json!({ "status": { "conditions": [{
            "type": "Ready", "status": if ready { "True" } else { "False" },
            "reason": if ready { "KubeletReady" } else { "KubeletNotReady" },
            "lastHeartbeatTime": now, "lastTransitionTime": now
        }]}});
        self.nodes
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .unwrap();
    }

    pub async fn node(&self, name: &str) -> Option<Node> {
        self.nodes.get_opt(name).await.unwrap()
    }

    /// Standard arguments: impersonation against the emulator (secret through the environment).
    pub fn ccm_args(&self) -> Vec<String> {
        let e = &self.emulator;
        vec![
            "--region".into(),
            REGION.into(),
            "--impersonation-enabled".into(),
            "--oauth-url".into(),
            e.oauth_url(),
            "--client-id".into(),
            CLIENT_ID.into(),
            "--user-email".into(),
            USER.into(),
            "--api-url".into(),
            e.api_url_template(),
            "--direct-api-url".into(),
            e.direct_api_url_template(),
            "--impersonation-url".into(),
            e.direct_url_template(),
            // The emulator serves plain http on 127.0.0.1.
            "--allow-insecure-http".into(),
            "--kubeconfig".into(),
            testkit::kubeconfig_path().display().to_string(),
        ]
    }

    pub fn spawn_ccm(&self, extra: &[&str]) -> Ccm {
        let mut args = self.ccm_args();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Ccm::spawn(&args, &[("CLOUDSIGMA_CLIENT_SECRET", CLIENT_SECRET)])
    }
}

pub fn has_taint(node: &Node, key: &str) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| t.key == key))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real `ccm` binary as a child process; killed on drop. Output goes to a log file.
pub struct Ccm {
    child: Child,
    pub log: PathBuf,
    pub metrics_port: u16,
    pub health_port: u16,
}

impl Ccm {
    pub fn spawn(args: &[String], env: &[(&str, &str)]) -> Self {
        let metrics_port = free_port();
        let health_port = free_port();
        let log = std::env::temp_dir().join(format!("ccm-e2e-{}.log", testkit::unique_name("run")));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccm"));
        cmd.args(args)
            .args(["--metrics-bind-address", &format!("127.0.0.1:{metrics_port}")])
            .args(["--health-probe-bind-address", &format!("127.0.0.1:{health_port}")])
            .env_remove("RUST_LOG")
            .env(
                "CCM_LOG_LEVEL",
                "info,ccm_node=debug,cs_auth=debug,cs_api=debug,ccm_csitoken=debug",
            )
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        Self {
            child,
            log,
            metrics_port,
            health_port,
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn metrics(&self) -> String {
        match reqwest::get(format!("http://127.0.0.1:{}/metrics", self.metrics_port)).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// The value of one series of the metrics text (0 when absent).
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.trim().parse::<f64>().ok())
            })
            .unwrap_or(0.0)
    }

    /// Asserts that none of `secrets` appears in the ccm's output (debug level), its metrics, or the
    /// Events of the tenant cluster.
    pub async fn assert_no_secrets(&self, client: &kube::Client, secrets: &[&str]) {
        let events: Api<k8s_openapi::api::core::v1::Event> = Api::all(client.clone());
        let events = serde_json::to_string(&events.list(&Default::default()).await.unwrap()).unwrap();
        let new_events: Api<k8s_openapi::api::events::v1::Event> = Api::all(client.clone());
        let new_events = serde_json::to_string(&new_events.list(&Default::default()).await.unwrap()).unwrap();
        let (logs, metrics) = (self.logs(), self.metrics().await);
        assert!(logs.contains("DEBUG"), "the scan needs debug-level output");
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            for (what, text) in [
                ("output", &logs),
                ("metrics", &metrics),
                ("events", &events),
                ("events.k8s.io", &new_events),
            ] {
                assert!(
                    !text.contains(secret),
                    "a secret value appeared in the ccm's {what}"
                );
            }
        }
    }

    pub async fn ready(&self) -> bool {
        matches!(reqwest::get(format!("http://127.0.0.1:{}/readyz", self.health_port)).await,
                 Ok(r) if r.status().is_success())
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit: its exit status and how long it
    /// took, or `None` (and a SIGKILL) when it did not exit in time.
    pub fn terminate(&mut self, limit: Duration) -> Option<(std::process::ExitStatus, Duration)> {
        let started = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some((status, started.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        None
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }
}

impl Drop for Ccm {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- ccm log {} ----\n{}", self.log.display(), self.logs());
        }
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
