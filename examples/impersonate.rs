//! Obtains a token impersonating a CloudSigma user and lists that user's servers with it on the direct
//! API host. Prints the token's timing and the server count, never the token or the client secret.
//!
//! ```text
//! cargo run -p cs-emulator -- --seed examples/seed.yaml &       # listens on 127.0.0.1:8080
//! CLOUDSIGMA_CLIENT_SECRET=demo-secret-not-for-production cargo run --example impersonate -- \
//!   --oauth-url http://127.0.0.1:8080/oauth --client-id demo-client \
//!   --user-email user@example.com --region zrh \
//!   --impersonation-url 'http://127.0.0.1:8080/{region}/direct/' \
//!   --api-url-direct 'http://127.0.0.1:8080/{region}/direct/api/2.0/'
//! ```

use std::{convert::Infallible, time::Duration};

use anyhow::{Context as _, bail};
use clap::Parser;
use cs_auth::{
    DEFAULT_IMPERSONATION_URL, DEFAULT_OAUTH_URL, ImpersonationClient, ImpersonationConfig,
    REGION_PLACEHOLDER,
};
use secrecy::{ExposeSecret, SecretString};

/// Impersonate a CloudSigma user and count their servers.
#[derive(Debug, Parser)]
#[command(name = "impersonate", version)]
struct Args {
    /// Keycloak base URL (staging: https://oauth-stg.cloudsigma.com).
    #[arg(long, env = "CLOUDSIGMA_OAUTH_URL", default_value = DEFAULT_OAUTH_URL)]
    oauth_url: String,
    /// OAuth client id of the service provider.
    #[arg(long, env = "CLOUDSIGMA_CLIENT_ID")]
    client_id: String,
    /// OAuth client secret (prefer the environment variable).
    #[arg(long, env = "CLOUDSIGMA_CLIENT_SECRET", hide_env_values = true, value_parser = secret)]
    client_secret: SecretString,
    /// Email of the user to impersonate.
    #[arg(long, env = "CLOUDSIGMA_USER_EMAIL")]
    user_email: String,
    /// Region code, e.g. zrh.
    #[arg(long, env = "CLOUDSIGMA_REGION", default_value = "zrh")]
    region: String,
    /// Impersonation base with a {region} placeholder.
    #[arg(long, default_value = DEFAULT_IMPERSONATION_URL)]
    impersonation_url: String,
    /// API 2.0 base of the direct host with a {region} placeholder (where impersonated tokens act as the user).
    #[arg(long, default_value = "https://direct.{region}.cloudsigma.com/api/2.0/")]
    api_url_direct: String,
    /// HTTP timeout in seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
}

fn secret(value: &str) -> Result<SecretString, Infallible> {
    Ok(SecretString::from(value.to_owned()))
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
    let timeout = Duration::from_secs(args.timeout_secs);
    let config = ImpersonationConfig {
        oauth_url: args.oauth_url.clone(),
        impersonation_url: args.impersonation_url.clone(),
        timeout,
        ..ImpersonationConfig::new(args.client_id.clone(), args.client_secret.clone())
    };
    let client = ImpersonationClient::new(config).context("invalid settings")?;
    let token = client
        .token(&args.user_email, &args.region)
        .await
        .context("impersonation failed")?;

    println!("user:        {}", token.user_email);
    println!("region:      {}", token.region);
    println!(
        "token:       obtained (not shown), lifetime {} s",
        token.lifetime.as_secs()
    );
    println!("issued at:   {}", token.issued_at);
    println!("expires at:  {}", token.expires_at);
    println!("refresh at:  {}", token.refresh_at);

    let mut base = args.api_url_direct.replace(REGION_PLACEHOLDER, &args.region);
    if !base.ends_with('/') {
        base.push('/');
    }
    let url = format!("{base}servers/?limit=0");
    let http = reqwest::Client::builder().timeout(timeout).build()?;
    let response = http
        .get(&url)
        .bearer_auth(token.token.expose_secret())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("listing servers at {url} failed: {}", e.without_url()))?;
    let status = response.status();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    if !status.is_success() {
        bail!("listing servers at {url} failed: HTTP {status} (request id {request_id})");
    }
    let body: serde_json::Value = response.json().await.context("the server list is not JSON")?;
    let count = body["meta"]["total_count"]
        .as_u64()
        .or_else(|| body["objects"].as_array().map(|a| a.len() as u64))
        .context("the server list has neither meta.total_count nor objects")?;
    println!("servers:     {count} (GET {url})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn cli_definition_is_valid_and_hides_the_secret() {
        Args::command().debug_assert();
        let args = Args::try_parse_from([
            "impersonate",
            "--client-id",
            "c",
            "--client-secret",
            "topsecret-1",
            "--user-email",
            "u@example.com",
        ])
        .unwrap();
        assert_eq!(args.region, "zrh");
        assert_eq!(args.oauth_url, "https://oauth.cloudsigma.com");
        assert!(!format!("{args:?}").contains("topsecret-1"));
    }
}
