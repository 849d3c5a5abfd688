//! Prints the management-cluster objects that run the CloudSigma CCM for one tenant cluster, as YAML
//! for GitOps (the same as `ccm render`), or with `--tenant-rbac` the RBAC its identity needs inside the
//! tenant cluster.
//!
//! ```text
//! cargo run -p cs-examples --example ccm-render -- --cluster examples/cluster.yaml --csi-token
//! cargo run -p cs-examples --example ccm-render -- --cluster examples/cluster.yaml --region fra --replicas 2
//! cargo run -p cs-examples --example ccm-render -- --cluster examples/cluster.yaml --tenant-rbac --csi-token
//! kubectl get cluster example -n tenant-example -o yaml | cargo run -p cs-examples --example ccm-render -- --cluster -
//! ```
//!
//! Exit status 2 and a message naming the cluster when the object lacks a valid
//! `cloudsigma.com/owner-email` annotation or region.

use std::{io::Read, path::PathBuf, process::ExitCode};

use clap::Parser;

/// Render the CloudSigma CCM objects of one cluster.
#[derive(Debug, Parser)]
#[command(name = "ccm-render")]
struct Args {
    /// The cluster object (YAML or JSON; `-` reads standard input).
    #[arg(long)]
    cluster: PathBuf,
    /// CloudSigma region; default: annotation cloudsigma.com/region, then field spec.region.
    #[arg(long)]
    region: Option<String>,
    /// Run the CSI token controller (--csi-token-enabled); with --tenant-rbac: grant what it needs.
    #[arg(long)]
    csi_token: bool,
    /// Replicas; more than one turns on leader election.
    #[arg(long, default_value_t = 1)]
    replicas: u16,
    /// Container image.
    #[arg(long)]
    image: Option<String>,
    /// Namespace of the Deployment (default: the cluster's).
    #[arg(long)]
    namespace: Option<String>,
    /// Secret with the tenant kubeconfig (default: CAPI's <cluster>-kubeconfig, key `value`).
    #[arg(long)]
    kubeconfig_secret: Option<String>,
    /// Secret with legacy credentials (keys `username`, `password`) used while impersonation fails.
    #[arg(long)]
    legacy_secret: Option<String>,
    /// Further ccm flags (repeatable), e.g. --extra-arg=--log-format=json.
    #[arg(long = "extra-arg", allow_hyphen_values = true)]
    extra_args: Vec<String>,
    /// Print the tenant-cluster RBAC instead of the Deployment.
    #[arg(long)]
    tenant_rbac: bool,
}

fn run(args: Args) -> Result<String, String> {
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
    let cluster = ccm_deploy::parse_cluster(&text).map_err(|e| e.to_string())?;
    if args.tenant_rbac {
        let name = cluster.metadata.name.clone().unwrap_or_default();
        let opts = ccm_deploy::TenantRbacOptions {
            csi_token: args.csi_token,
            ..Default::default()
        };
        return ccm_deploy::render_tenant_rbac(&name, &opts)
            .and_then(|rbac| rbac.to_yaml())
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

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
