//! Lists the servers of a CloudSigma account as a table: name, uuid, status and the IP addresses the
//! running servers report. Never prints the password.
//!
//! ```text
//! cargo run -p cs-emulator -- --seed examples/seed.yaml &       # listens on 127.0.0.1:8080
//! CLOUDSIGMA_PASSWORD=pass cargo run --example list-servers -- \
//!   --api-url 'http://127.0.0.1:8080/{region}/api/2.0/' --region zrh --username user@example.com
//! ```
//!
//! Without `--api-url` the public API host of `--region` is used (e.g. `https://zrh.cloudsigma.com/api/2.0/`).

use std::{convert::Infallible, sync::Arc, time::Duration};

use anyhow::Context as _;
use clap::Parser;
use cs_api::{Client, ClientOptions, Endpoints, ListFilter, Server};
use cs_auth::UsernamePasswordProvider;
use secrecy::SecretString;

/// List CloudSigma servers with their status and IP addresses.
#[derive(Debug, Parser)]
#[command(name = "list-servers", version)]
struct Args {
    /// API 2.0 base URL, or a template with a literal {region}; default: the public host of --region.
    #[arg(long, env = "CLOUDSIGMA_API_URL")]
    api_url: Option<String>,
    /// Region (location) code, e.g. zrh.
    #[arg(long, env = "CLOUDSIGMA_REGION", default_value = "zrh")]
    region: String,
    /// Account email.
    #[arg(long, env = "CLOUDSIGMA_USERNAME")]
    username: String,
    /// Account password (prefer the environment variable).
    #[arg(long, env = "CLOUDSIGMA_PASSWORD", hide_env_values = true, value_parser = secret)]
    password: SecretString,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
}

fn secret(value: &str) -> Result<SecretString, Infallible> {
    Ok(SecretString::from(value.to_owned()))
}

/// One table row: name, uuid, status, IPs.
fn row(server: &Server) -> [String; 4] {
    let ips: Vec<String> = server
        .runtime_addresses()
        .iter()
        .map(|a| a.ip.to_string())
        .collect();
    [
        server.name.clone(),
        server.uuid.clone(),
        server.status.to_string(),
        if ips.is_empty() {
            "-".to_owned()
        } else {
            ips.join(", ")
        },
    ]
}

/// Renders rows under a header with columns padded to their widest cell.
fn table(rows: &[[String; 4]]) -> String {
    let header = ["NAME", "UUID", "STATUS", "IPS"].map(String::from);
    let mut widths = header.each_ref().map(|h| h.chars().count());
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&header).chain(rows) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let endpoints = match &args.api_url {
        Some(url) => Endpoints::from_templates(url, None, &args.region),
        None => Endpoints::for_location(&args.region),
    }
    .context("invalid --api-url or --region")?;
    let provider = UsernamePasswordProvider::new(args.username.clone(), args.password.clone())
        .context("invalid --username or --password")?;
    let options = ClientOptions {
        timeout: Duration::from_secs(args.timeout_secs),
        ..ClientOptions::default()
    };
    let client = Client::new(endpoints, Arc::new(provider), options).context("cannot build the client")?;

    let mut servers = client
        .list_servers_detail(&ListFilter::all())
        .await
        .context("listing servers failed")?;
    servers.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.uuid.cmp(&b.uuid)));
    let rows: Vec<[String; 4]> = servers.iter().map(row).collect();
    print!("{}", table(&rows));
    eprintln!("{} server(s) at {}", rows.len(), client.endpoints().regular());
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_valid_and_hides_the_password() {
        Args::command().debug_assert();
        let help = Args::command().render_long_help().to_string();
        assert!(help.contains("--api-url") && help.contains("CLOUDSIGMA_PASSWORD"));
    }

    #[test]
    fn table_aligns_columns_and_marks_missing_ips() {
        let running: Server = serde_json::from_value(serde_json::json!({
            "uuid": "u-1", "name": "web-1", "status": "running",
            "nics": [{"mac": "m", "runtime": {"interface_type": "public", "ip_v4": {"uuid": "203.0.113.10"}}}]
        }))
        .unwrap();
        let stopped: Server =
            serde_json::from_value(serde_json::json!({"uuid": "u-22", "name": "db", "status": "stopped"}))
                .unwrap();
        let text = table(&[row(&running), row(&stopped)]);
        assert_eq!(
            text,
            "NAME   UUID  STATUS   IPS\nweb-1  u-1   running  203.0.113.10\ndb     u-22  stopped  -\n"
        );
    }
}
