//! `ccm`: the CloudSigma cloud controller manager for tenant clusters.
//!
//! Wires `cs-auth`, `cs-api`, `ccm-node` and `ccm-csitoken` together: flags, credentials, the
//! Prometheus registry, probes, leader election and signals. No business rule lives here.

mod args;
mod creds;
mod http;
mod observe;
mod render;

use std::{process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context as _;
use ccm_node::{CsCloud, NodeControllerConfig, NodeControllers, ServerCache};
use clap::Parser;
use cs_auth::CredentialUrl;
use futures::{FutureExt, future::Shared};
use prometheus_client::registry::Registry;
use tracing::{error, info, warn};

use crate::{
    args::{Args, LogFormat},
    creds::ConfigError,
    http::Readiness,
    observe::{ApiMetrics, AuthMetrics},
};

type Shutdown = Shared<futures::future::BoxFuture<'static, ()>>;

fn main() -> ExitCode {
    let mut args = Args::parse();
    if let Some(render::Command::Render(render_args)) = args.command.take() {
        return match render::render(render_args) {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        };
    }
    if let Err(e) = init_tracing(args.serve.log_format, &args.serve.log_level) {
        eprintln!("error: --log-level (CCM_LOG_LEVEL): {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(config) = e.downcast_ref::<ConfigError>() {
                eprintln!("error: {config}");
                return ExitCode::from(2);
            }
            error!(error = format!("{e:#}"), "ccm stopped");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat, level: &str) -> Result<(), String> {
    use tracing_subscriber::{EnvFilter, fmt};
    if level.trim().is_empty() {
        // An empty filter would silence every line, errors included.
        return Err("empty; give a level or filter such as info, debug or info,ccm_node=debug".into());
    }
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(v),
        _ => EnvFilter::try_new(level),
    }
    .map_err(|e| format!("{e}; give a level or filter such as info, debug or info,ccm_node=debug"))?;
    // Colour only for a terminal: redirected logs stay free of escape codes.
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}

fn config_err(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(ConfigError(msg.into()))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let region = args
        .cloud
        .region
        .clone()
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| config_err("--region (CLOUDSIGMA_REGION) is required: the CloudSigma location of the cluster's VMs, e.g. zrh"))?
        .trim()
        .to_ascii_lowercase();
    cs_auth::validate_region(&region)
        .map_err(|e| config_err(format!("--region (CLOUDSIGMA_REGION): {e}")))?;

    let mut registry = Registry::default();
    let api_metrics = Arc::new(ApiMetrics::register(&mut registry));
    let auth_metrics = Arc::new(AuthMetrics::register(&mut registry));
    let node_metrics = ccm_node::Metrics::default();
    node_metrics.register(&mut registry);
    let token_metrics = ccm_csitoken::Metrics::new();
    token_metrics.register(&mut registry);

    let credentials = creds::build(&args.cloud, &region, auth_metrics)?;
    if args.csi_token.csi_token_enabled && credentials.impersonation.is_none() {
        return Err(config_err(
            "--csi-token-enabled (CLOUDSIGMA_CSI_TOKEN_ENABLED) needs impersonation: the CSI token is an impersonated \
             token; enable --impersonation-enabled with --client-id, --client-secret and --user-email",
        ));
    }
    let endpoints = match (&args.cloud.api_url, &args.cloud.direct_api_url) {
        (Some(api), direct) => cs_api::Endpoints::from_templates(api, direct.as_deref(), &region)
            .map_err(|e| config_err(format!("--api-url / --direct-api-url: {e}")))?,
        (None, Some(_)) => {
            return Err(config_err(
                "--direct-api-url (CLOUDSIGMA_DIRECT_API_URL) needs --api-url (CLOUDSIGMA_API_URL) too",
            ));
        }
        (None, None) => cs_api::Endpoints::for_location(&region).map_err(|e| {
            config_err(format!(
                "--region (CLOUDSIGMA_REGION): {e}; for another cloud give --api-url"
            ))
        })?,
    };
    check_transport(&args.cloud)?;
    let options = cs_api::ClientOptions {
        timeout: args.cloud.cloudsigma_timeout,
        observer: api_metrics,
        user_agent: concat!("cloudsigma-ccm/", env!("CARGO_PKG_VERSION")).to_owned(),
        ..cs_api::ClientOptions::default()
    };
    let api = cs_api::Client::new(endpoints, Arc::clone(&credentials.provider), options)
        .map_err(|e| config_err(format!("CloudSigma client: {e}")))?;

    let kube = kube_client(&args).await?;
    let registry = Arc::new(registry);
    let ready = Readiness::default();
    if let Some(addr) = args.serve.metrics_bind_address.0 {
        let local = http::serve_metrics(addr, Arc::clone(&registry))
            .await
            .map_err(|e| config_err(format!("--metrics-bind-address {addr}: {e}")))?;
        info!(%local, "serving /metrics");
    }
    if let Some(addr) = args.serve.health_probe_bind_address.0 {
        let local = http::serve_health(addr, ready.clone())
            .await
            .map_err(|e| config_err(format!("--health-probe-bind-address {addr}: {e}")))?;
        info!(%local, "serving /healthz and /readyz");
    }
    info!(cluster = %args.kube.cluster_name, %region, credentials = %credentials.summary, "ccm starting");

    let shutdown: Shutdown = shutdown_signal().boxed().shared();
    let cache = Arc::new(ServerCache::new(
        Arc::new(CsCloud::new(api)),
        args.nodes.server_cache_ttl,
        node_metrics.clone(),
    ));

    // Not ready, and no controller running, until CloudSigma answered once; transient errors at start
    // are retried here instead of crash-looping.
    let probe = async {
        let mut delay = Duration::from_secs(1);
        loop {
            match cache.snapshot().await {
                Ok(snapshot) => {
                    info!(servers = snapshot.len(), "CloudSigma reachable");
                    ready.set_ready();
                    return;
                }
                Err(e) => {
                    warn!(error = %e, retry_in = ?delay, "CloudSigma not reachable yet; not ready");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    };
    tokio::select! {
        () = probe => {}
        () = shutdown.clone() => return Ok(()),
    }

    let leadership: Shutdown = if args.kube.leader_elect {
        match elect(&kube, &args, shutdown.clone()).await? {
            Some(lost) => lost,
            None => return Ok(()),
        }
    } else {
        futures::future::pending::<()>().boxed().shared()
    };
    let stop: Shutdown = {
        let (a, b) = (shutdown.clone(), leadership.clone());
        async move {
            tokio::select! {
                () = a => {},
                () = b => {},
            }
        }
        .boxed()
        .shared()
    };

    let instance = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty());
    let mut node_cfg = NodeControllerConfig::new(region.clone());
    node_cfg.status_update_frequency = args.nodes.node_status_update_frequency;
    node_cfg.monitor_period = args.nodes.node_monitor_period;
    node_cfg.delete_grace = args.nodes.node_delete_grace;
    node_cfg.deletion_enabled = !args.nodes.disable_node_deletion;
    node_cfg.concurrency = args.nodes.concurrent_node_syncs;
    let nodes = NodeControllers::new(
        kube.clone(),
        Arc::clone(&cache),
        node_cfg,
        node_metrics,
        instance.clone(),
    );

    let token = match (&credentials.impersonation, args.csi_token.csi_token_enabled) {
        (Some((client, email)), true) => {
            let source = ccm_csitoken::ImpersonationSource::new(client.clone(), email, &region)
                .map_err(|e| config_err(format!("CSI token: {e}")))?;
            let mut cfg = ccm_csitoken::Config {
                namespace: args.csi_token.csi_token_namespace.clone(),
                secret_name: args.csi_token.csi_token_secret_name.clone(),
                refresh_interval: args.csi_token.csi_token_refresh_interval,
                create_namespace: args.csi_token.csi_token_create_namespace,
                reporter_instance: instance,
                ..ccm_csitoken::Config::default()
            };
            if let Some(margin) = args.csi_token.csi_token_margin {
                cfg.margin = margin;
            }
            let controller =
                ccm_csitoken::CsiTokenController::new(kube.clone(), cfg, Arc::new(source), token_metrics)
                    .map_err(|e| config_err(format!("--csi-token-*: {e}")))?;
            Some(controller)
        }
        _ => None,
    };

    let token_task = async {
        if let Some(controller) = token {
            controller.run(stop.clone()).await;
        }
    };
    tokio::join!(nodes.run(stop.clone()), token_task);

    if leadership.peek().is_some() && shutdown.peek().is_none() {
        anyhow::bail!("lost the leader-election lease; exiting so a fresh process can compete again");
    }
    info!("ccm stopped");
    Ok(())
}

/// Refuses plain-http CloudSigma and OAuth URLs unless `--allow-insecure-http` is set, and warns at
/// start when it is and they are used.
fn check_transport(cloud: &args::CloudArgs) -> anyhow::Result<()> {
    let mut urls = Vec::new();
    if let Some(url) = &cloud.api_url {
        urls.push(CredentialUrl {
            setting: "--api-url (CLOUDSIGMA_API_URL)",
            url,
        });
    }
    if let Some(url) = &cloud.direct_api_url {
        urls.push(CredentialUrl {
            setting: "--direct-api-url (CLOUDSIGMA_DIRECT_API_URL)",
            url,
        });
    }
    if cloud.impersonation_enabled {
        urls.push(CredentialUrl {
            setting: "--oauth-url (CLOUDSIGMA_OAUTH_URL)",
            url: &cloud.oauth_url,
        });
        urls.push(CredentialUrl {
            setting: "--impersonation-url (CLOUDSIGMA_IMPERSONATION_URL)",
            url: &cloud.impersonation_url,
        });
    }
    let plain = cs_auth::check_plain_http(
        &urls,
        cloud.allow_insecure_http,
        "--allow-insecure-http (CLOUDSIGMA_ALLOW_INSECURE_HTTP)",
    )
    .map_err(|e| config_err(e.to_string()))?;
    if !plain.is_empty() {
        warn!(
            settings = %plain.join(", "),
            "INSECURE: --allow-insecure-http is set and these CloudSigma/OAuth URLs are plain http; client \
             secret, passwords and tokens cross the network unencrypted. Use this only with a local emulator"
        );
    }
    Ok(())
}

async fn kube_client(args: &Args) -> anyhow::Result<kube::Client> {
    let config = match &args.kube.kubeconfig {
        Some(path) => {
            check_kubeconfig_file(path)?;
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| config_err(format!("--kubeconfig (CCM_KUBECONFIG) {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| config_err(format!("--kubeconfig (CCM_KUBECONFIG) {}: {e}", path.display())))?
        }
        None => kube::Config::infer()
            .await
            .context("no --kubeconfig given and no in-cluster or $KUBECONFIG configuration found")?,
    };
    kube::Client::try_from(config).context("cannot build the Kubernetes client")
}

/// Largest kubeconfig the ccm reads (real ones are a few KiB; a device or a runaway file would otherwise
/// be read into memory without end).
const MAX_KUBECONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// Refuses a `--kubeconfig` that is not a regular file of sane size, before anything reads it.
fn check_kubeconfig_file(path: &std::path::Path) -> anyhow::Result<()> {
    let flag = "--kubeconfig (CCM_KUBECONFIG)";
    let meta = std::fs::metadata(path).map_err(|e| {
        config_err(format!(
            "{flag} {}: {e}; give the path of a kubeconfig file",
            path.display()
        ))
    })?;
    if !meta.is_file() {
        return Err(config_err(format!(
            "{flag} {}: not a regular file; give the path of a kubeconfig file",
            path.display()
        )));
    }
    if meta.len() > MAX_KUBECONFIG_BYTES {
        return Err(config_err(format!(
            "{flag} {}: {} bytes, more than the {} MiB a kubeconfig may have",
            path.display(),
            meta.len(),
            MAX_KUBECONFIG_BYTES / (1024 * 1024)
        )));
    }
    Ok(())
}

/// Waits for the lease. `Ok(Some(lost))`: leading, and `lost` completes when leadership is lost.
/// `Ok(None)`: shutdown came first.
async fn elect(kube: &kube::Client, args: &Args, shutdown: Shutdown) -> anyhow::Result<Option<Shutdown>> {
    let lease_name = args
        .kube
        .leader_elect_lease_name
        .clone()
        .unwrap_or_else(|| format!("cloudsigma-ccm-{}", args.kube.cluster_name));
    let identity = format!(
        "{}-{}",
        std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "ccm".into()),
        std::process::id()
    );
    let duration = args.kube.leader_elect_lease_duration.as_secs().max(2);
    let manager = kube_lease_manager::LeaseManagerBuilder::new(kube.clone(), &lease_name)
        .with_namespace(&args.kube.leader_elect_namespace)
        .with_identity(&identity)
        .with_duration(duration)
        .with_grace((duration / 3).max(1))
        .build()
        .await
        .with_context(|| {
            format!(
                "leader election: cannot use Lease {}/{lease_name}",
                args.kube.leader_elect_namespace
            )
        })?;
    let (mut rx, task) = manager.watch().await;
    info!(lease = %lease_name, %identity, "waiting for leadership");
    loop {
        if *rx.borrow_and_update() {
            break;
        }
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { anyhow::bail!("leader election stopped before leading") },
            () = shutdown.clone() => return Ok(None),
        }
    }
    info!(lease = %lease_name, %identity, "became leader");
    let lost = async move {
        let _task = task;
        loop {
            if rx.changed().await.is_err() || !*rx.borrow_and_update() {
                warn!("leadership lost");
                return;
            }
        }
    };
    Ok(Some(lost.boxed().shared()))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        error!("cannot install signal handlers; only a kill stops the process");
        futures::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: shutting down"),
        _ = int.recv() => info!("SIGINT: shutting down"),
    }
}
