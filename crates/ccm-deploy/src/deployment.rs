//! The per-cluster CCM Deployment.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment},
        core::v1::{
            Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, KeyToPath,
            PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
            SecretKeySelector, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
        },
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};

use crate::{
    CLIENT_ID_KEY, CLIENT_SECRET_KEY, ClusterFacts, HEALTH_PORT, KUBECONFIG_MOUNT_DIR, LEGACY_PASSWORD_KEY,
    LEGACY_USERNAME_KEY, METRICS_PORT, OAUTH_URL_KEY, RUN_AS_USER, RenderOptions,
};

/// `app.kubernetes.io/name` of every object.
pub const APP_NAME: &str = "cloudsigma-ccm";
/// `app.kubernetes.io/component` of the Deployment.
pub const COMPONENT: &str = "cloud-controller-manager";
/// The CAPI label naming the cluster an object belongs to.
pub const CLUSTER_NAME_LABEL: &str = "cluster.x-k8s.io/cluster-name";
/// Name of the container.
pub const CONTAINER_NAME: &str = "ccm";

/// The Deployment's name for a cluster: `csccm-<cluster>`.
pub fn deployment_name(cluster: &str) -> String {
    format!("csccm-{cluster}")
}

/// The leader-election Lease name for a cluster: `cloudsigma-ccm-<cluster>` (the binary's default
/// for `--cluster-name <cluster>`, passed explicitly so the tenant RBAC can name it).
pub fn lease_name(cluster: &str) -> String {
    format!("cloudsigma-ccm-{cluster}")
}

/// The CAPI kubeconfig Secret of a cluster: `<cluster>-kubeconfig`.
pub fn kubeconfig_secret_name(cluster: &str) -> String {
    format!("{cluster}-kubeconfig")
}

/// The labels selecting the CCM pods of one cluster (stable: a Deployment's selector is immutable).
pub fn selector_labels(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), APP_NAME.to_owned()),
        ("app.kubernetes.io/instance".to_owned(), cluster.to_owned()),
    ])
}

fn labels(facts: &ClusterFacts, opts: &RenderOptions) -> BTreeMap<String, String> {
    let mut l = selector_labels(&facts.name);
    l.insert("app.kubernetes.io/component".into(), COMPONENT.into());
    l.insert("app.kubernetes.io/managed-by".into(), opts.managed_by.clone());
    l.insert(CLUSTER_NAME_LABEL.into(), facts.name.clone());
    l
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn env_from_secret(name: &str, secret: &str, key: &str, optional: bool) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: optional.then_some(true),
            }),
            ..EnvVarSource::default()
        }),
    }
}

fn probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("health".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

fn port(name: &str, number: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: number,
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }
}

fn args(facts: &ClusterFacts, opts: &RenderOptions) -> Vec<String> {
    let mut a = vec![format!(
        "--kubeconfig={KUBECONFIG_MOUNT_DIR}/{}",
        opts.kubeconfig_key
    )];
    if opts.csi_token {
        a.push("--csi-token-enabled".into());
    }
    if opts.replicas > 1 {
        a.push("--leader-elect".into());
        a.push(format!(
            "--leader-elect-namespace={}",
            opts.leader_elect_namespace
        ));
        a.push(format!("--leader-elect-lease-name={}", lease_name(&facts.name)));
    }
    a.extend(opts.extra_args.iter().cloned());
    a
}

fn envs(facts: &ClusterFacts, opts: &RenderOptions) -> Vec<EnvVar> {
    let secret = &opts.impersonation_secret;
    let mut e = vec![
        env("CLUSTER_NAME", &facts.name),
        env("CLOUDSIGMA_REGION", &facts.region),
        env("CLOUDSIGMA_USER_EMAIL", &facts.owner_email),
        env("CLOUDSIGMA_IMPERSONATION_ENABLED", "true"),
        env_from_secret("CLOUDSIGMA_OAUTH_URL", secret, OAUTH_URL_KEY, true),
        env_from_secret("CLOUDSIGMA_CLIENT_ID", secret, CLIENT_ID_KEY, false),
        env_from_secret("CLOUDSIGMA_CLIENT_SECRET", secret, CLIENT_SECRET_KEY, false),
    ];
    if let Some(legacy) = &opts.legacy_secret {
        e.push(env_from_secret(
            "CLOUDSIGMA_USERNAME",
            legacy,
            LEGACY_USERNAME_KEY,
            false,
        ));
        e.push(env_from_secret(
            "CLOUDSIGMA_PASSWORD",
            legacy,
            LEGACY_PASSWORD_KEY,
            false,
        ));
    }
    e
}

/// Builds the Deployment for checked facts and options.
pub(crate) fn build(facts: &ClusterFacts, opts: &RenderOptions) -> Deployment {
    let labels = labels(facts, opts);
    let kubeconfig_secret = opts
        .kubeconfig_secret
        .clone()
        .unwrap_or_else(|| kubeconfig_secret_name(&facts.name));
    let quantity = |q: &str| Quantity(q.to_owned());

    let container = Container {
        name: CONTAINER_NAME.into(),
        image: Some(opts.image.clone()),
        image_pull_policy: Some(opts.image_pull_policy.clone()),
        args: Some(args(facts, opts)),
        env: Some(envs(facts, opts)),
        ports: Some(vec![port("metrics", METRICS_PORT), port("health", HEALTH_PORT)]),
        liveness_probe: Some(probe("/healthz", 10, 3)),
        readiness_probe: Some(probe("/readyz", 5, 2)),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_owned(), quantity(&opts.cpu_request)),
                ("memory".to_owned(), quantity(&opts.memory_request)),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".to_owned(),
                quantity(&opts.memory_limit),
            )])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "kubeconfig".into(),
            mount_path: KUBECONFIG_MOUNT_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };

    let strategy = if opts.replicas > 1 {
        // Leader election keeps one replica active, so old and new pods may overlap.
        DeploymentStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDeployment {
                max_surge: Some(IntOrString::Int(1)),
                max_unavailable: Some(IntOrString::Int(0)),
            }),
        }
    } else {
        // Without leader election two pods must never run at once (both would write Nodes and the
        // CSI token): stop the old pod before starting the new one.
        DeploymentStrategy {
            type_: Some("Recreate".into()),
            rolling_update: None,
        }
    };

    Deployment {
        metadata: ObjectMeta {
            name: Some(deployment_name(&facts.name)),
            namespace: Some(facts.namespace.clone()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(i32::from(opts.replicas)),
            selector: LabelSelector {
                match_labels: Some(selector_labels(&facts.name)),
                match_expressions: None,
            },
            strategy: Some(strategy),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: Some(BTreeMap::from([
                        ("prometheus.io/scrape".to_owned(), "true".to_owned()),
                        ("prometheus.io/port".to_owned(), METRICS_PORT.to_string()),
                        ("prometheus.io/path".to_owned(), "/metrics".to_owned()),
                    ])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    // The CCM talks to the tenant cluster only; in the management cluster it needs
                    // no API access at all, so no token is mounted.
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(RUN_AS_USER),
                        run_as_group: Some(RUN_AS_USER),
                        fs_group: Some(RUN_AS_USER),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            localhost_profile: None,
                        }),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![container],
                    volumes: Some(vec![Volume {
                        name: "kubeconfig".into(),
                        secret: Some(SecretVolumeSource {
                            secret_name: Some(kubeconfig_secret),
                            items: Some(vec![KeyToPath {
                                key: opts.kubeconfig_key.clone(),
                                path: opts.kubeconfig_key.clone(),
                                mode: None,
                            }]),
                            default_mode: Some(0o440),
                            optional: Some(false),
                        }),
                        ..Volume::default()
                    }]),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}
