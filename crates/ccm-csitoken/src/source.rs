//! Where tokens come from: the narrow [`TokenSource`] trait and its implementation over cs-auth's
//! shared [`ImpersonationClient`](cs_auth::ImpersonationClient).

use std::fmt;

use async_trait::async_trait;
use cs_auth::{ImpersonatedProvider, ImpersonationClient};
use jiff::Timestamp;
use secrecy::SecretString;

use crate::{Error, Result, error::reason_of_auth_error};

/// A token to store, with what readers need to use it. The token prints as `[REDACTED]`.
#[derive(Clone)]
pub struct IssuedToken {
    /// The bearer token.
    pub token: SecretString,
    /// When the API stops accepting it.
    pub expires_at: Timestamp,
    /// When the source will hand out a newer token, if it knows (a hint for the schedule).
    pub renew_at: Option<Timestamp>,
    /// The CloudSigma region whose `direct` API host accepts it.
    pub region: String,
    /// The user the token acts as.
    pub user_email: String,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .field("renew_at", &self.renew_at)
            .field("region", &self.region)
            .field("user_email", &self.user_email)
            .finish()
    }
}

/// Hands out the current token for the Secret. Implementations cache: the controller asks on every
/// pass (every few seconds to minutes) and expects a new value only when the old one is due.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// The current token. Errors are [`Error::Source`] with a [`FailureReason`](crate::FailureReason)
    /// and a message without secrets.
    async fn token(&self) -> Result<IssuedToken>;
}

/// The tokens of one user in one region from a shared [`ImpersonationClient`]: pass the SAME client
/// (a clone) the node controller uses, so both share one cache and one impersonation per lifetime.
#[derive(Clone, Debug)]
pub struct ImpersonationSource {
    provider: ImpersonatedProvider,
}

impl ImpersonationSource {
    /// A source for `user_email` in `region`; both are checked now (a typo fails at start-up).
    pub fn new(client: ImpersonationClient, user_email: &str, region: &str) -> Result<Self> {
        let provider = ImpersonatedProvider::new(client, user_email, region).map_err(|e| match e {
            cs_auth::Error::InvalidRegion { .. } => Error::config("region", e.to_string()),
            other => Error::config("user_email", other.to_string()),
        })?;
        Ok(Self { provider })
    }

    /// The impersonated user.
    pub fn user_email(&self) -> &str {
        self.provider.user_email()
    }

    /// The region.
    pub fn region(&self) -> &str {
        self.provider.region()
    }
}

#[async_trait]
impl TokenSource for ImpersonationSource {
    async fn token(&self) -> Result<IssuedToken> {
        let t = self.provider.token().await.map_err(|e| Error::Source {
            reason: reason_of_auth_error(&e),
            message: e.to_string(),
        })?;
        Ok(IssuedToken {
            token: t.token,
            expires_at: t.expires_at,
            renew_at: Some(t.refresh_at),
            region: t.region,
            user_email: t.user_email,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_token() {
        let t = IssuedToken {
            token: SecretString::from("tok-abcdef-123"),
            expires_at: Timestamp::UNIX_EPOCH,
            renew_at: None,
            region: "zrh".into(),
            user_email: "tenant@example.com".into(),
        };
        let text = format!("{t:?}");
        assert!(!text.contains("tok-abcdef-123"), "{text}");
        assert!(text.contains("[REDACTED]") && text.contains("zrh"), "{text}");
    }

    #[test]
    fn bad_email_and_region_are_named() {
        let client = ImpersonationClient::new(cs_auth::ImpersonationConfig::new(
            "kubernetes_cluster_service",
            SecretString::from("secret"),
        ))
        .unwrap();
        let e = ImpersonationSource::new(client.clone(), "not-an-email", "zrh").unwrap_err();
        assert!(
            matches!(
                e,
                Error::Config {
                    field: "user_email",
                    ..
                }
            ),
            "{e}"
        );
        let e = ImpersonationSource::new(client.clone(), "tenant@example.com", "Zürich").unwrap_err();
        assert!(matches!(e, Error::Config { field: "region", .. }), "{e}");
        let ok = ImpersonationSource::new(client, " tenant@example.com ", "zrh").unwrap();
        assert_eq!((ok.user_email(), ok.region()), ("tenant@example.com", "zrh"));
    }
}
