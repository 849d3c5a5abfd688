//! Shared test support: the repository's manifests, `kubectl kustomize`, and server-side dry runs
//! against the genuine local kube-apiserver.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client,
    api::{DynamicObject, GroupVersionKind, PostParams},
    discovery::Scope,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file of the repository as text.
pub fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every document of a YAML stream, as JSON values (empty and comment-only documents skipped).
pub fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("invalid YAML: {e}\n{yaml}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// The kubectl to use: `$KUBECTL`, else `kubectl` on the PATH.
pub fn kubectl() -> String {
    std::env::var("KUBECTL")
        .ok()
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| "kubectl".into())
}

/// `kubectl kustomize <repo>/<dir>`, parsed. Fails (never skips) when kubectl is missing.
pub fn kustomize(dir: &str) -> Vec<Value> {
    let kubectl = kubectl();
    let out = Command::new(&kubectl)
        .arg("kustomize")
        .arg(repo().join(dir))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{kubectl} kustomize` ({e}): these tests need kubectl (Debian package \
                 kubernetes-client, or any kubectl >= 1.20; set KUBECTL to use another)"
            )
        });
    assert!(
        out.status.success(),
        "{kubectl} kustomize {dir} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    documents(&String::from_utf8(out.stdout).unwrap())
}

/// `(kind, namespace, name)` of a document.
pub fn key(doc: &Value) -> (String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (
        s(&doc["kind"]),
        s(&doc["metadata"]["namespace"]),
        s(&doc["metadata"]["name"]),
    )
}

/// Documents by `(kind, namespace, name)`; panics on duplicates.
pub fn by_key(docs: &[Value]) -> BTreeMap<(String, String, String), Value> {
    let mut map = BTreeMap::new();
    for d in docs {
        assert!(
            map.insert(key(d), d.clone()).is_none(),
            "duplicate object {:?}",
            key(d)
        );
    }
    map
}

/// The one document of `kind` named `name`.
pub fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| {
            panic!(
                "no {kind} {name} in {:?}",
                docs.iter().map(key).collect::<Vec<_>>()
            )
        })
}

/// Asserts that every field of `sent` is present with the same value in `got` (objects recursively;
/// arrays element by element with equal lengths). A field the server does not know is dropped from
/// what it returns, so this catches misspelt or unsupported fields that a dry run alone accepts.
pub fn assert_subset(sent: &Value, got: &Value, path: &str) {
    match (sent, got) {
        (Value::Object(s), Value::Object(g)) => {
            for (k, v) in s {
                let p = format!("{path}.{k}");
                let Some(gv) = g.get(k) else {
                    panic!("{p}: the server dropped this field (unknown or unsupported): {v}");
                };
                assert_subset(v, gv, &p);
            }
        }
        (Value::Array(s), Value::Array(g)) => {
            assert_eq!(s.len(), g.len(), "{path}: sent {sent}, the server kept {got}");
            for (i, (a, b)) in s.iter().zip(g).enumerate() {
                assert_subset(a, b, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(sent, got, "{path}: sent {sent}, the server returned {got}"),
    }
}

/// What the apiserver made of one document.
#[derive(Debug)]
pub enum DryRun {
    /// Accepted; the object as it would have been stored.
    Accepted(Value),
    /// The apiserver does not serve this kind (e.g. a CRD that is not installed).
    NotServed,
}

/// Creates a real namespace for a test (they cannot be deleted on this apiserver: no namespace
/// controller runs, so they stay Terminating; unique names keep runs apart).
pub async fn namespace(client: &Client, prefix: &str) -> String {
    let name = testkit::unique_name(prefix);
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    name
}

/// Server-side dry run of `doc` (a create with `dryRun=All`). Namespaced objects go into
/// `namespaces[their namespace]` (which must exist); a cluster-scoped object whose name is taken is
/// retried once under a unique name (nothing is stored either way). The returned object is checked to
/// hold every field that was sent.
pub async fn dry_run(client: &Client, doc: &Value, namespaces: &BTreeMap<String, String>) -> DryRun {
    let api_version = doc["apiVersion"].as_str().unwrap();
    let kind = doc["kind"].as_str().unwrap();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, caps) = match kube::discovery::pinned_kind(client, &gvk).await {
        Ok(found) => found,
        Err(kube::Error::Api(s)) if s.code == 404 => return DryRun::NotServed,
        Err(kube::Error::Discovery(_)) => return DryRun::NotServed,
        Err(e) => panic!("discovery of {api_version} {kind}: {e}"),
    };
    let mut sent = doc.clone();
    let api: Api<DynamicObject> = if caps.scope == Scope::Namespaced {
        let original = doc["metadata"]["namespace"]
            .as_str()
            .unwrap_or_else(|| panic!("namespaced {kind} without a namespace: {doc}"));
        let ns = namespaces
            .get(original)
            .unwrap_or_else(|| panic!("no test namespace for {original}"));
        sent["metadata"]["namespace"] = json!(ns);
        Api::namespaced_with(client.clone(), ns, &resource)
    } else {
        assert!(
            doc["metadata"].get("namespace").is_none(),
            "cluster-scoped {kind} with a namespace"
        );
        Api::all_with(client.clone(), &resource)
    };
    let params = PostParams {
        dry_run: true,
        field_manager: Some("ccm-deploy-test".into()),
    };
    let object: DynamicObject = serde_json::from_value(sent.clone()).unwrap();
    let created = match api.create(&params, &object).await {
        Err(kube::Error::Api(s)) if s.code == 409 && caps.scope == Scope::Cluster => {
            let name = format!(
                "{}-{}",
                doc["metadata"]["name"].as_str().unwrap(),
                testkit::unique_name("t")
            );
            sent["metadata"]["name"] = json!(name);
            let object: DynamicObject = serde_json::from_value(sent.clone()).unwrap();
            api.create(&params, &object).await
        }
        other => other,
    }
    .unwrap_or_else(|e| {
        panic!(
            "server-side dry run of {kind} {} refused: {e}",
            doc["metadata"]["name"]
        )
    });
    let got = serde_json::to_value(&created).unwrap();
    assert_subset(&sent, &got, &format!("{kind} {}", doc["metadata"]["name"]));
    DryRun::Accepted(got)
}

/// Dry-runs every document; returns the documents the apiserver does not serve. Namespaces named by
/// the documents are mapped to fresh test namespaces created here.
pub async fn dry_run_all(client: &Client, docs: &[Value]) -> Vec<Value> {
    let mut namespaces = BTreeMap::new();
    for d in docs {
        if let Some(ns) = d["metadata"]["namespace"].as_str()
            && !namespaces.contains_key(ns)
        {
            namespaces.insert(ns.to_owned(), namespace(client, "ccm-deploy-dr").await);
        }
    }
    let mut unserved = Vec::new();
    for d in docs {
        if let DryRun::NotServed = dry_run(client, d, &namespaces).await {
            unserved.push(d.clone());
        }
    }
    unserved
}

/// The `data` of a ConfigMap document as `(key, text)` pairs.
pub fn configmap_data(cm: &Value) -> Vec<(String, String)> {
    cm["data"]
        .as_object()
        .unwrap_or_else(|| panic!("ConfigMap without data: {cm}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

/// The two Sveltos template expressions the CSI manifests use.
pub const HOST_EXPR: &str = "{{ .Cluster.spec.controlPlaneEndpoint.host }}";
/// See [`HOST_EXPR`].
pub const PORT_EXPR: &str = "{{ .Cluster.spec.controlPlaneEndpoint.port }}";

/// What Sveltos does to a templated ConfigMap value for a cluster whose control-plane endpoint is
/// `host:port`, restricted to the two expressions the manifests may contain. Panics on any other
/// template action (Sveltos would evaluate it too).
pub fn instantiate(text: &str, host: &str, port: u16) -> String {
    let out = text
        .replace(HOST_EXPR, host)
        .replace(PORT_EXPR, &port.to_string());
    assert!(
        !out.contains("{{") && !out.contains("}}"),
        "template text other than the two control-plane expressions: {text}"
    );
    out
}
