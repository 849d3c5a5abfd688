//! Which credentials the CCM uses, from its flags: impersonation when enabled and complete, with
//! legacy credentials as the fallback when given; legacy alone otherwise.

use std::sync::Arc;

use cs_auth::{
    AuthObserver, FallbackProvider, ImpersonationClient, ImpersonationConfig, SharedProvider,
    UsernamePasswordProvider,
};
use secrecy::{ExposeSecret, SecretString};

use crate::args::CloudArgs;

/// A start-up configuration error: the message names the flag (and its environment variable) and the fix.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The credentials the CCM was configured with.
pub struct Credentials {
    /// The provider every CloudSigma API call uses.
    pub provider: SharedProvider,
    /// The impersonation client (shared by the node and CSI token controllers), when impersonating.
    pub impersonation: Option<(ImpersonationClient, String)>,
    /// A one-line description for the start-up log (no secrets).
    pub summary: String,
}

fn present(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| !s.trim().is_empty())
}

fn present_secret(v: &Option<SecretString>) -> bool {
    v.as_ref().is_some_and(|s| !s.expose_secret().is_empty())
}

/// Builds the providers, or says which flag is missing.
pub fn build(
    cloud: &CloudArgs,
    region: &str,
    observer: Arc<dyn AuthObserver>,
) -> Result<Credentials, ConfigError> {
    let legacy = match (present(&cloud.username), present_secret(&cloud.password)) {
        (true, true) => {
            let username = cloud.username.clone().unwrap_or_default();
            let password = cloud
                .password
                .clone()
                .unwrap_or_else(|| SecretString::from(String::new()));
            Some(
                UsernamePasswordProvider::new(username.trim(), password)
                    .map_err(|e| ConfigError(e.to_string()))?,
            )
        }
        (false, false) => None,
        (true, false) => {
            return Err(ConfigError(
                "--username (CLOUDSIGMA_USERNAME) is set but --password (CLOUDSIGMA_PASSWORD) is not: give both legacy credentials or neither".into(),
            ));
        }
        (false, true) => {
            return Err(ConfigError(
                "--password (CLOUDSIGMA_PASSWORD) is set but --username (CLOUDSIGMA_USERNAME) is not: give both legacy credentials or neither".into(),
            ));
        }
    };

    let mut missing = Vec::new();
    if cloud.impersonation_enabled {
        if !present(&cloud.client_id) {
            missing.push("--client-id (CLOUDSIGMA_CLIENT_ID)");
        }
        if !present_secret(&cloud.client_secret) {
            missing.push("--client-secret (CLOUDSIGMA_CLIENT_SECRET)");
        }
        if !present(&cloud.user_email) {
            missing.push("--user-email (CLOUDSIGMA_USER_EMAIL)");
        }
        if cloud.oauth_url.trim().is_empty() {
            missing.push("--oauth-url (CLOUDSIGMA_OAUTH_URL)");
        }
    }

    if cloud.impersonation_enabled && missing.is_empty() {
        let mut cfg = ImpersonationConfig::new(
            cloud.client_id.clone().unwrap_or_default().trim(),
            cloud
                .client_secret
                .clone()
                .unwrap_or_else(|| SecretString::from(String::new())),
        );
        cfg.oauth_url = cloud.oauth_url.trim().to_owned();
        cfg.impersonation_url = cloud.impersonation_url.trim().to_owned();
        cfg.timeout = cloud.cloudsigma_timeout;
        let client = ImpersonationClient::with_observer(cfg, Arc::clone(&observer))
            .map_err(|e| ConfigError(format!("impersonation settings: {e}")))?;
        let email = cloud.user_email.clone().unwrap_or_default().trim().to_owned();
        let impersonated = client
            .provider(&email, region)
            .map_err(|e| ConfigError(format!("--user-email / --region: {e}")))?;
        let (provider, summary): (SharedProvider, String) = match legacy {
            Some(legacy) => (
                Arc::new(
                    FallbackProvider::new(
                        Arc::new(impersonated),
                        Arc::new(legacy),
                        cloud.fallback_probe_interval,
                    )
                    .with_observer(observer),
                ),
                format!("impersonating {email} in {region}, legacy credentials as fallback"),
            ),
            None => (
                Arc::new(impersonated),
                format!("impersonating {email} in {region}"),
            ),
        };
        return Ok(Credentials {
            provider,
            impersonation: Some((client, email)),
            summary,
        });
    }

    match legacy {
        Some(legacy) => {
            if cloud.impersonation_enabled {
                tracing::warn!(
                    missing = %missing.join(", "),
                    "impersonation is enabled but incomplete; using the legacy credentials alone"
                );
            }
            let summary = format!(
                "legacy credentials of {}",
                cloud.username.as_deref().unwrap_or_default().trim()
            );
            Ok(Credentials {
                provider: Arc::new(legacy),
                impersonation: None,
                summary,
            })
        }
        None if cloud.impersonation_enabled => Err(ConfigError(format!(
            "impersonation is enabled but {} missing; set {} (or give legacy --username/--password)",
            if missing.len() == 1 {
                "this setting is"
            } else {
                "these settings are"
            },
            missing.join(", ")
        ))),
        None => Err(ConfigError(
            "no CloudSigma credentials: enable impersonation (--impersonation-enabled with --client-id, \
             --client-secret, --user-email) or give legacy --username and --password (CLOUDSIGMA_USERNAME, \
             CLOUDSIGMA_PASSWORD)"
                .into(),
        )),
    }
}
