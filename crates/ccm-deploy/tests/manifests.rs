//! The manifests under deploy/, built with `kubectl kustomize`: equal to what the crate renders, and
//! holding the fields the deployment depends on (including the kinds the test apiserver does not
//! serve: ClusterProfile, VolumeSnapshotClass). Needs kubectl, not a control plane.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use ccm_deploy::{RenderOptions, TenantRbacOptions, parse_cluster, render, render_tenant_rbac};
use common::{HOST_EXPR, PORT_EXPR, by_key, configmap_data, documents, find, instantiate, kustomize, read};
use serde_json::{Value, json};

fn example_cluster() -> ccm_deploy::DynamicObject {
    parse_cluster(&read("examples/cluster.yaml")).unwrap()
}

fn rendered(opts: &RenderOptions) -> Vec<Value> {
    documents(&render(&example_cluster(), opts).unwrap().to_yaml().unwrap())
}

#[test]
fn deploy_ccm_base_equals_the_rendered_example_cluster() {
    let base = kustomize("deploy/ccm/base");
    let expected = rendered(&RenderOptions {
        csi_token: true,
        ..RenderOptions::default()
    });
    assert_eq!(by_key(&base), by_key(&expected));
}

#[test]
fn deploy_ccm_overlay_equals_the_rendered_two_replica_cluster() {
    let overlay = kustomize("deploy/ccm/overlays/example");
    let expected = rendered(&RenderOptions {
        csi_token: true,
        replicas: 2,
        image: "registry.example.com/cloudsigma/cloudsigma-ccm:0.1.0".into(),
        ..RenderOptions::default()
    });
    assert_eq!(by_key(&overlay), by_key(&expected));
}

#[test]
fn deploy_tenant_rbac_equals_the_rendered_tenant_rbac() {
    let built = kustomize("deploy/tenant-rbac");
    let expected = documents(
        &render_tenant_rbac(
            "example",
            &TenantRbacOptions {
                csi_token: true,
                ..Default::default()
            },
        )
        .unwrap()
        .to_yaml()
        .unwrap(),
    );
    assert_eq!(by_key(&built), by_key(&expected));
}

fn sveltos() -> Vec<Value> {
    kustomize("deploy/sveltos")
}

#[test]
fn deploy_sveltos_configmaps_are_templated_and_instantiate_to_the_csi_manifests() {
    let docs = sveltos();
    for name in ["cloudsigma-csi", "cloudsigma-csi-snapshots"] {
        let cm = find(&docs, "ConfigMap", name);
        assert_eq!(cm["metadata"]["namespace"], "projectsveltos", "{name}");
        // Without this annotation Sveltos deploys the text verbatim (the seed's key fix).
        assert_eq!(
            cm["metadata"]["annotations"]["projectsveltos.io/template"], "ok",
            "{name}"
        );
    }
    let csi = find(&docs, "ConfigMap", "cloudsigma-csi");
    let data = configmap_data(csi);
    let keys: Vec<_> = data.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "00-namespace.yaml",
            "10-rbac.yaml",
            "20-csidriver.yaml",
            "30-storageclass.yaml",
            "40-controller.yaml"
        ]
    );
    let all: String = data.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(
        all.matches("{{").count(),
        8,
        "four sidecars x two expressions, nothing else"
    );
    assert_eq!(all.matches(HOST_EXPR).count(), 4);
    assert_eq!(all.matches(PORT_EXPR).count(), 4);

    let manifests: Vec<Value> = data
        .iter()
        .flat_map(|(_, text)| documents(&instantiate(text, "203.0.113.10", 6443)))
        .collect();
    let kinds: Vec<String> = manifests
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "Namespace/cloudsigma-csi",
            "ServiceAccount/cloudsigma-csi-controller",
            "ClusterRole/cloudsigma-csi-controller",
            "ClusterRoleBinding/cloudsigma-csi-controller",
            "Role/cloudsigma-csi-controller-leader-election",
            "RoleBinding/cloudsigma-csi-controller-leader-election",
            "CSIDriver/csi.cloudsigma.com",
            "StorageClass/cloudsigma-dssd",
            "Deployment/csi-controller",
        ]
    );

    let driver = find(&manifests, "CSIDriver", "csi.cloudsigma.com");
    assert_eq!(driver["spec"]["attachRequired"], true);
    assert_eq!(driver["spec"]["volumeLifecycleModes"], json!(["Persistent"]));
    let sc = find(&manifests, "StorageClass", "cloudsigma-dssd");
    assert_eq!(
        sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"],
        "true"
    );
    assert_eq!(sc["provisioner"], "csi.cloudsigma.com");
    assert_eq!(sc["parameters"], json!({"storage_type": "dssd"}));
    assert_eq!(sc["volumeBindingMode"], "WaitForFirstConsumer");
    assert_eq!(sc["allowVolumeExpansion"], true);

    let deploy = find(&manifests, "Deployment", "csi-controller");
    assert_eq!(deploy["metadata"]["namespace"], "cloudsigma-csi");
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "cloudsigma-csi-controller");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    let containers = pod["containers"].as_array().unwrap();
    let image = |name: &str| {
        containers
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no container {name}"))
    };
    for (name, repo) in [
        ("csi-provisioner", "registry.k8s.io/sig-storage/csi-provisioner:v"),
        ("csi-attacher", "registry.k8s.io/sig-storage/csi-attacher:v"),
        ("csi-resizer", "registry.k8s.io/sig-storage/csi-resizer:v"),
        ("csi-snapshotter", "registry.k8s.io/sig-storage/csi-snapshotter:v"),
    ] {
        let c = image(name);
        assert!(
            c["image"].as_str().unwrap().starts_with(repo),
            "{name}: {}",
            c["image"]
        );
        let args: Vec<&str> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(
            args.contains(&"--csi-address=/csi/csi.sock") && args.contains(&"--leader-election"),
            "{name}: {args:?}"
        );
        // The sidecars reach the tenant API server at the cluster's control-plane endpoint.
        let env = c["env"].as_array().unwrap();
        assert_eq!(
            env,
            &vec![
                json!({"name": "KUBERNETES_SERVICE_HOST", "value": "203.0.113.10"}),
                json!({"name": "KUBERNETES_SERVICE_PORT", "value": "6443"}),
            ],
            "{name}"
        );
    }
    let probe = image("liveness-probe");
    assert!(
        probe["image"]
            .as_str()
            .unwrap()
            .starts_with("registry.k8s.io/sig-storage/livenessprobe:v")
    );
    let driver_c = image("csi-controller");
    assert_eq!(driver_c["livenessProbe"]["httpGet"]["port"], "healthz");
    let env = driver_c["env"].as_array().unwrap();
    assert!(env.contains(&json!({"name": "CSI_ENDPOINT", "value": "unix:///csi/csi.sock"})));
    assert!(env.contains(&json!({"name": "CLOUDSIGMA_TOKEN_FILE", "value": "/etc/cloudsigma/access_token"})));
    // The token Secret is mounted as a directory, never with subPath (subPath mounts never update).
    let mount = driver_c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "cloudsigma-token")
        .unwrap();
    assert_eq!(
        mount,
        &json!({"name": "cloudsigma-token", "mountPath": "/etc/cloudsigma", "readOnly": true})
    );
    for c in containers {
        for m in c["volumeMounts"].as_array().unwrap() {
            assert!(
                m.get("subPath").is_none() && m.get("subPathExpr").is_none(),
                "{}: {m}",
                c["name"]
            );
        }
        assert_eq!(
            c["securityContext"]["allowPrivilegeEscalation"], false,
            "{}",
            c["name"]
        );
        assert_eq!(
            c["securityContext"]["capabilities"]["drop"],
            json!(["ALL"]),
            "{}",
            c["name"]
        );
    }
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "cloudsigma-token")
        .unwrap();
    assert_eq!(volume["secret"]["secretName"], "cloudsigma-token");
}

#[test]
fn deploy_sveltos_cluster_profiles_and_snapshot_class_have_the_expected_fields() {
    let docs = sveltos();
    let csi = find(&docs, "ClusterProfile", "cloudsigma-csi");
    assert_eq!(csi["apiVersion"], "config.projectsveltos.io/v1beta1");
    assert!(
        csi["metadata"].get("namespace").is_none(),
        "ClusterProfile is cluster-scoped"
    );
    assert_eq!(
        csi["spec"]["clusterSelector"],
        json!({"matchLabels": {"csi": "cloudsigma"}})
    );
    assert_eq!(
        csi["spec"]["policyRefs"],
        json!([{"kind": "ConfigMap", "name": "cloudsigma-csi", "namespace": "projectsveltos", "deploymentType": "Remote"}])
    );
    let snaps = find(&docs, "ClusterProfile", "cloudsigma-csi-snapshots");
    assert_eq!(
        snaps["spec"]["clusterSelector"]["matchLabels"],
        json!({"csi": "cloudsigma", "csi-snapshots": "cloudsigma"})
    );
    assert_eq!(snaps["spec"]["dependsOn"], json!(["cloudsigma-csi"]));
    assert_eq!(snaps["spec"]["policyRefs"][0]["name"], "cloudsigma-csi-snapshots");

    let cm = find(&docs, "ConfigMap", "cloudsigma-csi-snapshots");
    let data = configmap_data(cm);
    assert_eq!(data.len(), 1);
    let class = documents(&instantiate(&data[0].1, "h", 1));
    assert_eq!(class.len(), 1);
    assert_eq!(class[0]["apiVersion"], "snapshot.storage.k8s.io/v1");
    assert_eq!(class[0]["kind"], "VolumeSnapshotClass");
    assert_eq!(class[0]["metadata"]["name"], "cloudsigma-snapshot");
    assert_eq!(class[0]["driver"], "csi.cloudsigma.com");
    assert_eq!(class[0]["deletionPolicy"], "Delete");

    // The sample cluster is selected by the profile and has the endpoint the template reads.
    let cluster: Value = serde_yaml::from_str(&read("examples/cluster.yaml")).unwrap();
    assert_eq!(cluster["metadata"]["labels"]["csi"], "cloudsigma");
    assert!(cluster["spec"]["controlPlaneEndpoint"]["host"].is_string());
    assert!(cluster["spec"]["controlPlaneEndpoint"]["port"].is_u64());
}
