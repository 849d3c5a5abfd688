//! Settings of the impersonation client.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::{Error, Result};

/// Production Keycloak (staging: `https://oauth-stg.cloudsigma.com`).
pub const DEFAULT_OAUTH_URL: &str = "https://oauth.cloudsigma.com";
/// Production impersonation base; `{region}` is replaced by the region code.
pub const DEFAULT_IMPERSONATION_URL: &str = "https://direct.{region}.cloudsigma.com/";
/// Total time allowed for one HTTP request, body included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed to establish a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long before its expiry a cached token is replaced (see [`refresh_after`](crate::refresh_after)).
pub const DEFAULT_EXPIRY_BUFFER: Duration = Duration::from_secs(300);
/// Upper bound on the number of (user, region) tokens kept.
pub const DEFAULT_MAX_CACHED_TOKENS: u64 = 10_000;

/// Bounded retries with exponential backoff and jitter for one step of the flow. Only transient
/// failures are retried (see [`Error::is_retryable`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Requests per step, the first included (default 3; 1 disables retries).
    pub attempts: u32,
    /// Delay before the first retry (default 200 ms); doubles per retry, plus up to 100 % jitter.
    pub min_delay: Duration,
    /// Cap on the delay between two attempts before jitter (default 5 s).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// Settings of an [`ImpersonationClient`](crate::ImpersonationClient). Start from
/// [`ImpersonationConfig::new`] and override fields as needed.
#[derive(Clone, Debug)]
pub struct ImpersonationConfig {
    /// Keycloak base URL, e.g. `https://oauth.cloudsigma.com`; the token endpoint is
    /// `{oauth_url}/realms/cloudsigma/protocol/openid-connect/token`.
    pub oauth_url: String,
    /// OAuth client id (e.g. `kubernetes_cluster_service`).
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: SecretString,
    /// Impersonation base template with a `{region}` placeholder; the endpoint is
    /// `<base>service_provider/api/v1/user/impersonate`.
    pub impersonation_url: String,
    /// Total timeout of one HTTP request.
    pub timeout: Duration,
    /// Connect timeout of one HTTP request.
    pub connect_timeout: Duration,
    /// How long before expiry cached tokens are replaced.
    pub expiry_buffer: Duration,
    /// Retry policy of each step.
    pub retry: RetryPolicy,
    /// Upper bound on cached (user, region) tokens.
    pub max_cached_tokens: u64,
}

impl ImpersonationConfig {
    /// Production defaults for the given OAuth client.
    pub fn new(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        Self {
            oauth_url: DEFAULT_OAUTH_URL.to_owned(),
            client_id: client_id.into(),
            client_secret,
            impersonation_url: DEFAULT_IMPERSONATION_URL.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            expiry_buffer: DEFAULT_EXPIRY_BUFFER,
            retry: RetryPolicy::default(),
            max_cached_tokens: DEFAULT_MAX_CACHED_TOKENS,
        }
    }

    /// Checks the settings that need no URL parsing; each error names its field.
    pub(crate) fn check_scalars(&self) -> Result<()> {
        if self.client_id.trim().is_empty() {
            return Err(Error::Config("client_id is empty".into()));
        }
        if self.client_secret.expose_secret().is_empty() {
            return Err(Error::Config("client_secret is empty".into()));
        }
        if self.timeout.is_zero() {
            return Err(Error::Config("timeout must be greater than zero".into()));
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::Config("connect_timeout must be greater than zero".into()));
        }
        if self.retry.attempts == 0 {
            return Err(Error::Config("retry.attempts must be at least 1".into()));
        }
        if self.retry.max_delay < self.retry.min_delay {
            return Err(Error::Config(
                "retry.max_delay must not be shorter than retry.min_delay".into(),
            ));
        }
        if self.max_cached_tokens == 0 {
            return Err(Error::Config("max_cached_tokens must be at least 1".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ImpersonationConfig {
        ImpersonationConfig::new("kubernetes_cluster_service", SecretString::from("s3cr3t-value"))
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let c = cfg();
        assert_eq!(c.oauth_url, "https://oauth.cloudsigma.com");
        assert_eq!(c.impersonation_url, "https://direct.{region}.cloudsigma.com/");
        assert_eq!(
            (c.timeout, c.connect_timeout),
            (Duration::from_secs(30), Duration::from_secs(10))
        );
        assert_eq!(c.expiry_buffer, Duration::from_secs(300));
        assert_eq!(c.retry.attempts, 3);
        assert!(c.check_scalars().is_ok());
    }

    #[test]
    fn each_bad_setting_is_named() {
        let cases: Vec<(&str, ImpersonationConfig)> = vec![
            (
                "client_id",
                ImpersonationConfig {
                    client_id: " ".into(),
                    ..cfg()
                },
            ),
            (
                "client_secret",
                ImpersonationConfig {
                    client_secret: SecretString::from(""),
                    ..cfg()
                },
            ),
            (
                "timeout",
                ImpersonationConfig {
                    timeout: Duration::ZERO,
                    ..cfg()
                },
            ),
            (
                "connect_timeout",
                ImpersonationConfig {
                    connect_timeout: Duration::ZERO,
                    ..cfg()
                },
            ),
            (
                "retry.attempts",
                ImpersonationConfig {
                    retry: RetryPolicy {
                        attempts: 0,
                        ..Default::default()
                    },
                    ..cfg()
                },
            ),
            (
                "retry.max_delay",
                ImpersonationConfig {
                    retry: RetryPolicy {
                        max_delay: Duration::from_millis(1),
                        ..Default::default()
                    },
                    ..cfg()
                },
            ),
            (
                "max_cached_tokens",
                ImpersonationConfig {
                    max_cached_tokens: 0,
                    ..cfg()
                },
            ),
        ];
        for (field, c) in cases {
            let e = c.check_scalars().unwrap_err();
            assert!(e.to_string().contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn debug_hides_the_client_secret() {
        let text = format!("{:?}", cfg());
        assert!(text.contains("kubernetes_cluster_service"));
        assert!(!text.contains("s3cr3t-value"), "{text}");
    }
}
