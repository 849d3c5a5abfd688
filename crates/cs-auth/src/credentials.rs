//! The credentials a provider yields and the API host they belong on.

use std::fmt;

use secrecy::SecretString;

/// Credentials for one CloudSigma API request. Secret parts are `SecretString`s: they print as
/// `[REDACTED]` in `Debug` output and are zeroized on drop.
#[derive(Clone)]
pub enum Credentials {
    /// HTTP Basic authentication with the account email and password (legacy).
    Basic {
        /// The account email.
        username: String,
        /// The account password.
        password: SecretString,
    },
    /// A bearer token (an impersonated or otherwise issued access token).
    Bearer {
        /// The access token.
        token: SecretString,
    },
}

impl Credentials {
    /// A short, non-secret name of the scheme: `basic` or `bearer`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Basic { .. } => "basic",
            Self::Bearer { .. } => "bearer",
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"[REDACTED]")
                .finish(),
            Self::Bearer { .. } => f.debug_struct("Bearer").field("token", &"[REDACTED]").finish(),
        }
    }
}

/// Which API host a set of credentials acts on correctly.
///
/// An impersonated token acts as the impersonated user only on `https://direct.{region}.cloudsigma.com/`;
/// sent to the regular `https://{region}.cloudsigma.com/` host it acts as the service account's own user
/// (the trap the Go implementation fell into). Legacy credentials work on the regular host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApiHost {
    /// The regular location host, e.g. `https://zrh.cloudsigma.com/api/2.0/`.
    Regular,
    /// The `direct.` host, e.g. `https://direct.zrh.cloudsigma.com/api/2.0/`.
    Direct,
}

/// What a provider hands out: credentials plus the host they must be used on.
#[derive(Clone, Debug)]
pub struct Grant {
    /// The credentials to send.
    pub credentials: Credentials,
    /// The API host the credentials belong on.
    pub host: ApiHost,
}
