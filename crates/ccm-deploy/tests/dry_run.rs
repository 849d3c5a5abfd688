//! Every manifest under deploy/ and the rendered Deployment pass a server-side dry run against the
//! genuine local kube-apiserver (v1.20.2), and the apiserver keeps every field sent (so a misspelt or
//! unsupported field fails the test instead of being dropped silently). Kinds it does not serve must be
//! exactly the expected ones; `manifests.rs` checks their fields. Each test uses namespaces of its own;
//! nothing is stored except those namespaces.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use ccm_deploy::{RenderOptions, parse_cluster, render_yaml};
use common::{DryRun, configmap_data, documents, dry_run, dry_run_all, instantiate, kustomize, namespace};
use serde_json::{Value, json};

fn kinds(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| d["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn dry_run_rendered_deployment_for_a_new_cluster() {
    let client = testkit::client().await.unwrap();
    let ns = namespace(&client, "ccm-deploy-tenant").await;
    let cluster = parse_cluster(&format!(
        r#"
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: dry-1
  namespace: {ns}
  annotations:
    cloudsigma.com/owner-email: owner@example.com
    cloudsigma.com/region: zrh
"#
    ))
    .unwrap();
    for opts in [
        RenderOptions::default(),
        RenderOptions {
            replicas: 2,
            csi_token: true,
            legacy_secret: Some("cloudsigma-legacy".into()),
            extra_args: vec!["--log-format=json".into()],
            ..RenderOptions::default()
        },
    ] {
        let docs = documents(&render_yaml(&cluster, &opts).unwrap());
        let namespaces = BTreeMap::from([(ns.clone(), ns.clone())]);
        for doc in &docs {
            match dry_run(&client, doc, &namespaces).await {
                DryRun::Accepted(stored) => {
                    assert_eq!(stored["metadata"]["namespace"], json!(ns));
                    assert_eq!(stored["metadata"]["name"], "csccm-dry-1");
                }
                DryRun::NotServed => panic!("{} not served", doc["kind"]),
            }
        }
    }
}

#[tokio::test]
async fn dry_run_ccm_kustomize_base_and_overlay() {
    let client = testkit::client().await.unwrap();
    for dir in ["deploy/ccm/base", "deploy/ccm/overlays/example"] {
        let docs = kustomize(dir);
        assert_eq!(kinds(&docs), ["Deployment"], "{dir}");
        let unserved = dry_run_all(&client, &docs).await;
        assert!(unserved.is_empty(), "{dir}: {unserved:?}");
    }
}

#[tokio::test]
async fn dry_run_tenant_rbac() {
    let client = testkit::client().await.unwrap();
    let docs = kustomize("deploy/tenant-rbac");
    assert_eq!(docs.len(), 10);
    let unserved = dry_run_all(&client, &docs).await;
    assert!(unserved.is_empty(), "{unserved:?}");
}

#[tokio::test]
async fn dry_run_sveltos_configmaps_and_their_documents_after_templating() {
    let client = testkit::client().await.unwrap();
    let docs = kustomize("deploy/sveltos");
    // The management-cluster objects: two ConfigMaps (served) and two ClusterProfiles (a CRD the test
    // apiserver does not have).
    let unserved = dry_run_all(&client, &docs).await;
    assert_eq!(kinds(&unserved), ["ClusterProfile", "ClusterProfile"]);

    // What Sveltos deploys into a tenant cluster, for a cluster at 198.51.100.20:6443.
    let mut tenant = Vec::new();
    for cm in docs.iter().filter(|d| d["kind"] == "ConfigMap") {
        for (_, text) in configmap_data(cm) {
            tenant.extend(documents(&instantiate(&text, "198.51.100.20", 6443)));
        }
    }
    let unserved = dry_run_all(&client, &tenant).await;
    assert_eq!(kinds(&unserved), ["VolumeSnapshotClass"]);
}

#[tokio::test]
async fn dry_run_check_catches_unknown_fields_and_invalid_objects() {
    // The checks above can fail: an unknown field is reported even though the apiserver accepts the
    // object, and an invalid object is refused.
    let client = testkit::client().await.unwrap();
    let ns = namespace(&client, "ccm-deploy-neg").await;
    let namespaces = BTreeMap::from([("x".to_owned(), ns)]);
    let base = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "x"}, "data": {"a": "b"}
    });
    assert!(matches!(
        dry_run(&client, &base, &namespaces).await,
        DryRun::Accepted(_)
    ));

    let mut typo = base.clone();
    typo["dataa"] = json!({"a": "b"});
    let c = client.clone();
    let ns2 = namespaces.clone();
    let result = tokio::spawn(async move { dry_run(&c, &typo, &ns2).await }).await;
    let msg = panic_message(result);
    assert!(msg.contains("dataa") && msg.contains("dropped"), "{msg}");

    let mut invalid = base.clone();
    invalid["metadata"]["name"] = json!("Not_Valid");
    let c = client.clone();
    let result = tokio::spawn(async move { dry_run(&c, &invalid, &namespaces).await }).await;
    let msg = panic_message(result);
    assert!(msg.contains("refused") && msg.contains("Not_Valid"), "{msg}");

    let crd = json!({"apiVersion": "config.projectsveltos.io/v1beta1", "kind": "ClusterProfile", "metadata": {"name": "p"}});
    assert!(matches!(
        dry_run(&client, &crd, &BTreeMap::new()).await,
        DryRun::NotServed
    ));
}

fn panic_message<T: std::fmt::Debug>(result: Result<T, tokio::task::JoinError>) -> String {
    let err = result.expect_err("the check should have failed");
    let payload = err.into_panic();
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}
