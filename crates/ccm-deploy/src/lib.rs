//! The Kubernetes objects that run the CloudSigma CCM for one tenant cluster.
//!
//! A platform (such as kube-dc) runs one CCM per tenant cluster in the **management** cluster, next to
//! the cluster's CAPI objects. Given the cluster object (a CAPI `Cluster` or a platform's own cluster
//! kind, read as a [`DynamicObject`]), [`render`] builds that CCM's Deployment `csccm-<cluster>` in the
//! cluster's namespace:
//!
//! - impersonation credentials from the Secret `cloudsigma-impersonation` (keys `oauth-url` (optional),
//!   `client-id`, `client-secret`) through `secretKeyRef`, `CLOUDSIGMA_IMPERSONATION_ENABLED=true`,
//!   `CLOUDSIGMA_USER_EMAIL` from the annotation `cloudsigma.com/owner-email` (validated: a missing or
//!   malformed email is an error naming the cluster, and nothing is rendered), `CLOUDSIGMA_REGION`;
//! - the tenant kubeconfig from CAPI's Secret `<cluster>-kubeconfig` (key `value`) mounted read-only and
//!   passed as `--kubeconfig`;
//! - `--csi-token-enabled` when asked; leader election (a Lease `cloudsigma-ccm-<cluster>` in the tenant
//!   cluster) when more than one replica is asked for;
//! - probes on the health port, resource requests, a non-root, read-only, capability-less container.
//!
//! [`render_tenant_rbac`] builds the matching least-privilege RBAC **inside the tenant cluster**, for
//! operators who give the CCM a restricted kubeconfig instead of CAPI's admin one.
//!
//! ```
//! let cluster = ccm_deploy::parse_cluster(r#"
//! apiVersion: cluster.x-k8s.io/v1beta1
//! kind: Cluster
//! metadata:
//!   name: example
//!   namespace: tenant-example
//!   annotations:
//!     cloudsigma.com/owner-email: owner@example.com
//!     cloudsigma.com/region: zrh
//! "#)?;
//! let yaml = ccm_deploy::render_yaml(&cluster, &ccm_deploy::RenderOptions::default())?;
//! assert!(yaml.contains("name: csccm-example"));
//! # Ok::<(), ccm_deploy::Error>(())
//! ```

mod cluster;
mod deployment;
mod error;
mod options;
mod tenant_rbac;
mod validate;
mod yaml;

use k8s_openapi::api::apps::v1::Deployment;
pub use kube::core::DynamicObject;

pub use crate::{
    cluster::{ClusterFacts, RegionSource},
    deployment::{
        APP_NAME, CLUSTER_NAME_LABEL, COMPONENT, CONTAINER_NAME, deployment_name, kubeconfig_secret_name,
        lease_name, selector_labels,
    },
    error::{Error, Result},
    options::*,
    tenant_rbac::{
        CSI_TOKEN_NAMESPACE, CSI_TOKEN_SECRET, NODE_EVENT_NAMESPACE, TENANT_RBAC_NAME, TenantRbac,
        TenantRbacOptions,
    },
};

/// The management-cluster objects of one cluster's CCM.
///
/// Only a Deployment: the pod reaches the tenant cluster with the mounted kubeconfig and needs no
/// access to the management cluster's API (it runs with `automountServiceAccountToken: false`), and
/// the Secrets it uses are the platform's (`cloudsigma-impersonation`) and CAPI's (`<cluster>-kubeconfig`).
#[derive(Debug, Clone, PartialEq)]
pub struct CcmObjects {
    /// What was read from the cluster object.
    pub facts: ClusterFacts,
    /// The Deployment `csccm-<cluster>`.
    pub deployment: Deployment,
}

impl CcmObjects {
    /// The objects as a YAML stream, headed by a comment naming the cluster and where its region came
    /// from.
    pub fn to_yaml(&self) -> Result<String> {
        let header = format!(
            "# CloudSigma CCM of cluster {}/{} (region {} from {}), rendered by ccm-deploy {}.\n",
            self.facts.namespace,
            self.facts.name,
            self.facts.region,
            self.facts.region_from,
            env!("CARGO_PKG_VERSION"),
        );
        Ok(header + &yaml::stream(&[yaml::document(&self.deployment)?]))
    }
}

/// Reads a cluster object from YAML or JSON (one document).
pub fn parse_cluster(text: &str) -> Result<DynamicObject> {
    serde_yaml::from_str(text).map_err(Error::ParseCluster)
}

/// Builds the CCM objects for `cluster`. Checks the options and the cluster's name, namespace, owner
/// email and region first; any problem is an [`Error`] naming the cluster or option, and nothing is
/// built.
pub fn render(cluster: &DynamicObject, opts: &RenderOptions) -> Result<CcmObjects> {
    opts.validate()?;
    let facts = ClusterFacts::read(cluster, opts)?;
    let deployment = deployment::build(&facts, opts);
    Ok(CcmObjects { facts, deployment })
}

/// [`render`], as YAML for GitOps (what `ccm render` prints).
pub fn render_yaml(cluster: &DynamicObject, opts: &RenderOptions) -> Result<String> {
    render(cluster, opts)?.to_yaml()
}

/// Builds the RBAC the CCM's identity needs **inside the tenant cluster** `cluster_name` (apply it
/// with the tenant cluster's admin kubeconfig): Nodes get/list/watch/update/patch/delete and
/// nodes/status patch (ClusterRole), core Events create/patch in `default`, its one Lease
/// `cloudsigma-ccm-<cluster>` (get/patch; create), and with [`TenantRbacOptions::csi_token`] the one
/// token Secret `cloudsigma-csi/cloudsigma-token`. Nothing more.
pub fn render_tenant_rbac(cluster_name: &str, opts: &TenantRbacOptions) -> Result<TenantRbac> {
    tenant_rbac::build(cluster_name, opts)
}
