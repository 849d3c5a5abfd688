//! The fault matrix: the real `ccm` (node controllers + CSI token controller) against the genuine
//! apiserver and the emulator, with initialized and joining Nodes, under one fault at a time.
//!
//! For every fault: no Node is deleted, no Node loses its uninitialized taint without having an IP
//! address, the token Secret is never deleted or blanked by the ccm; the CloudSigma request rate stays
//! bounded during the outage; and after the fault clears every Node initializes and the Secret holds a
//! fresh token within the recovery bound.
//!
//! `SOAK_SECONDS` (used by `make soak`) lengthens the fault window from the default 12 s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::{
    net::Ipv4Addr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use cs_emulator::{Config, Fault, FaultAction, RouteMatch};
use futures::StreamExt;
use k8s_openapi::{
    api::core::v1::{Namespace, Node, Secret},
    jiff::Timestamp,
};
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
    runtime::watcher,
};
use serde_json::json;
use support::*;

/// Requests per second the ccm may send to CloudSigma during an outage (retries included).
const MAX_RATE: f64 = 8.0;
/// Time after the fault clears within which everything must have recovered.
const RECOVERY: Duration = Duration::from_secs(45);

fn window() -> Duration {
    Duration::from_secs(
        std::env::var("SOAK_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(12),
    )
}

#[derive(Default)]
struct Violations(Mutex<Vec<String>>);

impl Violations {
    fn push(&self, v: String) {
        self.0.lock().unwrap().push(v);
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

fn has_ip(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .is_some_and(|a| {
            a.iter()
                .any(|a| a.type_ == "InternalIP" || a.type_ == "ExternalIP")
        })
}

/// Watches Nodes and the token Secret for the invariants, for as long as the returned guard lives.
fn watch_invariants(
    env: &Env,
    ns: &str,
    allow_secret_gone: Arc<Mutex<bool>>,
) -> (Arc<Violations>, tokio::task::JoinHandle<()>) {
    let v = Arc::new(Violations::default());
    let nodes: Api<Node> = Api::all(env.client.clone());
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), ns);
    let (v1, v2) = (Arc::clone(&v), Arc::clone(&v));
    let node_task = async move {
        let mut s = watcher(nodes, watcher::Config::default()).boxed();
        while let Some(Ok(ev)) = s.next().await {
            match ev {
                watcher::Event::Apply(n) | watcher::Event::InitApply(n)
                    if !has_taint(&n, UNINITIALIZED) && !has_ip(&n) =>
                {
                    v1.push(format!(
                        "node {} untainted without an IP address",
                        n.metadata.name.unwrap_or_default()
                    ));
                }
                watcher::Event::Delete(n) => {
                    v1.push(format!("node {} deleted", n.metadata.name.unwrap_or_default()))
                }
                _ => {}
            }
        }
    };
    let secret_task = async move {
        let cfg = watcher::Config::default().fields("metadata.name=cloudsigma-token");
        let mut s = watcher(secrets, cfg).boxed();
        while let Some(Ok(ev)) = s.next().await {
            match ev {
                watcher::Event::Apply(sec) | watcher::Event::InitApply(sec) => {
                    let data = sec.data.unwrap_or_default();
                    if data.get("access_token").is_none_or(|t| t.0.is_empty()) {
                        v2.push("token Secret blanked".into());
                    }
                }
                watcher::Event::Delete(_) if !*allow_secret_gone.lock().unwrap() => {
                    v2.push("token Secret deleted".into())
                }
                _ => {}
            }
        }
    };
    let handle = tokio::spawn(async move {
        tokio::join!(node_task, secret_task);
    });
    (v, handle)
}

struct Scenario {
    env: Env,
    ns: String,
    ccm: Ccm,
    violations: Arc<Violations>,
    watch: tokio::task::JoinHandle<()>,
    allow_secret_gone: Arc<Mutex<bool>>,
    next_ip: u8,
}

impl Scenario {
    /// Three servers and Nodes initialized, the token Secret written, a 4th Node joining.
    async fn start(config: Config) -> Self {
        let env = env_with(config).await;
        let ns = testkit::unique_name("fm");
        let allow = Arc::new(Mutex::new(false));
        let (violations, watch) = watch_invariants(&env, &ns, Arc::clone(&allow));
        for i in 0..3u8 {
            let name = format!("fm-{i}");
            env.server(&name, Ipv4Addr::new(203, 0, 113, 100 + i));
            env.register(&name, None, None).await;
        }
        let ccm = env.spawn_ccm(&[
            "--csi-token-enabled",
            "--csi-token-create-namespace",
            "--csi-token-namespace",
            &ns,
            "--csi-token-margin",
            "2s",
            "--node-monitor-period",
            "1s",
            "--node-status-update-frequency",
            "3s",
            "--node-delete-grace",
            "2s",
            "--server-cache-ttl",
            "1s",
            "--cloudsigma-timeout",
            "2s",
        ]);
        let mut s = Scenario {
            env,
            ns,
            ccm,
            violations,
            watch,
            allow_secret_gone: allow,
            next_ip: 150,
        };
        s.wait_all_initialized(Duration::from_secs(40)).await;
        s.wait_fresh_secret(None, Duration::from_secs(30)).await;
        for i in 0..3u8 {
            s.env.set_ready(&format!("fm-{i}"), false).await;
        }
        s.next_ip += 1;
        s
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.env.client.clone(), &self.ns)
    }

    async fn join_node(&mut self, name: &str) {
        self.next_ip += 1;
        self.env.server(name, Ipv4Addr::new(203, 0, 113, self.next_ip));
        self.env.register(name, None, None).await;
    }

    async fn wait_all_initialized(&self, timeout: Duration) {
        let nodes = self.env.nodes.clone();
        wait_for(timeout, "every node initialized", || async {
            let list = nodes.list(&Default::default()).await.unwrap();
            list.items
                .iter()
                .all(|n| !has_taint(n, UNINITIALIZED))
                .then_some(())
        })
        .await;
    }

    /// Waits until the Secret holds an unexpired token different from `old` (any token when `None`).
    async fn wait_fresh_secret(&self, old: Option<Vec<u8>>, timeout: Duration) {
        let secrets = self.secrets();
        wait_for(timeout, "a fresh token in the Secret", || async {
            let s = secrets.get_opt("cloudsigma-token").await.ok().flatten()?;
            let data = s.data?;
            let token = data.get("access_token")?.0.clone();
            let expires: Timestamp = String::from_utf8(data.get("expires_at")?.0.clone())
                .ok()?
                .parse()
                .ok()?;
            (expires > Timestamp::now() && Some(&token) != old.as_ref()).then_some(())
        })
        .await;
    }

    async fn token(&self) -> Option<Vec<u8>> {
        let s = self.secrets().get_opt("cloudsigma-token").await.unwrap()?;
        s.data?.get("access_token").map(|b| b.0.clone())
    }

    /// Runs `fault` for the window with a Node joining, checks the rate, clears, checks recovery.
    async fn run(mut self, label: &str, fault: Fault) {
        let id = self.env.emulator.inject(fault);
        self.outage(label, |_| async {}).await;
        self.env.emulator.clear_fault(id);
        self.recover(label).await;
    }

    async fn outage<F, Fut>(&mut self, label: &str, during: F)
    where
        F: FnOnce(&Env) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        self.join_node("fm-join").await;
        let before = self.env.emulator.requests().len();
        let start = Instant::now();
        during(&self.env).await;
        tokio::time::sleep(window().saturating_sub(start.elapsed())).await;
        let sent = self.env.emulator.requests().len() - before;
        let rate = sent as f64 / start.elapsed().as_secs_f64();
        eprintln!(
            "[{label}] {sent} emulator requests in {:?} ({rate:.2}/s) during the fault",
            start.elapsed()
        );
        assert!(
            rate <= MAX_RATE,
            "[{label}] request rate {rate:.2}/s above {MAX_RATE}/s during the outage"
        );
        assert!(
            self.ccm.exited().is_none(),
            "[{label}] the ccm exited during the outage:\n{}",
            self.ccm.logs()
        );
        let untainted = self
            .env
            .node("fm-join")
            .await
            .is_some_and(|n| !has_taint(&n, UNINITIALIZED));
        eprintln!("[{label}] joining node initialized during the fault: {untainted}");
    }

    async fn recover(self, label: &str) {
        let cleared = Instant::now();
        let old = self.token().await;
        self.wait_all_initialized(RECOVERY).await;
        // The Secret gets a token the ccm obtained after the fault (a new one once the old one is renewed).
        let secrets = self.secrets();
        wait_for(RECOVERY, "an unexpired token after the fault", || async {
            let s = secrets.get_opt("cloudsigma-token").await.ok().flatten()?;
            let expires: Timestamp = String::from_utf8(s.data?.get("expires_at")?.0.clone())
                .ok()?
                .parse()
                .ok()?;
            (expires > Timestamp::now()).then_some(())
        })
        .await;
        let _ = old;
        eprintln!(
            "[{label}] recovered {:?} after the fault cleared",
            cleared.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let v = self.violations.take();
        self.watch.abort();
        assert!(
            v.is_empty(),
            "[{label}] invariants broken: {v:?}\n{}",
            self.ccm.logs()
        );
        let names: Vec<String> = self
            .env
            .nodes
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        assert_eq!(names.len(), 4, "[{label}] nodes: {names:?}");
        self.ccm
            .assert_no_secrets(&self.env.client, &[CLIENT_SECRET])
            .await;
    }
}

fn all_api(status: u16) -> Fault {
    Fault {
        route: RouteMatch::path_contains("/api/2.0/"),
        method: None,
        action: FaultAction::Status {
            status,
            error_type: None,
            delay: Duration::ZERO,
        },
        times: None,
    }
}

#[tokio::test]
async fn fault_impersonation_504_after_a_long_delay() {
    // The token lifetime is short so the controllers must impersonate again during the outage.
    let s = Scenario::start(Config {
        token_lifetime: Duration::from_secs(9),
        ..Config::default()
    })
    .await;
    s.run(
        "impersonate 504",
        Fault {
            route: RouteMatch::route("POST /direct/service_provider/api/v1/user/impersonate"),
            method: None,
            action: FaultAction::Status {
                status: 504,
                error_type: None,
                delay: Duration::from_secs(3),
            },
            times: None,
        },
    )
    .await;
}

#[tokio::test]
async fn fault_oauth_token_endpoint_down() {
    let s = Scenario::start(Config {
        token_lifetime: Duration::from_secs(9),
        ..Config::default()
    })
    .await;
    s.run(
        "oauth down",
        Fault {
            route: RouteMatch::path_contains("/oauth/"),
            method: None,
            action: FaultAction::CloseConnection,
            times: None,
        },
    )
    .await;
}

#[tokio::test]
async fn fault_401_for_tokens_mid_use() {
    let s = Scenario::start(Config::default()).await;
    let before = s
        .env
        .emulator
        .count("POST /direct/service_provider/api/v1/user/impersonate");
    let fault = Fault {
        times: Some(4),
        ..all_api(401)
    };
    let env_count = |s: &Scenario| {
        s.env
            .emulator
            .count("POST /direct/service_provider/api/v1/user/impersonate")
    };
    let id = s.env.emulator.inject(fault);
    let mut s = s;
    s.outage("401 mid-use", |_| async {}).await;
    s.env.emulator.clear_fault(id);
    assert!(
        env_count(&s) > before,
        "a 401 must make the ccm impersonate again"
    );
    s.recover("401 mid-use").await;
}

#[tokio::test]
async fn fault_403_permission_on_every_server() {
    let s = Scenario::start(Config::default()).await;
    s.run(
        "403 permission",
        Fault {
            route: RouteMatch::path_contains("/servers/"),
            ..all_api(403)
        },
    )
    .await;
}

#[tokio::test]
async fn fault_500_and_503_bursts() {
    let s = Scenario::start(Config::default()).await;
    let env = &s.env;
    let a = env.emulator.inject(Fault {
        times: Some(6),
        ..all_api(500)
    });
    let b = env.emulator.inject(Fault {
        times: Some(6),
        ..all_api(503)
    });
    let mut s = s;
    s.outage("500/503 bursts", |_| async {}).await;
    s.env.emulator.clear_fault(a);
    s.env.emulator.clear_fault(b);
    s.recover("500/503 bursts").await;
}

#[tokio::test]
async fn fault_connection_resets() {
    let s = Scenario::start(Config::default()).await;
    s.run(
        "connection resets",
        Fault {
            route: RouteMatch::path_contains("/api/2.0/"),
            method: None,
            action: FaultAction::CloseConnection,
            times: None,
        },
    )
    .await;
}

#[tokio::test]
async fn fault_slow_responses_past_the_timeout() {
    let s = Scenario::start(Config::default()).await;
    s.run(
        "slow responses",
        Fault {
            route: RouteMatch::path_contains("/api/2.0/"),
            method: None,
            action: FaultAction::Delay(Duration::from_secs(4)),
            times: None,
        },
    )
    .await;
}

#[tokio::test]
async fn fault_competing_writer_on_nodes() {
    let mut s = Scenario::start(Config::default()).await;
    s.join_node("fm-join").await;
    // A competing controller keeps changing the joining Node (labels and its own taint) while the ccm
    // initializes it; guarded writes get 409s and must neither lose the competitor's taint nor fail.
    let nodes = s.env.nodes.clone();
    let stop = Arc::new(Mutex::new(false));
    let stop2 = Arc::clone(&stop);
    let competitor = tokio::spawn(async move {
        let mut i = 0u64;
        while !*stop2.lock().unwrap() {
            i += 1;
            if let Ok(mut n) = nodes.get("fm-join").await {
                n.metadata
                    .labels
                    .get_or_insert_with(Default::default)
                    .insert("example.com/beat".into(), i.to_string());
                let taints = n
                    .spec
                    .get_or_insert_with(Default::default)
                    .taints
                    .get_or_insert_with(Vec::new);
                if !taints.iter().any(|t| t.key == "example.com/competitor") {
                    taints.push(k8s_openapi::api::core::v1::Taint {
                        key: "example.com/competitor".into(),
                        effect: "NoSchedule".into(),
                        ..Default::default()
                    });
                }
                let _ = nodes.replace("fm-join", &PostParams::default(), &n).await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    s.wait_all_initialized(RECOVERY).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    *stop.lock().unwrap() = true;
    competitor.await.unwrap();
    let node = s.env.node("fm-join").await.unwrap();
    assert!(
        has_taint(&node, "example.com/competitor"),
        "the competitor's taint was lost"
    );
    assert!(!has_taint(&node, UNINITIALIZED));
    assert!(
        node.spec
            .as_ref()
            .and_then(|sp| sp.provider_id.clone())
            .is_some_and(|p| p.starts_with("cloudsigma://"))
    );
    s.recover("competing writer").await;
}

#[tokio::test]
async fn fault_token_namespace_deleted_and_recreated() {
    let mut s = Scenario::start(Config::default()).await;
    let namespaces: Api<Namespace> = Api::all(s.env.client.clone());
    let old = s.token().await;
    *s.allow_secret_gone.lock().unwrap() = true;
    namespaces.delete(&s.ns, &Default::default()).await.unwrap();
    // Without a namespace controller the namespace stays Terminating; do its job: remove the content,
    // then finalize.
    let _ = s.secrets().delete("cloudsigma-token", &Default::default()).await;
    let finalize = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": s.ns }, "spec": { "finalizers": [] } });
    namespaces
        .replace_subresource("finalize", &s.ns, &PostParams::default(), &finalize)
        .await
        .unwrap();
    wait_for(Duration::from_secs(10), "the namespace gone", || async {
        namespaces.get_opt(&s.ns).await.unwrap().is_none().then_some(())
    })
    .await;
    *s.allow_secret_gone.lock().unwrap() = false;
    // --csi-token-create-namespace is on: the ccm recreates the namespace and the Secret.
    s.wait_fresh_secret(None, RECOVERY).await;
    let _ = old;
    s.outage("namespace recreated", |env| {
        let nodes = env.nodes.clone();
        async move {
            let _ = nodes
                .patch(
                    "fm-0",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
                )
                .await;
        }
    })
    .await;
    s.recover("namespace recreated").await;
}
