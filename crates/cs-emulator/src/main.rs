//! `cs-emulator`: run the CloudSigma emulator as a local server for demos and development.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use cs_emulator::{Config, Emulator, Seed};
use tracing_subscriber::EnvFilter;

/// A local CloudSigma API 2.0 emulator with the Keycloak token endpoint and impersonation.
#[derive(Debug, Parser)]
#[command(name = "cs-emulator", version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the bound URL is printed).
    #[arg(long, env = "CS_EMULATOR_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Seed file (YAML, or JSON when it ends in .json): users, oauth_clients, drives, servers.
    #[arg(long, env = "CS_EMULATOR_SEED")]
    seed: Option<PathBuf>,
    /// Location codes served, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "zrh")]
    locations: Vec<String>,
    /// Location behind the /api/2.0/ alias (default: the first location).
    #[arg(long)]
    default_location: Option<String>,
    /// Lifetime of impersonated tokens (e.g. 900s, 15m).
    #[arg(long, value_parser = parse_duration, default_value = "900s")]
    token_lifetime: Duration,
    /// Lifetime of client-credentials tokens.
    #[arg(long, value_parser = parse_duration, default_value = "300s")]
    sa_token_lifetime: Duration,
    /// Lifetime of RPTs.
    #[arg(long, value_parser = parse_duration, default_value = "300s")]
    rpt_lifetime: Duration,
    /// Drive creating -> unmounted.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    drive_create_delay: Duration,
    /// Drive detach (mounted -> unmounted after leaving a server definition).
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    detach_delay: Duration,
    /// Drive resizing -> previous state.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    resize_delay: Duration,
    /// Drive cloning -> ready.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    clone_delay: Duration,
    /// Snapshot creating -> available.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    snapshot_delay: Duration,
    /// Server starting -> running and stopping -> stopped.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    server_transition_delay: Duration,
    /// Refuse drive/NIC changes on running servers (the documented strict mode) instead of hot-plugging.
    #[arg(long)]
    strict_hotplug: bool,
    /// Log format.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
}

/// `250ms`, `2s`, `15m`, `1h`, or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 250ms, 2s, 15m, 1h"))?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        other => Err(format!("unknown duration unit {other:?} (use ms, s, m or h)")),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr, so stdout carries only the start-up banner (its first line names the URL).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if args.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    let default_location = args
        .default_location
        .clone()
        .or_else(|| args.locations.first().cloned())
        .context("--locations must name at least one location")?;
    let config = Config {
        listen: args.listen,
        locations: args.locations.clone(),
        default_location,
        token_lifetime: args.token_lifetime,
        sa_token_lifetime: args.sa_token_lifetime,
        rpt_lifetime: args.rpt_lifetime,
        drive_create_delay: args.drive_create_delay,
        detach_delay: args.detach_delay,
        resize_delay: args.resize_delay,
        clone_delay: args.clone_delay,
        snapshot_delay: args.snapshot_delay,
        server_transition_delay: args.server_transition_delay,
        strict_hotplug: args.strict_hotplug,
    };
    let seed = match &args.seed {
        Some(path) => {
            Some(Seed::from_path(path).with_context(|| format!("loading seed {}", path.display()))?)
        }
        None => None,
    };
    let emu = Emulator::start_with(config)
        .await
        .context("starting the emulator")?;
    if let Some(seed) = &seed {
        emu.load_seed(seed).context("applying the seed")?;
        tracing::info!(
            users = seed.users.len(),
            oauth_clients = seed.oauth_clients.len(),
            drives = seed.drives.len(),
            servers = seed.servers.len(),
            "seed loaded"
        );
    }
    print_urls(&emu);
    shutdown_signal().await;
    tracing::info!("shutting down");
    emu.shutdown().await;
    Ok(())
}

fn print_urls(emu: &Emulator) {
    let cfg = emu.config();
    println!("cs-emulator listening on {}", emu.base_url());
    for loc in &cfg.locations {
        println!("  [{loc}] API 2.0 (regular host): {}", emu.api_url(loc));
        println!("  [{loc}] API 2.0 (direct host):  {}", emu.direct_api_url(loc));
        println!("  [{loc}] impersonation:          {}", emu.impersonate_url(loc));
    }
    println!(
        "  alias of [{}]:               {}/api/2.0/",
        cfg.default_location,
        emu.base_url()
    );
    println!("  OAuth URL:                    {}", emu.oauth_url());
    println!("  token endpoint:               {}", emu.token_url());
    println!(
        "  templates: api_url={} direct_api_url={} direct_url={}",
        emu.api_url_template(),
        emu.direct_api_url_template(),
        emu.direct_url_template()
    );
    println!("  admin API:                    {}/_emulator/", emu.base_url());
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3d").unwrap_err().contains("unit"));
    }
}
