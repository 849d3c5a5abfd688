//! `csi-controller`: the CloudSigma CSI controller plugin.
//!
//! Wires `csi-tokenfile` (credentials from the mounted token Secret, with optional legacy fallback) and
//! `cs-api` into the CSI Identity and Controller services of `csi-driver`, served on a Unix socket until
//! SIGTERM or SIGINT. Flags are documented in `docs/csi.md`.

use std::{path::PathBuf, sync::Arc};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use cs_api::{Client, ClientOptions, Endpoints};
use cs_auth::{SharedProvider, UsernamePasswordProvider};
use csi_driver::{
    ControllerOptions, ControllerService, IdentityService, endpoint,
    sizes::{GIB, SizeLimits},
};
use csi_tokenfile::{DEFAULT_TOKEN_FILE, RegionSource, TokenFileConfig, TokenFileProvider};
use secrecy::SecretString;
use tracing::info;

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Command line of the CloudSigma CSI controller plugin. Every flag can also be set through the
/// environment variable named in its help.
#[derive(Debug, Parser)]
#[command(
    name = "csi-controller",
    version,
    about = "CloudSigma CSI controller plugin (Identity + Controller services)"
)]
struct Args {
    /// The CSI endpoint: a Unix socket, `unix:///path/to/csi.sock`.
    #[arg(long, env = "CSI_ENDPOINT", default_value = "unix:///csi/csi.sock")]
    endpoint: String,

    /// The impersonated-token file from the mounted `cloudsigma-token` Secret; `region` and `user_email`
    /// files are read from the same directory.
    #[arg(long, env = "CLOUDSIGMA_TOKEN_FILE", default_value = DEFAULT_TOKEN_FILE)]
    token_file: PathBuf,

    /// The CloudSigma region (location code, e.g. `zrh`); overrides the Secret's `region` file.
    #[arg(long, env = "CLOUDSIGMA_REGION")]
    region: Option<String>,

    /// Legacy fallback: the account email, used (with --password) whenever the token file has no
    /// usable token.
    #[arg(long, env = "CLOUDSIGMA_USERNAME", requires = "password")]
    username: Option<String>,

    /// Legacy fallback: the account password (prefer the environment variable over the flag).
    #[arg(
        long,
        env = "CLOUDSIGMA_PASSWORD",
        hide_env_values = true,
        requires = "username"
    )]
    password: Option<String>,

    /// Regular API base URL; may contain `{region}` (e.g. `http://127.0.0.1:8080/{region}/api/2.0/`).
    /// Default: the public host of the region.
    #[arg(long, env = "CLOUDSIGMA_API_URL")]
    api_url: Option<String>,

    /// Direct API base URL for impersonated tokens; may contain `{region}`. Default: the `direct.` host of
    /// the region, or --api-url when only that is given.
    #[arg(long, env = "CLOUDSIGMA_DIRECT_API_URL", requires = "api_url")]
    direct_api_url: Option<String>,

    /// Size of a volume created without a capacity range, in GiB.
    #[arg(long, env = "CSI_DEFAULT_VOLUME_SIZE_GIB", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    default_volume_size_gib: u64,

    /// Largest volume the driver creates or expands to, in GiB.
    #[arg(long, env = "CSI_MAX_VOLUME_SIZE_GIB", default_value_t = 10240, value_parser = clap::value_parser!(u64).range(1..))]
    max_volume_size_gib: u64,

    /// Log format; the level comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        // Without signal handlers the process still stops on the default signal action.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received; finishing running calls"),
        _ = int.recv() => info!("SIGINT received; finishing running calls"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(args.log_format);
    run(args).await
}

async fn run(args: Args) -> anyhow::Result<()> {
    let socket = endpoint::socket_path("--endpoint (CSI_ENDPOINT)", &args.endpoint)?;
    let legacy = match (args.username, args.password) {
        (Some(username), Some(password)) => Some(
            UsernamePasswordProvider::new(username, SecretString::from(password))
                .context("--username/--password (CLOUDSIGMA_USERNAME/CLOUDSIGMA_PASSWORD)")?,
        ),
        (None, None) => None,
        // clap's `requires` makes these unreachable; keep the message anyway.
        _ => bail!(
            "--username and --password (CLOUDSIGMA_USERNAME/CLOUDSIGMA_PASSWORD) must be given together"
        ),
    };
    let has_legacy = legacy.is_some();
    let provider = TokenFileProvider::new(TokenFileConfig {
        token_file: args.token_file.clone(),
        region_override: args.region,
        legacy,
    })
    .context(
        "cannot set up credentials (set --region / CLOUDSIGMA_REGION when the Secret has no region file)",
    )?;
    let region = provider.region().to_owned();
    let endpoints = match &args.api_url {
        Some(api_url) => Endpoints::from_templates(api_url, args.direct_api_url.as_deref(), &region)
            .context("--api-url / --direct-api-url")?,
        None => Endpoints::for_location(&region).context("--region (or the Secret's region file)")?,
    };
    info!(
        region = %region,
        region_from = match provider.region_source() {
            RegionSource::Override => "--region",
            RegionSource::File => "region file",
        },
        token_file = %args.token_file.display(),
        legacy_fallback = has_legacy,
        api = %endpoints.regular(),
        direct_api = %endpoints.direct(),
        "starting the CloudSigma CSI controller"
    );
    let provider: SharedProvider = Arc::new(provider);
    let client = Client::new(endpoints, Arc::clone(&provider), ClientOptions::default())
        .context("cannot build the CloudSigma client")?;
    let options = ControllerOptions {
        sizes: SizeLimits {
            default_bytes: args.default_volume_size_gib.saturating_mul(GIB),
            max_bytes: args.max_volume_size_gib.saturating_mul(GIB),
            ..SizeLimits::default()
        },
        ..ControllerOptions::default()
    };
    let controller = ControllerService::new(client, region.clone(), options)
        .context("--default-volume-size-gib / --max-volume-size-gib")?;
    let identity = IdentityService::new(Some(provider), &region);
    let listener = endpoint::bind(&socket)?;
    endpoint::serve(listener, &socket, identity, controller, shutdown_signal()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_valid() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults_match_the_documentation() {
        let args = Args::try_parse_from(["csi-controller"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(args.token_file, PathBuf::from("/etc/cloudsigma/access_token"));
        assert_eq!(
            (args.default_volume_size_gib, args.max_volume_size_gib),
            (10, 10240)
        );
        assert_eq!(args.log_format, LogFormat::Text);
    }

    #[test]
    fn username_and_password_come_together() {
        let e = Args::try_parse_from(["csi-controller", "--username", "a@b.c"]).unwrap_err();
        assert!(e.to_string().contains("--password"), "{e}");
    }
}
