//! Proves the local control plane is a genuine kube-apiserver: a kubelet-style Node registration with
//! the uninitialized taint, a `nodes/status` patch, a 409 on a stale update, and a watch that sees
//! ADDED and MODIFIED.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, NodeAddress};
use kube::{
    Api,
    api::{PostParams, WatchEvent, WatchParams},
};
use serde_json::json;

const UNINITIALIZED: &str = "node.cloudprovider.kubernetes.io/uninitialized";

fn kubelet_style_node(name: &str) -> Node {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64"
            },
            "annotations": { "alpha.kubernetes.io/provided-node-ip": "10.0.0.7" }
        },
        "spec": {
            "taints": [{ "key": UNINITIALIZED, "value": "true", "effect": "NoSchedule" }]
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn genuine_apiserver_node_status_conflict_and_watch() {
    let cluster = testkit::exclusive().await.unwrap();
    let client = cluster.client();
    let version = client.apiserver_version().await.unwrap();
    eprintln!("control plane version: {}", version.git_version);

    let nodes: Api<Node> = Api::all(client);
    let name = testkit::unique_name("node");

    // Watch first, so the creation itself is observed.
    let mut watch = nodes
        .watch(
            &WatchParams::default()
                .fields(&format!("metadata.name={name}"))
                .timeout(30),
            "0",
        )
        .await
        .unwrap()
        .boxed();

    // Register the Node as a kubelet with --cloud-provider=external does.
    let created = nodes
        .create(&PostParams::default(), &kubelet_style_node(&name))
        .await
        .unwrap();
    let taints = created
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    // The TaintNodesByCondition admission plugin adds node.kubernetes.io/not-ready, as for a real kubelet.
    let uninit = taints
        .iter()
        .find(|t| t.key == UNINITIALIZED)
        .expect("uninitialized taint kept");
    assert_eq!(uninit.effect, "NoSchedule");
    assert!(
        taints.iter().any(|t| t.key == "node.kubernetes.io/not-ready"),
        "{taints:?}"
    );

    // Addresses go through the status subresource; a spec field sent there is ignored.
    let patch = json!({
        "spec": { "unschedulable": true },
        "status": { "addresses": [
            { "type": "InternalIP", "address": "10.0.0.7" },
            { "type": "ExternalIP", "address": "203.0.113.7" },
            { "type": "Hostname", "address": name }
        ]}
    });
    let patched = nodes
        .patch_status(
            &name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    let addrs = patched
        .status
        .as_ref()
        .and_then(|s| s.addresses.clone())
        .unwrap_or_default();
    assert_eq!(
        addrs,
        vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: "10.0.0.7".into()
            },
            NodeAddress {
                type_: "ExternalIP".into(),
                address: "203.0.113.7".into()
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: name.clone()
            },
        ]
    );
    assert_eq!(
        patched.spec.as_ref().and_then(|s| s.unschedulable),
        None,
        "spec must be ignored on /status"
    );

    // An update carrying the resourceVersion from before the status patch is a conflict.
    let mut stale = created.clone();
    stale
        .metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert("example.com/x".into(), "1".into());
    let err = nodes
        .replace(&name, &PostParams::default(), &stale)
        .await
        .unwrap_err();
    match &err {
        kube::Error::Api(status) => assert_eq!(status.code, 409, "{err}"),
        other => panic!("expected a 409 API error, got {other:?}"),
    }
    // ...and with the current resourceVersion it goes through.
    let mut fresh = nodes.get(&name).await.unwrap();
    fresh
        .metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert("example.com/x".into(), "1".into());
    nodes
        .replace(&name, &PostParams::default(), &fresh)
        .await
        .unwrap();

    // The watch saw the creation and the modifications.
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let ev = tokio::time::timeout(Duration::from_secs(10), watch.try_next())
            .await
            .expect("watch event within 10 s")
            .unwrap()
            .expect("watch stream ended early");
        match ev {
            WatchEvent::Added(n) => seen.push(("ADDED", n.metadata.resource_version)),
            WatchEvent::Modified(n) => seen.push(("MODIFIED", n.metadata.resource_version)),
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected watch event {other:?}"),
        }
    }
    assert_eq!(
        seen.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        ["ADDED", "MODIFIED", "MODIFIED"]
    );

    nodes.delete(&name, &Default::default()).await.unwrap();
}
