//! `ccm render`: prints the management-cluster objects that run the CCM for one tenant cluster (or, with
//! `--tenant-rbac`, the RBAC its identity needs inside the tenant cluster), as YAML for GitOps.
//! The objects are built by `ccm-deploy`; this module only maps flags to its options.

use std::{io::Read, path::PathBuf};

use clap::{Args as ClapArgs, Subcommand};

/// Subcommands of `ccm` (without one, `ccm` runs the controllers).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the Deployment that runs the CCM of one cluster (or its tenant RBAC) as YAML.
    Render(RenderArgs),
}

/// Flags of `ccm render`.
#[derive(Debug, ClapArgs)]
pub struct RenderArgs {
    /// The cluster object: a CAPI Cluster or a platform's own kind, YAML or JSON (`-` reads stdin).
    #[arg(long)]
    pub cluster: PathBuf,
    /// CloudSigma region (default: annotation cloudsigma.com/region, then field spec.region).
    #[arg(long)]
    pub region: Option<String>,
    /// Run the CSI token controller (--csi-token-enabled); with --tenant-rbac, grant what it needs.
    #[arg(long)]
    pub csi_token: bool,
    /// Replicas; more than one turns on leader election.
    #[arg(long, default_value_t = 1)]
    pub replicas: u16,
    /// Container image.
    #[arg(long)]
    pub image: Option<String>,
    /// Namespace of the Deployment (default: the cluster's).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Secret with the tenant kubeconfig (default: CAPI's <cluster>-kubeconfig, key `value`).
    #[arg(long)]
    pub kubeconfig_secret: Option<String>,
    /// Secret with legacy credentials (keys `username`, `password`) used while impersonation fails.
    #[arg(long)]
    pub legacy_secret: Option<String>,
    /// Further ccm flags (repeatable), e.g. --extra-arg=--log-format=json.
    #[arg(long = "extra-arg", allow_hyphen_values = true)]
    pub extra_args: Vec<String>,
    /// Print the RBAC the CCM identity needs inside the tenant cluster instead of the Deployment.
    #[arg(long)]
    pub tenant_rbac: bool,
}

/// The YAML to print, or a message naming what is wrong.
pub fn render(args: RenderArgs) -> Result<String, String> {
    let text = if args.cluster.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("--cluster -: {e}"))?;
        s
    } else {
        std::fs::read_to_string(&args.cluster)
            .map_err(|e| format!("--cluster {}: {e}", args.cluster.display()))?
    };
    let cluster = ccm_deploy::parse_cluster(&text).map_err(|e| format!("--cluster: {e}"))?;
    if args.tenant_rbac {
        let name = cluster.metadata.name.clone().unwrap_or_default();
        let opts = ccm_deploy::TenantRbacOptions {
            csi_token: args.csi_token,
            ..Default::default()
        };
        return ccm_deploy::render_tenant_rbac(&name, &opts)
            .and_then(|r| r.to_yaml())
            .map_err(|e| e.to_string());
    }
    let mut opts = ccm_deploy::RenderOptions {
        region: args.region,
        csi_token: args.csi_token,
        replicas: args.replicas,
        namespace: args.namespace,
        kubeconfig_secret: args.kubeconfig_secret,
        legacy_secret: args.legacy_secret,
        extra_args: args.extra_args,
        ..Default::default()
    };
    if let Some(image) = args.image {
        opts.image = image;
    }
    ccm_deploy::render_yaml(&cluster, &opts).map_err(|e| e.to_string())
}
