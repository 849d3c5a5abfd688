//! Accounts, OAuth clients and tokens.

use std::time::{Duration, Instant};

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

use super::State;

/// An account. Service-account users created for an OAuth client have no password.
pub(crate) struct User {
    pub(crate) email: String,
    pub(crate) password: Option<SecretString>,
}

/// A Keycloak client with its service-account user.
pub(crate) struct OAuthClient {
    pub(crate) secret: SecretString,
    pub(crate) sa_user: String,
}

/// What a token was issued as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// `client_credentials` token of a service account.
    ServiceAccount,
    /// UMA ticket (RPT) for `service_provider_api`.
    Rpt,
    /// Impersonated API token for one location; `sa_user` is the service account's own user (who the
    /// token acts as on the regular host), `None` for tokens minted by `Emulator::issue_token`.
    Impersonated {
        location: String,
        sa_user: Option<String>,
    },
}

/// A bearer token.
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    /// The user the token stands for (the service account for SA tokens and RPTs).
    pub(crate) user: String,
    pub(crate) client_id: Option<String>,
    pub(crate) expires_at: Instant,
}

/// Emails are matched case-insensitively.
fn email_key(email: &str) -> String {
    email.trim().to_ascii_lowercase()
}

impl State {
    /// Creates a user, or sets the password of an existing one; returns its uuid.
    pub(crate) fn upsert_user(&mut self, email: &str, password: Option<SecretString>) -> String {
        if let Some(uuid) = self.emails.get(&email_key(email)).cloned() {
            if let Some(u) = self.users.get_mut(&uuid)
                && password.is_some()
            {
                u.password = password;
            }
            return uuid;
        }
        let uuid = uuid::Uuid::new_v4().to_string();
        self.emails.insert(email_key(email), uuid.clone());
        self.users.insert(
            uuid.clone(),
            User {
                email: email.trim().to_owned(),
                password,
            },
        );
        uuid
    }

    /// The uuid of the user with this email.
    pub(crate) fn user_uuid(&self, email: &str) -> Option<String> {
        self.emails.get(&email_key(email)).cloned()
    }

    /// The email of the user with this uuid.
    pub(crate) fn email_of(&self, uuid: &str) -> Option<String> {
        self.users.get(uuid).map(|u| u.email.clone())
    }

    /// The user whose email and password match.
    pub(crate) fn check_password(&self, email: &str, password: &str) -> Option<String> {
        let uuid = self.user_uuid(email)?;
        let user = self.users.get(&uuid)?;
        let stored = user.password.as_ref()?;
        (stored.expose_secret() == password).then_some(uuid)
    }

    /// Issues a random opaque bearer token.
    pub(crate) fn issue_token(
        &mut self,
        kind: TokenKind,
        user: &str,
        client_id: Option<&str>,
        lifetime: Duration,
        now: Instant,
    ) -> String {
        let bytes: [u8; 32] = rand::random();
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        self.tokens.insert(
            token.clone(),
            Token {
                kind,
                user: user.to_owned(),
                client_id: client_id.map(str::to_owned),
                expires_at: now + lifetime,
            },
        );
        token
    }

    /// A token that has not expired at `now`.
    pub(crate) fn live_token(&self, token: &str, now: Instant) -> Option<&Token> {
        self.tokens.get(token).filter(|t| t.expires_at > now)
    }
}
