//! End to end: the real `ccm` binary keeps the CSI token Secret fresh in the genuine apiserver, with
//! tokens from the emulator's impersonation endpoint, shared with the node controller.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::{collections::BTreeSet, net::Ipv4Addr, time::Duration};

use cs_emulator::{Config, Fault, FaultAction, RouteMatch};
use k8s_openapi::{api::core::v1::Secret, jiff::Timestamp};
use kube::Api;
use support::*;

const IMPERSONATE: &str = "POST /direct/service_provider/api/v1/user/impersonate";

fn field(secret: &Secret, key: &str) -> String {
    let data = secret.data.as_ref().expect("data");
    String::from_utf8(data.get(key).unwrap_or_else(|| panic!("key {key}")).0.clone()).unwrap()
}

#[tokio::test]
async fn e2e_csi_token_fresh_restored_and_kept_through_issuer_outage() {
    let lifetime = Duration::from_secs(12);
    let env = env_with(Config {
        token_lifetime: lifetime,
        ..Config::default()
    })
    .await;
    env.server("csi-node-1", Ipv4Addr::new(203, 0, 113, 80));
    env.register("csi-node-1", None, None).await;
    let ns = testkit::unique_name("csi");
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &ns);
    let ccm = env.spawn_ccm(&[
        "--csi-token-enabled",
        "--csi-token-create-namespace",
        "--csi-token-namespace",
        &ns,
        "--csi-token-margin",
        "2s",
        // The node controller lists servers every second with the same impersonated credentials.
        "--node-status-update-frequency",
        "1s",
    ]);

    // The Secret appears with the documented format.
    let secret = wait_for(Duration::from_secs(30), "the token Secret", || async {
        secrets.get_opt("cloudsigma-token").await.unwrap()
    })
    .await;
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    let labels = secret.metadata.labels.clone().unwrap();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "cloudsigma-ccm");
    assert_eq!(field(&secret, "region"), REGION);
    assert_eq!(field(&secret, "user_email"), USER);
    let expires: Timestamp = field(&secret, "expires_at").parse().unwrap();
    assert!(
        expires > Timestamp::now(),
        "expires_at {expires} must be in the future"
    );

    // The token acts as the user on the direct host: it lists the user's server.
    let token = field(&secret, "access_token");
    let listed: serde_json::Value = reqwest::Client::new()
        .get(format!("{}servers/", env.emulator.direct_api_url(REGION)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["objects"][0]["name"], "csi-node-1");
    wait_for(Duration::from_secs(30), "the node initialized", || async {
        env.node("csi-node-1")
            .await
            .filter(|n| !has_taint(n, UNINITIALIZED))
    })
    .await;

    // Over ~3 lifetimes the Secret is refreshed several times and never holds an expired token, while the
    // node controller and the token controller together impersonate once per token.
    let before = env.emulator.count(IMPERSONATE);
    let mut tokens = BTreeSet::new();
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        let s = secrets.get("cloudsigma-token").await.unwrap();
        let expires: Timestamp = field(&s, "expires_at").parse().unwrap();
        assert!(
            expires > Timestamp::now(),
            "the Secret held an expired token (expires_at {expires})"
        );
        tokens.insert(field(&s, "access_token"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let impersonations = env.emulator.count(IMPERSONATE) - before;
    assert!(
        tokens.len() >= 3,
        "only {} distinct tokens in 30 s with a 12 s lifetime",
        tokens.len()
    );
    assert!(
        impersonations <= tokens.len() as u64 + 1,
        "{impersonations} impersonations for {} tokens: node and token controllers must share the cache",
        tokens.len()
    );

    // Deleted: back within seconds.
    secrets
        .delete("cloudsigma-token", &Default::default())
        .await
        .unwrap();
    let deleted = std::time::Instant::now();
    wait_for(Duration::from_secs(10), "the Secret restored", || async {
        secrets.get_opt("cloudsigma-token").await.unwrap()
    })
    .await;
    eprintln!("Secret restored {:?} after deletion", deleted.elapsed());

    // Impersonation endpoint down (504): the Secret keeps its content, then is refreshed after recovery.
    let kept = secrets.get("cloudsigma-token").await.unwrap().data;
    let fault = env.emulator.inject(Fault {
        route: RouteMatch::route(IMPERSONATE),
        method: None,
        action: FaultAction::Status {
            status: 504,
            error_type: None,
            delay: Duration::ZERO,
        },
        times: None,
    });
    tokio::time::sleep(lifetime + Duration::from_secs(2)).await;
    let during = secrets.get("cloudsigma-token").await.unwrap();
    assert_eq!(
        during.data, kept,
        "the Secret must not change while the issuer fails"
    );
    env.emulator.clear_fault(fault);
    let old_token = kept.as_ref().and_then(|d| d.get("access_token")).cloned();
    wait_for(
        Duration::from_secs(60),
        "a fresh token after the fault cleared",
        || async {
            let s = secrets.get("cloudsigma-token").await.unwrap();
            let fresh = s.data.as_ref().and_then(|d| d.get("access_token")).cloned() != old_token;
            let expires: Timestamp = field(&s, "expires_at").parse().unwrap();
            (fresh && expires > Timestamp::now()).then_some(())
        },
    )
    .await;
    // The node stayed initialized throughout.
    assert!(!has_taint(&env.node("csi-node-1").await.unwrap(), UNINITIALIZED));

    // No token the Secret ever held, and not the client secret, appears in output, metrics or events.
    tokens.insert(field(
        &secrets.get("cloudsigma-token").await.unwrap(),
        "access_token",
    ));
    let mut secret_values: Vec<&str> = tokens.iter().map(String::as_str).collect();
    secret_values.push(CLIENT_SECRET);
    ccm.assert_no_secrets(&env.client, &secret_values).await;
}
