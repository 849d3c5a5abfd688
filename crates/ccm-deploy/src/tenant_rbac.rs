//! RBAC inside the TENANT cluster for the identity of the kubeconfig the CCM uses. Only needed when
//! that kubeconfig is not an admin one (CAPI's `<cluster>-kubeconfig` is cluster-admin).

use std::collections::BTreeMap;

use crate::{Error, Result, deployment::lease_name, validate, yaml};
use k8s_openapi::{
    api::{
        core::v1::{Namespace, ServiceAccount},
        rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};

/// Namespace of the CSI token Secret (the binary's `--csi-token-namespace` default).
pub const CSI_TOKEN_NAMESPACE: &str = "cloudsigma-csi";
/// Name of the CSI token Secret (the binary's `--csi-token-secret-name` default).
pub const CSI_TOKEN_SECRET: &str = "cloudsigma-token";
/// Namespace of the core/v1 Events the node controllers write about Nodes.
pub const NODE_EVENT_NAMESPACE: &str = "default";
/// Name of the ClusterRole, ClusterRoleBinding and ServiceAccount.
pub const TENANT_RBAC_NAME: &str = "cloudsigma-ccm";

/// Options of [`crate::render_tenant_rbac`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRbacOptions {
    /// ServiceAccount the CCM's kubeconfig authenticates as. Default `cloudsigma-ccm`.
    pub service_account: String,
    /// Its namespace. Default `kube-system`.
    pub service_account_namespace: String,
    /// Namespace of the leader-election Lease ([`crate::RenderOptions::leader_elect_namespace`]).
    /// Default `kube-system`.
    pub lease_namespace: String,
    /// Also grant what the CSI token controller needs (`--csi-token-enabled`), and create its
    /// namespace `cloudsigma-csi`. Default false.
    pub csi_token: bool,
}

impl Default for TenantRbacOptions {
    fn default() -> Self {
        Self {
            service_account: TENANT_RBAC_NAME.into(),
            service_account_namespace: "kube-system".into(),
            lease_namespace: "kube-system".into(),
            csi_token: false,
        }
    }
}

/// The tenant-cluster objects, in apply order.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantRbac {
    /// The CSI token namespace (only with [`TenantRbacOptions::csi_token`]).
    pub namespace: Option<Namespace>,
    /// The CCM's identity.
    pub service_account: ServiceAccount,
    /// Nodes: get, list, watch, update, patch, delete; nodes/status: patch.
    pub cluster_role: ClusterRole,
    /// Binds [`Self::cluster_role`] to the ServiceAccount.
    pub cluster_role_binding: ClusterRoleBinding,
    /// Events in `default`, the Lease, and (optionally) the CSI token Secret.
    pub roles: Vec<Role>,
    /// One binding per Role, same name and namespace.
    pub role_bindings: Vec<RoleBinding>,
}

impl TenantRbac {
    /// All objects as one multi-document YAML stream.
    pub fn to_yaml(&self) -> Result<String> {
        let mut docs: Vec<String> = Vec::new();
        if let Some(ns) = &self.namespace {
            docs.push(yaml::document(ns)?);
        }
        docs.push(yaml::document(&self.service_account)?);
        docs.push(yaml::document(&self.cluster_role)?);
        docs.push(yaml::document(&self.cluster_role_binding)?);
        for (role, binding) in self.roles.iter().zip(&self.role_bindings) {
            docs.push(yaml::document(role)?);
            docs.push(yaml::document(binding)?);
        }
        Ok(yaml::stream(&docs))
    }
}

fn meta(name: &str, namespace: Option<&str>, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(Into::into),
        labels: Some(BTreeMap::from([
            (
                "app.kubernetes.io/managed-by".to_owned(),
                "cloudsigma-ccm".to_owned(),
            ),
            ("app.kubernetes.io/component".to_owned(), component.to_owned()),
        ])),
        ..ObjectMeta::default()
    }
}

fn rule(group: &str, resources: &[&str], names: &[&str], verbs: &[&str]) -> PolicyRule {
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(strings(resources)),
        resource_names: (!names.is_empty()).then(|| strings(names)),
        verbs: strings(verbs),
        non_resource_urls: None,
    }
}

fn check(field: &'static str, value: &str) -> Result<()> {
    validate::dns_label(value).map_err(|e| Error::InvalidOption {
        field,
        reason: format!("{value:?} {e}"),
    })
}

fn role_ref(kind: &str, metadata: &ObjectMeta) -> RoleRef {
    RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: kind.into(),
        name: metadata.name.clone().unwrap_or_default(),
    }
}

/// Builds the tenant RBAC for `cluster` (a DNS-1123 label).
pub(crate) fn build(cluster: &str, opts: &TenantRbacOptions) -> Result<TenantRbac> {
    validate::dns_label(cluster).map_err(|reason| Error::InvalidClusterName {
        cluster: cluster.to_owned(),
        name: cluster.to_owned(),
        reason,
    })?;
    check("service_account", &opts.service_account)?;
    check("service_account_namespace", &opts.service_account_namespace)?;
    check("lease_namespace", &opts.lease_namespace)?;

    let subject = Subject {
        kind: "ServiceAccount".into(),
        name: opts.service_account.clone(),
        namespace: Some(opts.service_account_namespace.clone()),
        api_group: None,
    };
    let lease = lease_name(cluster);

    let cluster_role = ClusterRole {
        metadata: meta(TENANT_RBAC_NAME, None, "node-controller"),
        rules: Some(vec![
            rule(
                "",
                &["nodes"],
                &[],
                &["get", "list", "watch", "update", "patch", "delete"],
            ),
            rule("", &["nodes/status"], &[], &["patch"]),
        ]),
        aggregation_rule: None,
    };
    let cluster_role_binding = ClusterRoleBinding {
        metadata: cluster_role.metadata.clone(),
        role_ref: role_ref("ClusterRole", &cluster_role.metadata),
        subjects: Some(vec![subject.clone()]),
    };

    let mut roles = vec![
        Role {
            metadata: meta(
                "cloudsigma-ccm-events",
                Some(NODE_EVENT_NAMESPACE),
                "node-controller",
            ),
            rules: Some(vec![rule("", &["events"], &[], &["create", "patch"])]),
        },
        Role {
            metadata: meta(
                "cloudsigma-ccm-leader-election",
                Some(&opts.lease_namespace),
                "leader-election",
            ),
            // kube-lease-manager gets, creates and patches (apply + strategic merge) its one Lease.
            // `create` cannot be limited to a name (the name is not in the request URL).
            rules: Some(vec![
                rule("coordination.k8s.io", &["leases"], &[], &["create"]),
                rule("coordination.k8s.io", &["leases"], &[&lease], &["get", "patch"]),
            ]),
        },
    ];
    let namespace = if opts.csi_token {
        roles.push(Role {
            metadata: meta("cloudsigma-ccm-csi-token", Some(CSI_TOKEN_NAMESPACE), "csi-token"),
            rules: Some(vec![
                rule(
                    "",
                    &["secrets"],
                    &[CSI_TOKEN_SECRET],
                    &["get", "list", "watch", "update", "delete"],
                ),
                rule("", &["secrets"], &[], &["create"]),
                rule("events.k8s.io", &["events"], &[], &["create", "patch"]),
            ]),
        });
        Some(Namespace {
            metadata: meta(CSI_TOKEN_NAMESPACE, None, "csi-token"),
            ..Namespace::default()
        })
    } else {
        None
    };
    let role_bindings = roles
        .iter()
        .map(|role| RoleBinding {
            metadata: role.metadata.clone(),
            role_ref: role_ref("Role", &role.metadata),
            subjects: Some(vec![subject.clone()]),
        })
        .collect();

    Ok(TenantRbac {
        namespace,
        service_account: ServiceAccount {
            metadata: meta(
                &opts.service_account,
                Some(&opts.service_account_namespace),
                "identity",
            ),
            ..ServiceAccount::default()
        },
        cluster_role,
        cluster_role_binding,
        roles,
        role_bindings,
    })
}
