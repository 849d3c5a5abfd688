//! The tenant RBAC, applied to the genuine local kube-apiserver, grants the CCM's ServiceAccount what
//! its controllers do and nothing more: checked verb by verb with SubjectAccessReviews, and by running
//! the real leader election (kube-lease-manager) and Node Event publisher through a client that
//! impersonates the ServiceAccount. Cluster-scoped objects get unique names and are deleted at the end.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use ccm_deploy::{TenantRbacOptions, render_tenant_rbac};
use ccm_node::events::{EventKind, NodeEvents};
use common::{documents, namespace};
use k8s_openapi::api::{
    authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
    core::v1::{Event, Node, Secret},
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams},
    discovery::Scope,
};
use serde_json::{Value, json};

struct Access<'a> {
    verb: &'a str,
    group: &'a str,
    resource: &'a str,
    subresource: &'a str,
    namespace: &'a str,
    name: &'a str,
}

fn access<'a>(
    verb: &'a str,
    group: &'a str,
    resource: &'a str,
    namespace: &'a str,
    name: &'a str,
) -> Access<'a> {
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    Access {
        verb,
        group,
        resource,
        subresource,
        namespace,
        name,
    }
}

async fn allowed(admin: &Client, user: &str, a: &Access<'_>) -> bool {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_owned()),
            resource_attributes: Some(ResourceAttributes {
                verb: opt(a.verb),
                group: Some(a.group.to_owned()),
                resource: opt(a.resource),
                subresource: opt(a.subresource),
                namespace: opt(a.namespace),
                name: opt(a.name),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let answer = Api::<SubjectAccessReview>::all(admin.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    answer.status.unwrap().allowed
}

/// Creates `doc` for real; returns (api, name) for the cleanup.
async fn create(admin: &Client, doc: &Value) -> (Api<DynamicObject>, String) {
    let api_version = doc["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, doc["kind"].as_str().unwrap());
    let (resource, caps) = kube::discovery::pinned_kind(admin, &gvk).await.unwrap();
    let api: Api<DynamicObject> = if caps.scope == Scope::Namespaced {
        Api::namespaced_with(
            admin.clone(),
            doc["metadata"]["namespace"].as_str().unwrap(),
            &resource,
        )
    } else {
        Api::all_with(admin.clone(), &resource)
    };
    let object: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
    api.create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("creating {} {}: {e}", doc["kind"], doc["metadata"]["name"]));
    (api, doc["metadata"]["name"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn tenant_rbac_grants_the_ccm_exactly_what_it_needs() {
    let admin = testkit::client().await.unwrap();
    let cluster = testkit::unique_name("rbac");
    let sa_ns = namespace(&admin, "ccm-deploy-sa").await;
    let csi_ns = namespace(&admin, "ccm-deploy-csi").await;
    let suffix = testkit::unique_name("t");
    let opts = TenantRbacOptions {
        service_account_namespace: sa_ns.clone(),
        lease_namespace: sa_ns.clone(),
        csi_token: true,
        ..TenantRbacOptions::default()
    };
    let yaml = render_tenant_rbac(&cluster, &opts).unwrap().to_yaml().unwrap();

    // Apply it, with the CSI token namespace mapped to a fresh one and unique names for what is
    // cluster-wide or in `default`, so parallel and earlier runs never collide.
    let mut created = Vec::new();
    for mut doc in documents(&yaml) {
        if doc["kind"] == "Namespace" {
            continue;
        }
        if doc["metadata"]["namespace"] == "cloudsigma-csi" {
            doc["metadata"]["namespace"] = json!(csi_ns);
        }
        let shared = doc["metadata"].get("namespace").is_none() || doc["metadata"]["namespace"] == "default";
        if shared && doc["kind"] != "ServiceAccount" {
            let name = format!("{}-{suffix}", doc["metadata"]["name"].as_str().unwrap());
            doc["metadata"]["name"] = json!(name);
            if doc.get("roleRef").is_some() {
                doc["roleRef"]["name"] = json!(name);
            }
        }
        created.push(create(&admin, &doc).await);
    }

    let user = format!("system:serviceaccount:{sa_ns}:cloudsigma-ccm");
    let lease = format!("cloudsigma-ccm-{cluster}");
    let must = [
        access("get", "", "nodes", "", "n1"),
        access("list", "", "nodes", "", ""),
        access("watch", "", "nodes", "", ""),
        access("update", "", "nodes", "", "n1"),
        access("patch", "", "nodes", "", "n1"),
        access("delete", "", "nodes", "", "n1"),
        access("patch", "", "nodes/status", "", "n1"),
        access("create", "", "events", "default", ""),
        access("patch", "", "events", "default", "n1.abc"),
        access("create", "coordination.k8s.io", "leases", &sa_ns, ""),
        access("get", "coordination.k8s.io", "leases", &sa_ns, &lease),
        access("patch", "coordination.k8s.io", "leases", &sa_ns, &lease),
        access("get", "", "secrets", &csi_ns, "cloudsigma-token"),
        access("watch", "", "secrets", &csi_ns, "cloudsigma-token"),
        access("update", "", "secrets", &csi_ns, "cloudsigma-token"),
        access("create", "", "secrets", &csi_ns, ""),
        access("create", "events.k8s.io", "events", &csi_ns, ""),
    ];
    let must_not = [
        access("create", "", "nodes", "", ""),
        access("update", "", "nodes/status", "", "n1"),
        access("list", "", "pods", "", ""),
        access("get", "", "secrets", "kube-system", "anything"),
        access("list", "", "secrets", &csi_ns, ""),
        access("get", "", "secrets", &csi_ns, "other-secret"),
        access("update", "", "secrets", &csi_ns, "other-secret"),
        access(
            "get",
            "coordination.k8s.io",
            "leases",
            &sa_ns,
            "kube-controller-manager",
        ),
        access(
            "patch",
            "coordination.k8s.io",
            "leases",
            "kube-system",
            "kube-scheduler",
        ),
        access("delete", "coordination.k8s.io", "leases", &sa_ns, &lease),
        access("create", "", "events", "kube-system", ""),
        access("delete", "", "events", "default", "n1.abc"),
        access("create", "", "namespaces", "", ""),
        access("get", "", "configmaps", &sa_ns, "x"),
        access("create", "", "serviceaccounts/token", &sa_ns, "cloudsigma-ccm"),
    ];
    // The RBAC authorizer works from informer caches: wait until the grants are visible.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !allowed(&admin, &user, &must[0]).await {
        assert!(Instant::now() < deadline, "RBAC never took effect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for a in &must {
        assert!(
            allowed(&admin, &user, a).await,
            "denied: {} {}/{}{} in {:?} name {:?}",
            a.verb,
            a.group,
            a.resource,
            a.subresource,
            a.namespace,
            a.name
        );
    }
    for a in &must_not {
        assert!(
            !allowed(&admin, &user, a).await,
            "allowed but should not be: {} {}/{}{} in {:?} name {:?}",
            a.verb,
            a.group,
            a.resource,
            a.subresource,
            a.namespace,
            a.name
        );
    }

    // The real code, as the ServiceAccount.
    let mut config = testkit::config().await.unwrap();
    config.auth_info.impersonate = Some(user.clone());
    let restricted = Client::try_from(config).unwrap();

    // Leader election exactly as the ccm binary does it: get, create, then apply/strategic patches.
    let manager = kube_lease_manager::LeaseManagerBuilder::new(restricted.clone(), &lease)
        .with_namespace(&sa_ns)
        .with_identity("ccm-deploy-test")
        .with_duration(5)
        .with_grace(1)
        .build()
        .await
        .unwrap();
    let leader = tokio::time::timeout(Duration::from_secs(10), manager.changed())
        .await
        .expect("no leadership within 10 s")
        .unwrap();
    assert!(leader, "the ServiceAccount could not take its Lease");
    manager.release().await.unwrap();
    // Another Lease in the same namespace is out of reach.
    let other = kube_lease_manager::LeaseManagerBuilder::new(restricted.clone(), "kube-controller-manager")
        .with_namespace(&sa_ns)
        .with_identity("ccm-deploy-test")
        .build()
        .await;
    assert!(other.is_err(), "a foreign Lease was usable");

    // Node Events: created, then the repeat patched into a count of 2.
    let mut node: Node =
        serde_json::from_value(json!({"metadata": {"name": format!("n-{suffix}")}})).unwrap();
    node.metadata.uid = Some(suffix.clone());
    let events = NodeEvents::new(restricted.clone(), Some("ccm-deploy-test".into()));
    for _ in 0..2 {
        events
            .publish(&node, EventKind::Warning, "ServerNameNotFound", "test event")
            .await
            .unwrap();
    }
    let stored = Api::<Event>::namespaced(admin.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|e| e.involved_object.uid.as_deref() == Some(suffix.as_str()))
        .expect("the Event was not stored");
    assert_eq!(stored.count, Some(2));
    Api::<Event>::namespaced(admin.clone(), "default")
        .delete(&stored.name_any(), &DeleteParams::default())
        .await
        .unwrap();

    // And it reads no Secrets outside its one.
    let secrets: Api<Secret> = Api::namespaced(restricted.clone(), "kube-system");
    let err = secrets.list(&ListParams::default()).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 403), "{err}");

    for (api, name) in created {
        api.delete(&name, &DeleteParams::default()).await.unwrap();
    }
}
