//! Providers with fixed credentials: legacy username/password and a static bearer token.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use crate::{ApiHost, Credentials, CredentialsProvider, Error, Grant, Result};

/// Legacy HTTP Basic credentials (account email and password), used on the regular API host.
#[derive(Debug, Clone)]
pub struct UsernamePasswordProvider {
    username: String,
    password: SecretString,
}

impl UsernamePasswordProvider {
    /// Builds the provider; both values must be non-empty.
    pub fn new(username: impl Into<String>, password: SecretString) -> Result<Self> {
        let username = username.into();
        if username.trim().is_empty() {
            return Err(Error::Config(
                "the CloudSigma username (account email) is empty".into(),
            ));
        }
        if password.expose_secret().is_empty() {
            return Err(Error::Config("the CloudSigma password is empty".into()));
        }
        Ok(Self { username, password })
    }
}

#[async_trait]
impl CredentialsProvider for UsernamePasswordProvider {
    async fn credentials(&self) -> Result<Grant> {
        Ok(Grant {
            credentials: Credentials::Basic {
                username: self.username.clone(),
                password: self.password.clone(),
            },
            host: ApiHost::Regular,
        })
    }

    async fn invalidate(&self) {}

    fn name(&self) -> &'static str {
        "legacy"
    }
}

/// A fixed bearer token and the host it belongs on.
#[derive(Debug, Clone)]
pub struct StaticTokenProvider {
    token: SecretString,
    host: ApiHost,
}

impl StaticTokenProvider {
    /// Builds the provider; the token must be non-empty (surrounding whitespace is removed).
    pub fn new(token: SecretString, host: ApiHost) -> Result<Self> {
        let trimmed = token.expose_secret().trim();
        if trimmed.is_empty() {
            return Err(Error::Config("the static CloudSigma token is empty".into()));
        }
        Ok(Self {
            token: SecretString::from(trimmed.to_owned()),
            host,
        })
    }
}

#[async_trait]
impl CredentialsProvider for StaticTokenProvider {
    async fn credentials(&self) -> Result<Grant> {
        Ok(Grant {
            credentials: Credentials::Bearer {
                token: self.token.clone(),
            },
            host: self.host,
        })
    }

    async fn invalidate(&self) {}

    fn name(&self) -> &'static str {
        "static-token"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn legacy_yields_basic_on_regular_host() {
        let p = UsernamePasswordProvider::new("a@example.com", SecretString::from("pw-123")).unwrap();
        let g = p.credentials().await.unwrap();
        assert_eq!(g.host, ApiHost::Regular);
        match g.credentials {
            Credentials::Basic { username, password } => {
                assert_eq!(username, "a@example.com");
                assert_eq!(password.expose_secret(), "pw-123");
            }
            other => panic!("expected basic, got {other:?}"),
        }
    }

    #[test]
    fn empty_values_are_rejected_with_the_field_named() {
        let e = UsernamePasswordProvider::new("", SecretString::from("x")).unwrap_err();
        assert!(e.to_string().contains("username"), "{e}");
        let e = UsernamePasswordProvider::new("a@b", SecretString::from("")).unwrap_err();
        assert!(e.to_string().contains("password"), "{e}");
        let e = StaticTokenProvider::new(SecretString::from(" \n"), ApiHost::Direct).unwrap_err();
        assert!(e.to_string().contains("token"), "{e}");
    }

    #[tokio::test]
    async fn debug_output_never_shows_secrets() {
        let p = UsernamePasswordProvider::new("a@example.com", SecretString::from("hunter2-pw")).unwrap();
        let t = StaticTokenProvider::new(SecretString::from("tok-abc-123\n"), ApiHost::Direct).unwrap();
        let text = format!(
            "{p:?} {t:?} {:?} {:?}",
            p.credentials().await.unwrap(),
            t.credentials().await.unwrap()
        );
        assert!(
            !text.contains("hunter2-pw") && !text.contains("tok-abc-123"),
            "{text}"
        );
        let tg = t.credentials().await.unwrap();
        match tg.credentials {
            Credentials::Bearer { token } => assert_eq!(token.expose_secret(), "tok-abc-123"),
            other => panic!("expected bearer, got {other:?}"),
        }
    }
}
