//! The rendered objects for sample cluster objects, field by field, and the rejections.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use ccm_deploy::{
    Error, RegionSource, RenderOptions, TenantRbacOptions, parse_cluster, render, render_tenant_rbac,
    render_yaml,
};
use k8s_openapi::{
    api::{apps::v1::Deployment, core::v1::EnvVar},
    apimachinery::pkg::util::intstr::IntOrString,
};

const SAMPLE: &str = r#"
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: prod-1
  namespace: team-a
  annotations:
    cloudsigma.com/owner-email: alice@example.org
    cloudsigma.com/region: fra
spec:
  controlPlaneEndpoint: {host: 198.51.100.7, port: 6443}
"#;

fn sample() -> ccm_deploy::DynamicObject {
    parse_cluster(SAMPLE).unwrap()
}

fn with_annotations(pairs: &[(&str, &str)]) -> ccm_deploy::DynamicObject {
    let mut c = sample();
    c.metadata.annotations = Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    c
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `(name, literal value or "secret:<name>/<key>[?]")` of each env var, in order.
fn env_summary(env: &[EnvVar]) -> Vec<(String, String)> {
    env.iter()
        .map(|e| {
            let v = match (&e.value, &e.value_from) {
                (Some(v), None) => v.clone(),
                (None, Some(from)) => {
                    let r = from.secret_key_ref.as_ref().unwrap();
                    let opt = if r.optional == Some(true) { "?" } else { "" };
                    format!("secret:{}/{}{opt}", r.name, r.key)
                }
                other => panic!("{}: {other:?}", e.name),
            };
            (e.name.clone(), v)
        })
        .collect()
}

#[test]
fn render_sample_cluster_field_by_field() {
    let objects = render(&sample(), &RenderOptions::default()).unwrap();
    assert_eq!(
        objects.facts.region_from,
        RegionSource::Annotation("cloudsigma.com/region".into())
    );
    let d: Deployment = objects.deployment;

    let labels = map(&[
        ("app.kubernetes.io/name", "cloudsigma-ccm"),
        ("app.kubernetes.io/instance", "prod-1"),
        ("app.kubernetes.io/component", "cloud-controller-manager"),
        ("app.kubernetes.io/managed-by", "ccm-deploy"),
        ("cluster.x-k8s.io/cluster-name", "prod-1"),
    ]);
    assert_eq!(d.metadata.name.as_deref(), Some("csccm-prod-1"));
    assert_eq!(d.metadata.namespace.as_deref(), Some("team-a"));
    assert_eq!(d.metadata.labels.as_ref(), Some(&labels));

    let spec = d.spec.unwrap();
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(
        spec.selector.match_labels,
        Some(map(&[
            ("app.kubernetes.io/name", "cloudsigma-ccm"),
            ("app.kubernetes.io/instance", "prod-1")
        ]))
    );
    assert_eq!(spec.selector.match_expressions, None);
    let strategy = spec.strategy.unwrap();
    assert_eq!(strategy.type_.as_deref(), Some("Recreate"));
    assert_eq!(strategy.rolling_update, None);

    let template_meta = spec.template.metadata.unwrap();
    assert_eq!(template_meta.labels, Some(labels));
    assert_eq!(
        template_meta.annotations,
        Some(map(&[
            ("prometheus.io/scrape", "true"),
            ("prometheus.io/port", "8080"),
            ("prometheus.io/path", "/metrics"),
        ]))
    );

    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(pod.enable_service_links, Some(false));
    assert_eq!(pod.service_account_name, None);
    let psc = pod.security_context.unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(psc.run_as_user, Some(65532));
    assert_eq!(psc.run_as_group, Some(65532));
    assert_eq!(psc.fs_group, Some(65532));
    assert_eq!(psc.seccomp_profile.unwrap().type_, "RuntimeDefault");

    assert_eq!(pod.containers.len(), 1);
    let c = &pod.containers[0];
    assert_eq!(c.name, "ccm");
    assert_eq!(
        c.image.as_deref(),
        Some(concat!("cloudsigma-ccm:", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
    assert_eq!(c.command, None);
    assert_eq!(
        c.args.as_deref(),
        Some(&strings(&["--kubeconfig=/etc/ccm/kubeconfig/value"])[..])
    );
    assert_eq!(
        env_summary(c.env.as_deref().unwrap()),
        vec![
            ("CLUSTER_NAME".into(), "prod-1".into()),
            ("CLOUDSIGMA_REGION".into(), "fra".into()),
            ("CLOUDSIGMA_USER_EMAIL".into(), "alice@example.org".into()),
            ("CLOUDSIGMA_IMPERSONATION_ENABLED".into(), "true".into()),
            (
                "CLOUDSIGMA_OAUTH_URL".into(),
                "secret:cloudsigma-impersonation/oauth-url?".into()
            ),
            (
                "CLOUDSIGMA_CLIENT_ID".into(),
                "secret:cloudsigma-impersonation/client-id".into()
            ),
            (
                "CLOUDSIGMA_CLIENT_SECRET".into(),
                "secret:cloudsigma-impersonation/client-secret".into()
            ),
        ]
    );

    let ports: Vec<_> = c
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap(),
                p.container_port,
                p.protocol.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        vec![
            ("metrics".into(), 8080, "TCP".into()),
            ("health".into(), 8081, "TCP".into())
        ]
    );
    for (probe, path, period, failures) in [
        (c.liveness_probe.as_ref().unwrap(), "/healthz", 10, 3),
        (c.readiness_probe.as_ref().unwrap(), "/readyz", 5, 2),
    ] {
        let get = probe.http_get.as_ref().unwrap();
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(get.port, IntOrString::String("health".into()));
        assert_eq!(get.scheme, None);
        assert_eq!(probe.period_seconds, Some(period));
        assert_eq!(probe.timeout_seconds, Some(2));
        assert_eq!(probe.failure_threshold, Some(failures));
    }

    let res = c.resources.as_ref().unwrap();
    let q = |m: &Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
        m.as_ref()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(q(&res.requests), map(&[("cpu", "50m"), ("memory", "64Mi")]));
    assert_eq!(q(&res.limits), map(&[("memory", "256Mi")]));

    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.privileged, None);
    let caps = sc.capabilities.as_ref().unwrap();
    assert_eq!(caps.drop.as_deref(), Some(&strings(&["ALL"])[..]));
    assert_eq!(caps.add, None);

    let mounts = c.volume_mounts.as_ref().unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].name, "kubeconfig");
    assert_eq!(mounts[0].mount_path, "/etc/ccm/kubeconfig");
    assert_eq!(mounts[0].read_only, Some(true));
    assert_eq!(mounts[0].sub_path, None);

    let volumes = pod.volumes.unwrap();
    assert_eq!(volumes.len(), 1);
    assert_eq!(volumes[0].name, "kubeconfig");
    let secret = volumes[0].secret.as_ref().unwrap();
    assert_eq!(secret.secret_name.as_deref(), Some("prod-1-kubeconfig"));
    let items = secret.items.as_ref().unwrap();
    assert_eq!(
        (items[0].key.as_str(), items[0].path.as_str()),
        ("value", "value")
    );
    assert_eq!(items.len(), 1);
    assert_eq!(secret.default_mode, Some(0o440));
    assert_eq!(secret.optional, Some(false));
}

#[test]
fn render_with_options_turns_on_csi_token_leader_election_and_legacy_fallback() {
    let opts = RenderOptions {
        replicas: 3,
        csi_token: true,
        image: "registry.example.com/ccm:1.2.3".into(),
        legacy_secret: Some("cloudsigma-legacy".into()),
        kubeconfig_secret: Some("prod-1-ccm-kubeconfig".into()),
        kubeconfig_key: "kubeconfig".into(),
        leader_elect_namespace: "cloudsigma-system".into(),
        managed_by: "kube-dc".into(),
        extra_args: vec!["--log-format=json".into()],
        ..RenderOptions::default()
    };
    let d = render(&sample(), &opts).unwrap().deployment;
    let spec = d.spec.unwrap();
    assert_eq!(spec.replicas, Some(3));
    let strategy = spec.strategy.unwrap();
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    let ru = strategy.rolling_update.unwrap();
    assert_eq!(
        (ru.max_surge, ru.max_unavailable),
        (Some(IntOrString::Int(1)), Some(IntOrString::Int(0)))
    );
    let pod = spec.template.spec.unwrap();
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some("registry.example.com/ccm:1.2.3"));
    assert_eq!(
        c.args.clone().unwrap(),
        strings(&[
            "--kubeconfig=/etc/ccm/kubeconfig/kubeconfig",
            "--csi-token-enabled",
            "--leader-elect",
            "--leader-elect-namespace=cloudsigma-system",
            "--leader-elect-lease-name=cloudsigma-ccm-prod-1",
            "--log-format=json",
        ])
    );
    let env = env_summary(c.env.as_deref().unwrap());
    assert_eq!(
        env[7..],
        [
            (
                "CLOUDSIGMA_USERNAME".into(),
                "secret:cloudsigma-legacy/username".into()
            ),
            (
                "CLOUDSIGMA_PASSWORD".into(),
                "secret:cloudsigma-legacy/password".into()
            ),
        ]
    );
    assert_eq!(
        d.metadata.labels.unwrap()["app.kubernetes.io/managed-by"],
        "kube-dc"
    );
    let secret = pod.volumes.unwrap()[0].secret.clone().unwrap();
    assert_eq!(secret.secret_name.as_deref(), Some("prod-1-ccm-kubeconfig"));
    assert_eq!(secret.items.unwrap()[0].key, "kubeconfig");

    // 0 replicas: a paused CCM, no leader election.
    let paused = RenderOptions {
        replicas: 0,
        ..RenderOptions::default()
    };
    let d = render(&sample(), &paused).unwrap().deployment;
    let spec = d.spec.unwrap();
    assert_eq!(spec.replicas, Some(0));
    assert!(
        !spec.template.spec.unwrap().containers[0]
            .args
            .clone()
            .unwrap()
            .iter()
            .any(|a| a.starts_with("--leader-elect"))
    );
}

#[test]
fn invalid_owner_email_is_rejected_naming_cluster_and_annotation() {
    let bad = [
        "alice",
        "alice@",
        "@example.org",
        "alice@example",
        "alice@@example.org",
        "alice @example.org",
        "alice@example.org ",
        "alice@exa mple.org",
        "alice@example..org",
        "a,lice@example.org",
        "alice@-example.org",
    ];
    for email in bad {
        let cluster = with_annotations(&[
            ("cloudsigma.com/owner-email", email),
            ("cloudsigma.com/region", "fra"),
        ]);
        let err = render(&cluster, &RenderOptions::default()).unwrap_err();
        assert!(
            matches!(err, Error::InvalidOwnerEmail { .. }),
            "{email:?}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("cluster team-a/prod-1"), "{msg}");
        assert!(msg.contains("cloudsigma.com/owner-email"), "{msg}");
        assert!(render_yaml(&cluster, &RenderOptions::default()).is_err());
    }
    for annotations in [
        vec![("cloudsigma.com/region", "fra")],
        vec![
            ("cloudsigma.com/owner-email", ""),
            ("cloudsigma.com/region", "fra"),
        ],
    ] {
        let err = render(&with_annotations(&annotations), &RenderOptions::default()).unwrap_err();
        assert!(matches!(err, Error::MissingOwnerEmail { .. }), "{err:?}");
        assert!(err.to_string().contains("cluster team-a/prod-1"), "{err}");
        assert!(err.to_string().contains("cloudsigma.com/owner-email"), "{err}");
    }
    let mut no_annotations = sample();
    no_annotations.metadata.annotations = None;
    assert!(matches!(
        render(&no_annotations, &RenderOptions::default()),
        Err(Error::MissingOwnerEmail { .. })
    ));
}

#[test]
fn region_lookup_order_option_then_annotation_then_fields() {
    let email = ("cloudsigma.com/owner-email", "alice@example.org");
    // The option wins over the annotation.
    let opts = RenderOptions {
        region: Some("ZRH ".into()),
        ..RenderOptions::default()
    };
    let objects = render(&sample(), &opts).unwrap();
    assert_eq!(
        (objects.facts.region.as_str(), &objects.facts.region_from),
        ("zrh", &RegionSource::Option)
    );

    // A platform's own kind with spec.region and no annotation; JSON input.
    let platform = parse_cluster(
        r#"{"apiVersion": "kube-dc.com/v1", "kind": "KdcCluster",
            "metadata": {"name": "c2", "namespace": "org-x",
                         "annotations": {"cloudsigma.com/owner-email": "bob@example.com"}},
            "spec": {"region": "next", "location": {"code": "sjc"}}}"#,
    )
    .unwrap();
    let objects = render(&platform, &RenderOptions::default()).unwrap();
    assert_eq!(objects.facts.region, "next");
    assert_eq!(
        objects.facts.region_from,
        RegionSource::Field("spec.region".into())
    );
    // A configured field path and annotation.
    let opts = RenderOptions {
        region_annotation: "kube-dc.com/location".into(),
        region_fields: vec!["spec.location.code".into()],
        ..RenderOptions::default()
    };
    let objects = render(&platform, &opts).unwrap();
    assert_eq!(objects.facts.region, "sjc");
    let mut annotated = platform.clone();
    annotated
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert("kube-dc.com/location".into(), "tyo".into());
    let objects = render(&annotated, &opts).unwrap();
    assert_eq!(objects.facts.region, "tyo");
    assert_eq!(
        objects.facts.region_from,
        RegionSource::Annotation("kube-dc.com/location".into())
    );

    // Missing everywhere.
    let err = render(&with_annotations(&[email]), &RenderOptions::default()).unwrap_err();
    assert!(matches!(err, Error::MissingRegion { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("cluster team-a/prod-1")
            && msg.contains("annotation cloudsigma.com/region")
            && msg.contains("field spec.region"),
        "{msg}"
    );

    // Invalid where found: named with its source.
    let err = render(
        &with_annotations(&[email, ("cloudsigma.com/region", "zrh.cloudsigma.com")]),
        &RenderOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidRegion { .. }), "{err:?}");
    assert!(
        err.to_string().contains("annotation cloudsigma.com/region"),
        "{err}"
    );
    let numeric = parse_cluster(
        "metadata: {name: c3, namespace: n, annotations: {cloudsigma.com/owner-email: a@b.io}}\nspec: {region: 5}",
    )
    .unwrap();
    let err = render(&numeric, &RenderOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("field spec.region") && err.to_string().contains("not a string"),
        "{err}"
    );
}

#[test]
fn region_rule_matches_the_one_cs_auth_applies() {
    for candidate in [
        "zrh",
        "ZRH",
        " fra ",
        "next",
        "sjc-2",
        "a",
        "-zrh",
        "zrh-",
        "z.rh",
        "zr_h",
        "zrh1",
        "wdc ",
        "",
        "ünï",
        "0",
        "a-b-c",
        &"x".repeat(63),
        &"x".repeat(64),
    ] {
        let opts = RenderOptions {
            region: Some(candidate.to_owned()),
            ..RenderOptions::default()
        };
        let ours = render(&sample(), &opts);
        let normalised = candidate.trim().to_ascii_lowercase();
        if candidate.trim().is_empty() {
            // An empty option falls through to the annotation (fra).
            assert_eq!(ours.unwrap().facts.region, "fra");
            continue;
        }
        let theirs = cs_auth::validate_region(&normalised);
        assert_eq!(
            ours.is_ok(),
            theirs.is_ok(),
            "{candidate:?}: ours {ours:?}, cs-auth {theirs:?}"
        );
    }
}

#[test]
fn bad_names_and_missing_namespace_are_rejected() {
    let mut c = sample();
    c.metadata.name = Some("Prod_1".into());
    let err = render(&c, &RenderOptions::default()).unwrap_err();
    assert!(
        matches!(err, Error::InvalidClusterName { .. }) && err.to_string().contains("Prod_1"),
        "{err}"
    );

    let mut c = sample();
    c.metadata.name = None;
    assert!(matches!(
        render(&c, &RenderOptions::default()),
        Err(Error::MissingName)
    ));

    let mut c = sample();
    c.metadata.namespace = None;
    let err = render(&c, &RenderOptions::default()).unwrap_err();
    assert!(
        matches!(err, Error::MissingNamespace { .. }) && err.to_string().contains("cluster prod-1"),
        "{err}"
    );
    // The option supplies (or overrides) it.
    let opts = RenderOptions {
        namespace: Some("platform".into()),
        ..RenderOptions::default()
    };
    let d = render(&c, &opts).unwrap().deployment;
    assert_eq!(d.metadata.namespace.as_deref(), Some("platform"));

    let err = parse_cluster("{not yaml").unwrap_err();
    assert!(matches!(err, Error::ParseCluster(_)), "{err:?}");
    let bad_opts = RenderOptions {
        image: String::new(),
        ..RenderOptions::default()
    };
    let err = render(&sample(), &bad_opts).unwrap_err();
    assert!(err.to_string().starts_with("option image:"), "{err}");
}

#[test]
fn yaml_output_round_trips_to_the_same_deployment() {
    let opts = RenderOptions {
        csi_token: true,
        ..RenderOptions::default()
    };
    let objects = render(&sample(), &opts).unwrap();
    let yaml = render_yaml(&sample(), &opts).unwrap();
    assert!(yaml.starts_with(
        "# CloudSigma CCM of cluster team-a/prod-1 (region fra from annotation cloudsigma.com/region)"
    ));
    let docs = common::documents(&yaml);
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["apiVersion"], "apps/v1");
    assert_eq!(docs[0]["kind"], "Deployment");
    let back: Deployment = serde_json::from_value(docs[0].clone()).unwrap();
    assert_eq!(back, objects.deployment);
}

#[test]
fn tenant_rbac_grants_exactly_the_documented_rules() {
    let rbac = render_tenant_rbac("prod-1", &TenantRbacOptions::default()).unwrap();
    assert!(rbac.namespace.is_none());
    let rules = |r: &Option<Vec<k8s_openapi::api::rbac::v1::PolicyRule>>| {
        r.as_ref()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p.api_groups.clone().unwrap().join(","),
                    p.resources.clone().unwrap().join(","),
                    p.resource_names.clone().unwrap_or_default().join(","),
                    p.verbs.join(","),
                )
            })
            .collect::<Vec<_>>()
    };
    let t = |a: &str, b: &str, c: &str, d: &str| (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned());
    assert_eq!(
        rules(&rbac.cluster_role.rules),
        vec![
            t("", "nodes", "", "get,list,watch,update,patch,delete"),
            t("", "nodes/status", "", "patch")
        ]
    );
    assert_eq!(rbac.roles.len(), 2);
    assert_eq!(rbac.roles[0].metadata.namespace.as_deref(), Some("default"));
    assert_eq!(
        rules(&rbac.roles[0].rules),
        vec![t("", "events", "", "create,patch")]
    );
    assert_eq!(rbac.roles[1].metadata.namespace.as_deref(), Some("kube-system"));
    assert_eq!(
        rules(&rbac.roles[1].rules),
        vec![
            t("coordination.k8s.io", "leases", "", "create"),
            t(
                "coordination.k8s.io",
                "leases",
                "cloudsigma-ccm-prod-1",
                "get,patch"
            ),
        ]
    );
    for (role, binding) in rbac.roles.iter().zip(&rbac.role_bindings) {
        assert_eq!(binding.metadata.name, role.metadata.name);
        assert_eq!(binding.metadata.namespace, role.metadata.namespace);
        assert_eq!(binding.role_ref.kind, "Role");
        assert_eq!(Some(binding.role_ref.name.clone()), role.metadata.name);
        let s = &binding.subjects.as_ref().unwrap()[0];
        assert_eq!(
            (s.kind.as_str(), s.name.as_str(), s.namespace.as_deref()),
            ("ServiceAccount", "cloudsigma-ccm", Some("kube-system"))
        );
    }
    assert_eq!(rbac.cluster_role_binding.role_ref.name, "cloudsigma-ccm");

    let with_token = render_tenant_rbac(
        "prod-1",
        &TenantRbacOptions {
            csi_token: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        with_token.namespace.unwrap().metadata.name.as_deref(),
        Some("cloudsigma-csi")
    );
    assert_eq!(with_token.roles.len(), 3);
    assert_eq!(
        with_token.roles[2].metadata.namespace.as_deref(),
        Some("cloudsigma-csi")
    );
    assert_eq!(
        rules(&with_token.roles[2].rules),
        vec![
            t("", "secrets", "cloudsigma-token", "get,list,watch,update,delete"),
            t("", "secrets", "", "create"),
            t("events.k8s.io", "events", "", "create,patch"),
        ]
    );
    assert!(render_tenant_rbac("Prod", &TenantRbacOptions::default()).is_err());
    let bad = TenantRbacOptions {
        lease_namespace: "a_b".into(),
        ..Default::default()
    };
    assert!(
        render_tenant_rbac("prod-1", &bad)
            .unwrap_err()
            .to_string()
            .contains("lease_namespace")
    );
}

#[test]
fn csi_token_role_in_the_manifest_matches_the_rendered_one() {
    // deploy/tenant-rbac/csi-token.yaml is read by the CSI token controller's own RBAC test; the
    // renderer must grant the very same.
    let file = common::documents(&common::read("deploy/tenant-rbac/csi-token.yaml"));
    let rendered = common::documents(
        &render_tenant_rbac(
            "prod-1",
            &TenantRbacOptions {
                csi_token: true,
                ..Default::default()
            },
        )
        .unwrap()
        .to_yaml()
        .unwrap(),
    );
    for doc in &file {
        let twin = rendered
            .iter()
            .find(|r| common::key(r) == common::key(doc))
            .unwrap_or_else(|| panic!("rendered RBAC lacks {:?}", common::key(doc)));
        assert_eq!(twin, doc);
    }
}
