//! Command line and environment of the `ccm` binary.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args as ClapArgs, Parser, ValueEnum};
use secrecy::SecretString;

/// CloudSigma cloud controller manager for tenant clusters.
///
/// Runs in the management cluster and manages the Nodes of one tenant cluster (reached through
/// --kubeconfig) whose VMs live in the CloudSigma account of --user-email. Every flag can also be given
/// as the environment variable shown.
#[derive(Debug, Parser)]
#[command(name = "ccm", version, about, long_about = None, max_term_width = 110, args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<crate::render::Command>,
    #[command(flatten)]
    pub cloud: CloudArgs,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub nodes: NodeArgs,
    #[command(flatten)]
    pub csi_token: CsiTokenArgs,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// CloudSigma account, credentials and endpoints.
#[derive(Debug, ClapArgs)]
#[command(next_help_heading = "CloudSigma")]
pub struct CloudArgs {
    /// CloudSigma location of the cluster's VMs (e.g. zrh, fra, next).
    #[arg(long, env = "CLOUDSIGMA_REGION")]
    pub region: Option<String>,

    /// Act as --user-email through the service-account impersonation flow (needs --oauth-url,
    /// --client-id, --client-secret, --user-email).
    #[arg(long, env = "CLOUDSIGMA_IMPERSONATION_ENABLED", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub impersonation_enabled: bool,

    /// Keycloak base URL of the impersonation flow.
    #[arg(long, env = "CLOUDSIGMA_OAUTH_URL", default_value = cs_auth::DEFAULT_OAUTH_URL)]
    pub oauth_url: String,

    /// OAuth client id of the service account.
    #[arg(long, env = "CLOUDSIGMA_CLIENT_ID")]
    pub client_id: Option<String>,

    /// OAuth client secret of the service account.
    #[arg(long, env = "CLOUDSIGMA_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<SecretString>,

    /// Email of the tenant cluster's owner: the CloudSigma account whose VMs are the Nodes.
    #[arg(long, env = "CLOUDSIGMA_USER_EMAIL")]
    pub user_email: Option<String>,

    /// Legacy credentials: account email (used alone, or as the fallback of impersonation).
    #[arg(long, env = "CLOUDSIGMA_USERNAME")]
    pub username: Option<String>,

    /// Legacy credentials: account password.
    #[arg(long, env = "CLOUDSIGMA_PASSWORD", hide_env_values = true)]
    pub password: Option<SecretString>,

    /// Override of the regular API base URL; may contain `{region}`
    /// (default: the location's host, e.g. https://zrh.cloudsigma.com/api/2.0/).
    #[arg(long, env = "CLOUDSIGMA_API_URL")]
    pub api_url: Option<String>,

    /// Override of the direct API base URL used with impersonated tokens; may contain `{region}`
    /// (default: https://direct.{region}.cloudsigma.com/api/2.0/, or --api-url when only that is set).
    #[arg(long, env = "CLOUDSIGMA_DIRECT_API_URL")]
    pub direct_api_url: Option<String>,

    /// Base of the impersonation endpoint; may contain `{region}`.
    #[arg(long, env = "CLOUDSIGMA_IMPERSONATION_URL", default_value = cs_auth::DEFAULT_IMPERSONATION_URL)]
    pub impersonation_url: String,

    /// Time limit of one CloudSigma or OAuth HTTP request.
    #[arg(long, env = "CLOUDSIGMA_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub cloudsigma_timeout: Duration,

    /// Accept plain-http CloudSigma and OAuth URLs, for a local emulator only: credentials then travel
    /// unencrypted, and the ccm says so in a warning at start. Without it such URLs are refused.
    #[arg(long, env = "CLOUDSIGMA_ALLOW_INSECURE_HTTP", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub allow_insecure_http: bool,

    /// How long impersonation stays off after it failed while legacy credentials serve.
    #[arg(long, env = "CLOUDSIGMA_FALLBACK_PROBE_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub fallback_probe_interval: Duration,
}

/// The tenant cluster.
#[derive(Debug, ClapArgs)]
#[command(next_help_heading = "Tenant cluster")]
pub struct KubeArgs {
    /// Kubeconfig of the tenant cluster (default: in-cluster config or $KUBECONFIG).
    #[arg(long, env = "CCM_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Name of the tenant cluster, for logs, Events and the leader-election Lease.
    #[arg(long, env = "CLUSTER_NAME", default_value = "kubernetes")]
    pub cluster_name: String,

    /// Elect one active replica through a Lease in the tenant cluster.
    #[arg(long, env = "CCM_LEADER_ELECT", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: bool,

    /// Namespace of the leader-election Lease.
    #[arg(long, env = "CCM_LEADER_ELECT_NAMESPACE", default_value = "kube-system")]
    pub leader_elect_namespace: String,

    /// Name of the leader-election Lease (default: cloudsigma-ccm-<cluster-name>).
    #[arg(long, env = "CCM_LEADER_ELECT_LEASE_NAME")]
    pub leader_elect_lease_name: Option<String>,

    /// Lease duration: a new leader takes over at most this long after the old one stopped renewing.
    #[arg(long, env = "CCM_LEADER_ELECT_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,
}

/// Node controllers.
#[derive(Debug, ClapArgs)]
#[command(next_help_heading = "Nodes")]
pub struct NodeArgs {
    /// Period of the address refresh of all initialized Nodes.
    #[arg(long, env = "CCM_NODE_STATUS_UPDATE_FREQUENCY", default_value = "5m", value_parser = parse_duration)]
    pub node_status_update_frequency: Duration,

    /// Period of the lifecycle check of Nodes that are not Ready (shutdown taint, deletion).
    #[arg(long, env = "CCM_NODE_MONITOR_PERIOD", default_value = "30s", value_parser = parse_duration)]
    pub node_monitor_period: Duration,

    /// Minimum time between the two 404 answers that confirm a Node's server is gone.
    #[arg(long, env = "CCM_NODE_DELETE_GRACE", default_value = "60s", value_parser = parse_duration)]
    pub node_delete_grace: Duration,

    /// Never delete Nodes, even when their server is confirmed gone.
    #[arg(long, env = "CCM_DISABLE_NODE_DELETION", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub disable_node_deletion: bool,

    /// Nodes initialized in parallel.
    #[arg(long, env = "CCM_CONCURRENT_NODE_SYNCS", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrent_node_syncs: u16,

    /// How long one listing of the account's servers is shared by all reconciles.
    #[arg(long, env = "CCM_SERVER_CACHE_TTL", default_value = "10s", value_parser = parse_duration)]
    pub server_cache_ttl: Duration,
}

/// CSI token provisioning.
#[derive(Debug, ClapArgs)]
#[command(next_help_heading = "CSI token")]
pub struct CsiTokenArgs {
    /// Keep a fresh impersonated token in a Secret of the tenant cluster for the CSI driver.
    #[arg(long, env = "CLOUDSIGMA_CSI_TOKEN_ENABLED", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub csi_token_enabled: bool,

    /// Namespace of the token Secret.
    #[arg(long, env = "CLOUDSIGMA_CSI_TOKEN_NAMESPACE", default_value = ccm_csitoken::DEFAULT_NAMESPACE)]
    pub csi_token_namespace: String,

    /// Name of the token Secret.
    #[arg(long, env = "CLOUDSIGMA_CSI_TOKEN_SECRET_NAME", default_value = ccm_csitoken::DEFAULT_SECRET_NAME)]
    pub csi_token_secret_name: String,

    /// Longest time between two checks of the stored token.
    #[arg(long, env = "CLOUDSIGMA_CSI_TOKEN_REFRESH_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub csi_token_refresh_interval: Duration,

    /// Least lifetime the CSI driver must still find in the token it reads.
    #[arg(long, env = "CLOUDSIGMA_CSI_TOKEN_MARGIN", value_parser = parse_duration)]
    pub csi_token_margin: Option<Duration>,

    /// Create the Secret's namespace when it is missing.
    #[arg(long, env = "CLOUDSIGMA_CSI_TOKEN_CREATE_NAMESPACE", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub csi_token_create_namespace: bool,
}

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Probes, metrics, logs.
#[derive(Debug, ClapArgs)]
#[command(next_help_heading = "Serving and logs")]
pub struct ServeArgs {
    /// Address of the Prometheus /metrics endpoint ("0" disables it).
    #[arg(long, env = "CCM_METRICS_BIND_ADDRESS", default_value = "0.0.0.0:8080", value_parser = parse_bind)]
    pub metrics_bind_address: Bind,

    /// Address of /healthz and /readyz ("0" disables them).
    #[arg(long, env = "CCM_HEALTH_PROBE_BIND_ADDRESS", default_value = "0.0.0.0:8081", value_parser = parse_bind)]
    pub health_probe_bind_address: Bind,

    /// Log format.
    #[arg(long, env = "CCM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter (tracing EnvFilter syntax, e.g. "info" or "info,ccm_node=debug"); RUST_LOG also works.
    #[arg(long, env = "CCM_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

/// Parses `90s`, `5m`, `1h30m`, `250ms` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let d = match t.parse::<u64>() {
        // A bare number is seconds; zero is refused like `0s` (a zero period would panic the timers).
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let d: jiff::SignedDuration = t
                .parse()
                .map_err(|_| format!("{s:?} is not a duration (examples: 30s, 5m, 1h30m, 250ms)"))?;
            Duration::try_from(d).map_err(|_| format!("{s:?} must not be negative"))?
        }
    };
    if d.is_zero() {
        return Err(format!("{s:?} must be greater than zero"));
    }
    Ok(d)
}

/// A listen address, or none (`0`) to disable the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bind(pub Option<SocketAddr>);

fn parse_bind(s: &str) -> Result<Bind, String> {
    if s.trim() == "0" {
        return Ok(Bind(None));
    }
    s.parse::<SocketAddr>()
        .map(|a| Bind(Some(a)))
        .map_err(|_| format!("{s:?} is not HOST:PORT (e.g. 0.0.0.0:8080), or 0 to disable"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert!(parse_duration("soon").unwrap_err().contains("soon"));
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("0").is_err(), "a bare zero is zero seconds");
        assert!(parse_duration(" 000 ").is_err());
    }

    #[test]
    fn bind_addresses() {
        assert_eq!(parse_bind("0").unwrap(), Bind(None));
        assert_eq!(
            parse_bind("127.0.0.1:9").unwrap(),
            Bind(Some("127.0.0.1:9".parse().unwrap()))
        );
        assert!(parse_bind(":8080").is_err());
    }

    #[test]
    fn a_full_command_line_parses() {
        let args = Args::try_parse_from([
            "ccm",
            "--region",
            "zrh",
            "--impersonation-enabled",
            "--client-id",
            "c",
            "--client-secret",
            "s",
            "--user-email",
            "u@example.com",
            "--metrics-bind-address",
            "0",
            "--health-probe-bind-address",
            "127.0.0.1:1",
            "--leader-elect=true",
            "--node-monitor-period",
            "5s",
            "--csi-token-enabled",
            "--csi-token-margin",
            "2m",
        ])
        .unwrap();
        assert!(
            args.cloud.impersonation_enabled && args.kube.leader_elect && args.csi_token.csi_token_enabled
        );
        assert_eq!(args.serve.metrics_bind_address, Bind(None));
        assert_eq!(args.nodes.node_monitor_period, Duration::from_secs(5));
        assert_eq!(args.csi_token.csi_token_margin, Some(Duration::from_secs(120)));
        let defaults = Args::try_parse_from(["ccm"]).unwrap();
        assert_eq!(
            defaults.serve.metrics_bind_address,
            Bind(Some("0.0.0.0:8080".parse().unwrap()))
        );
        assert_eq!(
            defaults.nodes.node_status_update_frequency,
            Duration::from_secs(300)
        );
        assert!(!defaults.cloud.impersonation_enabled);
    }
}
