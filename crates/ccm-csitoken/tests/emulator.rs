//! The controller with the real cs-auth `ImpersonationClient` against an in-process CloudSigma emulator
//! and the genuine local kube-apiserver: the stored token works as the user on the direct host, a
//! short-lived token is replaced before it expires, an injected 504 leaves the Secret untouched until
//! the issuer recovers, and the controller and a node-controller-like user of the same client share
//! one impersonation per token lifetime.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use ccm_csitoken::{FailureReason, ImpersonationSource};
use common::{Env, data, eventually, expires_at};
use cs_auth::{Credentials, CredentialsProvider, ImpersonationClient, ImpersonationConfig, RetryPolicy};
use cs_emulator::{Config as EmuConfig, Emulator, Fault, RouteMatch, ServerSeed};
use jiff::Timestamp;
use k8s_openapi::api::events::v1::Event;
use kube::{Api, api::ListParams};
use secrecy::{ExposeSecret, SecretString};

const TENANT: &str = "tenant@example.com";
const SA_EMAIL: &str = "service-account@provider.example";
const CLIENT_ID: &str = "kubernetes_cluster_service";
const CLIENT_SECRET: &str = "client-secret-5be0c7d2";
const IMPERSONATE_ROUTE: &str = "POST /direct/service_provider/api/v1/user/impersonate";

/// An emulator issuing tokens of `lifetime`, with the tenant (two servers in zrh) and the OAuth client
/// whose service account owns a server of its own.
async fn emulator(lifetime: Duration) -> Emulator {
    let emu = Emulator::start_with(EmuConfig {
        token_lifetime: lifetime,
        ..EmuConfig::default()
    })
    .await
    .unwrap();
    emu.add_user(TENANT, "tenant-password-1f0a");
    emu.add_oauth_client(CLIENT_ID, CLIENT_SECRET, SA_EMAIL);
    for (owner, name) in [
        (TENANT, "tenant-vm-1"),
        (TENANT, "tenant-vm-2"),
        (SA_EMAIL, "provider-vm"),
    ] {
        emu.add_server(
            "zrh",
            owner,
            ServerSeed {
                name: name.into(),
                ..ServerSeed::default()
            },
        );
    }
    emu
}

/// The impersonation client the binary would share between the node and the token controller.
fn auth_client(emu: &Emulator) -> ImpersonationClient {
    ImpersonationClient::new(ImpersonationConfig {
        oauth_url: emu.oauth_url(),
        impersonation_url: emu.direct_url_template(),
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        retry: RetryPolicy {
            attempts: 3,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(40),
        },
        ..ImpersonationConfig::new(CLIENT_ID, SecretString::from(CLIENT_SECRET))
    })
    .unwrap()
}

fn source(client: &ImpersonationClient) -> Arc<ImpersonationSource> {
    Arc::new(ImpersonationSource::new(client.clone(), TENANT, "zrh").unwrap())
}

/// Status and sorted server names of `GET {base}servers/` with `token`.
async fn servers_as(base: &str, token: &str) -> (u16, Vec<String>) {
    let response = reqwest::Client::new()
        .get(format!("{base}servers/?limit=0"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status != 200 {
        return (status, Vec::new());
    }
    let body: serde_json::Value = response.json().await.unwrap();
    let mut names: Vec<String> = body["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    (status, names)
}

#[tokio::test]
async fn csi_token_from_emulator_works_as_the_user_on_the_direct_host() {
    let emu = emulator(Duration::from_secs(900)).await;
    let env = Env::new("csitok-emu").await;
    let run = env.spawn(env.config(), source(&auth_client(&emu)));

    let s = env
        .wait_secret("Secret created", Duration::from_secs(15), |_| true)
        .await;
    let token = data(&s, "access_token").unwrap();
    assert_eq!(data(&s, "region").as_deref(), Some("zrh"));
    assert_eq!(data(&s, "user_email").as_deref(), Some(TENANT));
    let left = expires_at(&s).duration_since(Timestamp::now()).as_secs_f64();
    assert!(
        (880.0..=900.0).contains(&left),
        "the emulator's 900 s lifetime, {left} s left"
    );

    // On the direct host of its region the token acts as the tenant: the tenant's servers only.
    let (status, names) = servers_as(&emu.direct_api_url("zrh"), &token).await;
    assert_eq!(
        (status, names),
        (200, vec!["tenant-vm-1".to_owned(), "tenant-vm-2".to_owned()])
    );
    assert_eq!(emu.count(IMPERSONATE_ROUTE), 1);

    // The value appears nowhere in what the controller logged.
    eventually("a few passes", Duration::from_secs(10), || {
        let n = run.logs.text().matches("CSI token pass done").count();
        async move { n >= 3 }
    })
    .await;
    let logs = run.logs.text();
    assert!(logs.contains("wrote the CSI token Secret"), "{logs}");
    assert!(!logs.contains(&token), "token leaked into the logs");
    assert_eq!(emu.count(IMPERSONATE_ROUTE), 1, "passes reuse the cached token");
    run.stop().await;
    env.cleanup().await;
}

#[tokio::test]
async fn csi_token_short_lived_token_is_replaced_before_expiry() {
    // 9 s tokens: cs-auth's cache renews them after 6 s (2/3); the Secret must never hold one with less
    // than the 1.5 s margin left (no propagation budget in this test).
    let emu = emulator(Duration::from_secs(9)).await;
    let env = Env::new("csitok-short").await;
    let margin = Duration::from_millis(1500);
    let config = ccm_csitoken::Config {
        margin,
        ..env.config()
    };
    let run = env.spawn(config, source(&auth_client(&emu)));
    env.wait_secret("Secret created", Duration::from_secs(15), |_| true)
        .await;

    let start = Instant::now();
    let mut seen: Vec<String> = Vec::new();
    let mut min_left = f64::MAX;
    while start.elapsed() < Duration::from_secs(20) {
        let s = env.secret().await.expect("the Secret never disappears");
        let left = expires_at(&s).duration_since(Timestamp::now()).as_secs_f64();
        min_left = min_left.min(left);
        let token = data(&s, "access_token").unwrap();
        if seen.last() != Some(&token) {
            assert!(!seen.contains(&token), "a replaced token came back");
            let (status, _) = servers_as(&emu.direct_api_url("zrh"), &token).await;
            assert_eq!(status, 200, "each stored token is accepted by the emulator");
            seen.push(token);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{} tokens in 20 s; least lifetime left seen in the Secret: {min_left:.2} s (margin {margin:?})",
        seen.len()
    );
    assert!(seen.len() >= 4, "refreshed several times: {} tokens", seen.len());
    // Observed from outside, a write lands a few milliseconds after the controller decided it; allow
    // 0.5 s for that under load.
    assert!(
        min_left >= margin.as_secs_f64() - 0.5,
        "the Secret held a token with only {min_left:.2} s left"
    );
    let impersonations = emu.count(IMPERSONATE_ROUTE) as usize;
    assert!(
        impersonations <= seen.len() + 1,
        "{impersonations} impersonations for {} tokens",
        seen.len()
    );
    let writes = run.metrics.writes() as usize;
    assert!(
        writes >= seen.len() && writes <= seen.len() + 1,
        "{writes} writes for {} tokens",
        seen.len()
    );
    let logs = run.logs.text();
    for token in &seen {
        assert!(!logs.contains(token.as_str()), "token leaked into the logs");
    }
    run.stop().await;
    env.cleanup().await;
}

#[tokio::test]
async fn csi_token_issuer_504_leaves_secret_untouched_then_recovers() {
    let emu = emulator(Duration::from_secs(6)).await;
    let env = Env::new("csitok-504").await;
    let run = env.spawn(env.config(), source(&auth_client(&emu)));
    let before = env
        .wait_secret("Secret created", Duration::from_secs(15), |_| true)
        .await;
    let expires_before = expires_at(&before);

    let fault = emu.inject(Fault::status(RouteMatch::Route(IMPERSONATE_ROUTE.into()), 504));
    // Past the cache's renewal (4 s) and the token's expiry (6 s): every pass now fails.
    let metrics = run.metrics.clone();
    let fault_start = Instant::now();
    while fault_start.elapsed() < Duration::from_secs(8) {
        let now = env.secret().await.expect("the Secret is never deleted");
        assert_eq!(
            now.data, before.data,
            "the Secret's content is kept during the outage"
        );
        assert_eq!(now.metadata.resource_version, before.metadata.resource_version);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let failures = metrics.failures(FailureReason::IssuerTimeout);
    assert!(failures >= 2, "{failures} issuer_timeout failures recorded");
    assert_eq!(
        metrics.expiry_seconds(),
        0.0,
        "the stored token has expired by now"
    );
    let events: Api<Event> = Api::namespaced(env.client.clone(), &env.ns);
    let warnings: Vec<Event> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("TokenIssuerTimeout"))
        .collect();
    assert!(!warnings.is_empty(), "a Warning Event about the Secret");
    let w = &warnings[0];
    assert_eq!(w.type_.as_deref(), Some("Warning"));
    assert_eq!(
        w.regarding.as_ref().unwrap().name.as_deref(),
        Some("cloudsigma-token")
    );
    assert!(w.note.as_deref().unwrap().contains("HTTP 504"), "{:?}", w.note);
    let logs = run.logs.text();
    assert!(logs.contains("the Secret is left as it is"), "{logs}");

    emu.clear_fault(fault);
    let cleared = Instant::now();
    let after = env
        .wait_secret("Secret refreshed after the fault", Duration::from_secs(5), |s| {
            expires_at(s) > expires_before
        })
        .await;
    eprintln!("refreshed {:?} after the fault was cleared", cleared.elapsed());
    let token = data(&after, "access_token").unwrap();
    assert_eq!(servers_as(&emu.direct_api_url("zrh"), &token).await.0, 200);
    let failures_after = metrics.failures(FailureReason::IssuerTimeout);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        metrics.failures(FailureReason::IssuerTimeout),
        failures_after,
        "no failures after recovery"
    );
    assert!(metrics.expiry_seconds() > 0.0);
    assert!(!run.logs.text().contains(&token));
    run.stop().await;
    env.cleanup().await;
}

#[tokio::test]
async fn csi_token_and_node_controller_share_one_impersonation_per_lifetime() {
    let emu = emulator(Duration::from_secs(6)).await;
    let env = Env::new("csitok-share").await;
    let client = auth_client(&emu);
    let run = env.spawn(env.config(), source(&client));

    // The node controller's side: credentials from the SAME client every 100 ms.
    let node_tokens = Arc::new(Mutex::new(BTreeSet::new()));
    let provider = client.provider(TENANT, "zrh").unwrap();
    let node = tokio::spawn({
        let node_tokens = node_tokens.clone();
        async move {
            loop {
                let grant = provider.credentials().await.unwrap();
                let Credentials::Bearer { token } = grant.credentials else {
                    panic!("bearer credentials expected")
                };
                node_tokens
                    .lock()
                    .unwrap()
                    .insert(token.expose_secret().to_owned());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });

    let start = Instant::now();
    let mut secret_tokens = BTreeSet::new();
    while start.elapsed() < Duration::from_secs(13) {
        if let Some(s) = env.secret().await {
            secret_tokens.insert(data(&s, "access_token").unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.abort();
    let elapsed = start.elapsed().as_secs_f64();
    let node_tokens = node_tokens.lock().unwrap().clone();
    let impersonations = emu.count(IMPERSONATE_ROUTE);
    let all: BTreeSet<_> = node_tokens.union(&secret_tokens).cloned().collect();
    eprintln!(
        "{impersonations} impersonations in {elapsed:.1} s; node saw {} tokens, Secret held {}",
        node_tokens.len(),
        secret_tokens.len()
    );
    assert!(
        secret_tokens.is_subset(&node_tokens),
        "the Secret holds the node controller's tokens"
    );
    assert_eq!(
        impersonations as usize,
        all.len(),
        "one impersonation per token, shared by both"
    );
    // One impersonation per cache period (2/3 of 6 s), plus the first.
    assert!(
        (impersonations as f64) <= elapsed / 4.0 + 2.0,
        "{impersonations} impersonations in {elapsed:.1} s"
    );
    assert!(
        secret_tokens.len() >= 3,
        "{} tokens in the Secret",
        secret_tokens.len()
    );
    run.stop().await;
    env.cleanup().await;
}

#[tokio::test]
async fn csi_token_margin_longer_than_lifetime_follows_renewals_without_busy_loop() {
    // 6 s tokens (renewed by the cache after 4 s) and a 30 s margin: every token is "due" as soon as it
    // is handed out. The controller must warn (once), write each renewed token, and not spin.
    let emu = emulator(Duration::from_secs(6)).await;
    let env = Env::new("csitok-margin").await;
    let config = ccm_csitoken::Config {
        refresh_interval: Duration::from_secs(60),
        margin: Duration::from_secs(30),
        min_delay: Duration::from_secs(1),
        ..env.config()
    };
    let run = env.spawn(config, source(&auth_client(&emu)));
    let first = env
        .wait_secret("Secret created", Duration::from_secs(15), |_| true)
        .await;
    let start = Instant::now();
    let mut tokens = vec![data(&first, "access_token").unwrap()];
    while start.elapsed() < Duration::from_secs(12) {
        let s = env.secret().await.unwrap();
        let token = data(&s, "access_token").unwrap();
        if tokens.last() != Some(&token) {
            tokens.push(token);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logs = run.logs.text();
    let passes = logs.matches("CSI token pass done").count();
    eprintln!("{} tokens and {passes} passes in 12 s", tokens.len());
    // Renewals at ~4.5 s and ~9 s after the first write.
    assert!(tokens.len() >= 3, "{} tokens", tokens.len());
    // One pass per renewal plus the first (and a relist at most): no polling in between.
    assert!(
        passes <= tokens.len() + 2,
        "{passes} passes for {} tokens",
        tokens.len()
    );
    assert_eq!(
        logs.matches("the configured margin exceeds what the token lifetime allows")
            .count(),
        1,
        "{logs}"
    );
    run.stop().await;
    env.cleanup().await;
}
