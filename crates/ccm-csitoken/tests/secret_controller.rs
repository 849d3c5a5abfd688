//! The controller against the genuine local kube-apiserver (Kubernetes-side behaviour): exact Secret
//! format, no writes without changes, repair after deletion and edits, Secrets of the wrong type, a
//! missing namespace, and the RBAC Role of `deploy/tenant-rbac/csi-token.yaml` being sufficient.
//! Each test uses a namespace of its own. Tokens come from a local issuer here; the tests against the
//! CloudSigma emulator are in `emulator.rs`.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::{collections::BTreeMap, time::Duration};

use ccm_csitoken::FailureReason;
use common::{Env, LocalIssuer, data, eventually, expires_at, resource_version};
use k8s_openapi::{
    ByteString,
    api::{
        core::v1::{Namespace, Secret},
        events::v1::Event,
        rbac::v1::{Role, RoleBinding},
    },
};
use kube::{
    Api, Client,
    api::{ListParams, ObjectMeta, PostParams},
};
use serde::Deserialize as _;

const SECRET: &str = "cloudsigma-token";

fn long_interval(env: &Env) -> ccm_csitoken::Config {
    ccm_csitoken::Config {
        refresh_interval: Duration::from_secs(60),
        ..env.config()
    }
}

#[tokio::test]
async fn csi_token_secret_has_exact_format_and_is_not_rewritten_without_change() {
    let env = Env::new("csitok-fmt").await;
    let issuer = LocalIssuer::new(Duration::from_secs(120));
    let config = ccm_csitoken::Config {
        refresh_interval: Duration::from_secs(1),
        ..env.config()
    };
    let run = env.spawn(config, issuer.clone());

    let s = env
        .wait_secret("Secret created", Duration::from_secs(10), |_| true)
        .await;
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    let keys: Vec<&str> = s.data.as_ref().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["access_token", "expires_at", "region", "user_email"]);
    let token = data(&s, "access_token").unwrap();
    assert!(token.starts_with("tok-1-"), "first issued token expected");
    assert_eq!(data(&s, "region").as_deref(), Some("zrh"));
    assert_eq!(data(&s, "user_email").as_deref(), Some("tenant@example.com"));
    let exp = expires_at(&s);
    let left = exp.duration_since(jiff::Timestamp::now()).as_secs_f64();
    assert!(
        (100.0..=120.0).contains(&left),
        "expires_at {exp} should be ~120 s ahead, is {left} s"
    );
    assert!(data(&s, "expires_at").unwrap().ends_with('Z'), "RFC 3339 UTC");
    let labels = s.metadata.labels.clone().unwrap();
    assert_eq!(
        labels,
        BTreeMap::from([
            ("app.kubernetes.io/component".to_owned(), "csi-token".to_owned()),
            (
                "app.kubernetes.io/managed-by".to_owned(),
                "cloudsigma-ccm".to_owned()
            ),
        ])
    );

    // Several timer-driven passes (1 s interval) later: same object, one write in total.
    let rv = resource_version(&s);
    eventually("at least 4 passes", Duration::from_secs(10), || {
        let passes = run.logs.text().matches("CSI token pass done").count();
        async move { passes >= 4 }
    })
    .await;
    let again = env.secret().await.unwrap();
    assert_eq!(resource_version(&again), rv, "no write without a change");
    assert_eq!(run.metrics.writes(), 1);
    assert_eq!(issuer.issued.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(run.metrics.last_success() > 0.0);
    let expiry = run.metrics.expiry_seconds();
    assert!(expiry > 90.0 && expiry <= 120.0, "expiry gauge {expiry}");
    assert!(
        !run.logs.text().contains(&token),
        "the token must never be logged"
    );
    run.stop().await;
    env.cleanup().await;
}

#[tokio::test]
async fn csi_token_deleted_secret_is_restored_within_seconds() {
    let env = Env::new("csitok-del").await;
    let issuer = LocalIssuer::new(Duration::from_secs(120));
    // A 60 s interval: a quick restore can only come from the watch.
    let run = env.spawn(long_interval(&env), issuer);
    let s = env
        .wait_secret("Secret created", Duration::from_secs(10), |_| true)
        .await;
    let (uid, token) = (s.metadata.uid.clone(), data(&s, "access_token"));

    env.secrets.delete(SECRET, &Default::default()).await.unwrap();
    let deleted_at = std::time::Instant::now();
    let back = env
        .wait_secret("Secret recreated", Duration::from_secs(5), |n| {
            n.metadata.uid != uid
        })
        .await;
    let took = deleted_at.elapsed();
    eprintln!("deleted Secret restored after {took:?}");
    assert!(took < Duration::from_secs(3), "restored after {took:?}");
    assert_eq!(
        data(&back, "access_token"),
        token,
        "the still-valid token is written back"
    );
    assert_eq!(run.metrics.writes(), 2);
    run.stop().await;
    env.cleanup().await;
}

#[tokio::test]
async fn csi_token_edited_secret_is_repaired_and_foreign_additions_kept() {
    let env = Env::new("csitok-edit").await;
    let run = env.spawn(long_interval(&env), LocalIssuer::new(Duration::from_secs(120)));
    let s = env
        .wait_secret("Secret created", Duration::from_secs(10), |_| true)
        .await;
    let token = data(&s, "access_token").unwrap();

    // Someone breaks our data and labels and adds their own things.
    let mut edited = s.clone();
    let d = edited.data.as_mut().unwrap();
    d.insert("access_token".into(), ByteString(b"garbage".to_vec()));
    d.remove("region");
    d.insert("cluster_name".into(), ByteString(b"c1".to_vec()));
    let labels = edited.metadata.labels.as_mut().unwrap();
    labels.remove("app.kubernetes.io/component");
    labels.insert("team".into(), "storage".into());
    edited.metadata.annotations = Some(BTreeMap::from([("note".into(), "hands off".into())]));
    let edited_at = std::time::Instant::now();
    env.secrets
        .replace(SECRET, &PostParams::default(), &edited)
        .await
        .unwrap();

    let fixed = env
        .wait_secret("Secret repaired", Duration::from_secs(5), |n| {
            data(n, "access_token").as_deref() == Some(token.as_str())
                && data(n, "region").is_some()
                && n.metadata
                    .labels
                    .as_ref()
                    .unwrap()
                    .contains_key("app.kubernetes.io/component")
        })
        .await;
    eprintln!("edited Secret repaired after {:?}", edited_at.elapsed());
    assert_eq!(data(&fixed, "region").as_deref(), Some("zrh"));
    assert_eq!(
        data(&fixed, "cluster_name").as_deref(),
        Some("c1"),
        "foreign data key kept"
    );
    assert_eq!(
        fixed.metadata.labels.as_ref().unwrap()["team"],
        "storage",
        "foreign label kept"
    );
    assert_eq!(
        fixed.metadata.annotations.as_ref().unwrap()["note"],
        "hands off",
        "annotation kept"
    );

    // An addition that touches nothing of ours causes no write.
    let rv = resource_version(&fixed);
    let writes = run.metrics.writes();
    let mut annotated = fixed.clone();
    annotated
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert("more".into(), "x".into());
    let annotated = env
        .secrets
        .replace(SECRET, &PostParams::default(), &annotated)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        resource_version(&env.secret().await.unwrap()),
        resource_version(&annotated)
    );
    assert_ne!(resource_version(&annotated), rv);
    assert_eq!(run.metrics.writes(), writes);
    assert!(!run.logs.text().contains(&token));
    run.stop().await;
    env.cleanup().await;
}

fn other_type_secret(ns: &str, ours: bool) -> Secret {
    let labels =
        ours.then(|| BTreeMap::from([("app.kubernetes.io/managed-by".into(), "cloudsigma-ccm".into())]));
    Secret {
        metadata: ObjectMeta {
            name: Some(SECRET.into()),
            namespace: Some(ns.into()),
            labels,
            ..ObjectMeta::default()
        },
        type_: Some("example.com/other".into()),
        data: Some(BTreeMap::from([("x".into(), ByteString(b"y".to_vec()))])),
        ..Secret::default()
    }
}

#[tokio::test]
async fn csi_token_wrong_type_secret_is_recreated_only_when_ours() {
    // Ours (labelled) but of another type: deleted and recreated as Opaque.
    let env = Env::new("csitok-type").await;
    let old = env
        .secrets
        .create(&PostParams::default(), &other_type_secret(&env.ns, true))
        .await
        .unwrap();
    let run = env.spawn(long_interval(&env), LocalIssuer::new(Duration::from_secs(120)));
    let s = env
        .wait_secret("Secret recreated as Opaque", Duration::from_secs(10), |s| {
            s.type_.as_deref() == Some("Opaque")
        })
        .await;
    assert_ne!(s.metadata.uid, old.metadata.uid);
    assert!(data(&s, "access_token").is_some());
    run.stop().await;
    env.cleanup().await;

    // Not ours: left alone, counted, logged and reported in a Warning Event on it.
    let env = Env::new("csitok-foreign").await;
    let foreign = env
        .secrets
        .create(&PostParams::default(), &other_type_secret(&env.ns, false))
        .await
        .unwrap();
    let run = env.spawn(long_interval(&env), LocalIssuer::new(Duration::from_secs(120)));
    let metrics = run.metrics.clone();
    eventually("two foreign_secret failures", Duration::from_secs(10), || {
        let n = metrics.failures(FailureReason::ForeignSecret);
        async move { n >= 2 }
    })
    .await;
    let now = env.secret().await.unwrap();
    assert_eq!(now.metadata.uid, foreign.metadata.uid);
    assert_eq!(
        resource_version(&now),
        resource_version(&foreign),
        "a foreign Secret is never written"
    );
    assert_eq!(run.metrics.writes(), 0);
    assert!(
        run.logs.text().contains("is not managed by this controller"),
        "{}",
        run.logs.text()
    );
    let events = warning_events(&env.client, &env.ns).await;
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("ForeignSecret")),
        "{events:?}"
    );
    run.stop().await;
    env.cleanup().await;
}

async fn warning_events(client: &Client, ns: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(SECRET)
                && e.reporting_controller.as_deref() == Some("cloudsigma-ccm")
        })
        .collect()
}

#[tokio::test]
async fn csi_token_missing_namespace_is_reported_then_created_with_flag() {
    let client = testkit::client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());

    // Without --csi-token-create-namespace: a clear error, retries, no namespace created...
    let env = Env::without_namespace(client.clone(), testkit::unique_name("csitok-nons"));
    let run = env.spawn(env.config(), LocalIssuer::new(Duration::from_secs(120)));
    let metrics = run.metrics.clone();
    eventually(
        "three namespace_missing failures",
        Duration::from_secs(10),
        || {
            let n = metrics.failures(FailureReason::NamespaceMissing);
            async move { n >= 3 }
        },
    )
    .await;
    assert!(namespaces.get_opt(&env.ns).await.unwrap().is_none());
    let logs = run.logs.text();
    assert!(logs.contains(&format!("namespace \"{}\"", env.ns)), "{logs}");
    assert!(logs.contains("--csi-token-create-namespace"), "{logs}");
    // ...and once someone creates it, the next retry writes the Secret.
    common::create_namespace(&client, &env.ns).await;
    env.wait_secret(
        "Secret after the namespace appeared",
        Duration::from_secs(5),
        |_| true,
    )
    .await;
    run.stop().await;
    env.cleanup().await;

    // With the flag: the namespace is created (labelled) and the Secret written.
    let env = Env::without_namespace(client.clone(), testkit::unique_name("csitok-mkns"));
    let config = ccm_csitoken::Config {
        create_namespace: true,
        ..env.config()
    };
    let run = env.spawn(config, LocalIssuer::new(Duration::from_secs(120)));
    env.wait_secret("Secret in the created namespace", Duration::from_secs(10), |_| {
        true
    })
    .await;
    let ns = namespaces.get(&env.ns).await.unwrap();
    assert_eq!(
        ns.metadata
            .labels
            .as_ref()
            .unwrap()
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("cloudsigma-ccm")
    );
    assert_eq!(run.metrics.failures(FailureReason::NamespaceMissing), 0);
    run.stop().await;
    env.cleanup().await;
}

/// The identity the manifest binds.
const RBAC_USER: &str = "system:serviceaccount:kube-system:cloudsigma-ccm";

/// Role and RoleBinding of `deploy/tenant-rbac/csi-token.yaml`, moved to namespace `ns`.
fn manifest_objects(ns: &str) -> (Role, RoleBinding) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/tenant-rbac/csi-token.yaml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let (mut role, mut binding) = (None, None);
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value = serde_json::to_value(serde_yaml::Value::deserialize(doc).unwrap()).unwrap();
        match value["kind"].as_str() {
            Some("Role") => role = Some(serde_json::from_value::<Role>(value).unwrap()),
            Some("RoleBinding") => binding = Some(serde_json::from_value::<RoleBinding>(value).unwrap()),
            other => panic!("unexpected object {other:?} in {path}"),
        }
    }
    let (mut role, mut binding) = (role.unwrap(), binding.unwrap());
    assert_eq!(role.metadata.namespace.as_deref(), Some("cloudsigma-csi"));
    assert_eq!(binding.metadata.namespace.as_deref(), Some("cloudsigma-csi"));
    role.metadata.namespace = Some(ns.into());
    binding.metadata.namespace = Some(ns.into());
    (role, binding)
}

#[tokio::test]
async fn csi_token_rbac_role_from_manifest_is_sufficient() {
    let env = Env::new("csitok-rbac").await;
    let (role, binding) = manifest_objects(&env.ns);
    let subject = &binding.subjects.as_ref().unwrap()[0];
    assert_eq!(
        format!(
            "system:serviceaccount:{}:{}",
            subject.namespace.as_deref().unwrap(),
            subject.name
        ),
        RBAC_USER
    );
    Api::<Role>::namespaced(env.client.clone(), &env.ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(env.client.clone(), &env.ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    // A client acting as the bound identity (the admin may impersonate).
    let mut config = testkit::config().await.unwrap();
    config.auth_info.impersonate = Some(RBAC_USER.into());
    let restricted = Client::try_from(config).unwrap();
    // It may not read other Secrets, nor list them all.
    let secrets: Api<Secret> = Api::namespaced(restricted.clone(), &env.ns);
    let err = secrets.get_opt("something-else").await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 403), "{err}");
    let err = secrets.list(&ListParams::default()).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 403), "{err}");

    let issuer = LocalIssuer::new(Duration::from_secs(120));
    let run = env.spawn_with(restricted, long_interval(&env), issuer.clone());
    // create + watch (list/watch restricted by name through the field selector)...
    let s = env
        .wait_secret("Secret created", Duration::from_secs(10), |_| true)
        .await;
    // ...update (repair of an edit, noticed through the watch)...
    let mut edited = s.clone();
    edited
        .data
        .as_mut()
        .unwrap()
        .insert("access_token".into(), ByteString(b"garbage".to_vec()));
    env.secrets
        .replace(SECRET, &PostParams::default(), &edited)
        .await
        .unwrap();
    let token = data(&s, "access_token");
    env.wait_secret("edit repaired", Duration::from_secs(5), |n| {
        data(n, "access_token") == token
    })
    .await;
    // ...and an Event about a failure.
    issuer.set_failing(true);
    env.secrets
        .replace(SECRET, &PostParams::default(), &{
            let mut e = env.secret().await.unwrap();
            e.data.as_mut().unwrap().remove("region");
            e
        })
        .await
        .unwrap();
    let client = env.client.clone();
    let ns = env.ns.clone();
    eventually(
        "a Warning Event published by the restricted identity",
        Duration::from_secs(10),
        || {
            let (client, ns) = (client.clone(), ns.clone());
            async move { !warning_events(&client, &ns).await.is_empty() }
        },
    )
    .await;
    let events = warning_events(&env.client, &env.ns).await;
    assert_eq!(events[0].reason.as_deref(), Some("TokenIssuerTimeout"));
    let logs = run.logs.text();
    assert!(
        !logs.contains("forbidden") && !logs.contains("Forbidden"),
        "{logs}"
    );
    assert_eq!(run.metrics.failures(FailureReason::KubeError), 0);
    run.stop().await;
    env.cleanup().await;
}

#[tokio::test]
async fn csi_token_competing_writer_cannot_cause_a_hot_loop() {
    let env = Env::new("csitok-fight").await;
    let config = ccm_csitoken::Config {
        min_delay: Duration::from_secs(1),
        ..long_interval(&env)
    };
    let run = env.spawn(config, LocalIssuer::new(Duration::from_secs(120)));
    let s = env
        .wait_secret("Secret created", Duration::from_secs(10), |_| true)
        .await;
    let token = data(&s, "access_token");

    // Another writer overwrites the token every 50 ms for 3 s.
    let start = std::time::Instant::now();
    let mut overwrites = 0;
    while start.elapsed() < Duration::from_secs(3) {
        let mut other = env.secret().await.unwrap();
        other
            .data
            .as_mut()
            .unwrap()
            .insert("access_token".into(), ByteString(b"other-writer".to_vec()));
        if env
            .secrets
            .replace(SECRET, &PostParams::default(), &other)
            .await
            .is_ok()
        {
            overwrites += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let writes = run.metrics.writes() - 1;
    eprintln!("{overwrites} foreign overwrites answered by {writes} repairs in 3 s");
    assert!(overwrites >= 10, "{overwrites}");
    // At most one repair per min_delay (1 s), not one per overwrite.
    assert!((1..=4).contains(&writes), "{writes} repairs");
    // Once the other writer stops, the Secret is repaired.
    env.wait_secret("repaired after the fight", Duration::from_secs(3), |n| {
        data(n, "access_token") == token
    })
    .await;
    run.stop().await;
    env.cleanup().await;
}
