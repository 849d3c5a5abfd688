//! The provider of one user's impersonated credentials in one region.

use async_trait::async_trait;

use crate::{
    ApiHost, Credentials, CredentialsProvider, Grant, ImpersonatedToken, ImpersonationClient, Result,
    endpoints::{validate_email, validate_region},
};

/// Bearer credentials acting as one user on the `direct.{region}` host, from a shared
/// [`ImpersonationClient`] (and so from its cache).
#[derive(Clone, Debug)]
pub struct ImpersonatedProvider {
    client: ImpersonationClient,
    user_email: String,
    region: String,
}

impl ImpersonatedProvider {
    /// Checks the email and region up front so a typo fails at start-up, not on the first request.
    pub fn new(client: ImpersonationClient, user_email: &str, region: &str) -> Result<Self> {
        let user_email = user_email.trim();
        validate_email(user_email)?;
        validate_region(region)?;
        Ok(Self {
            client,
            user_email: user_email.to_owned(),
            region: region.to_owned(),
        })
    }

    /// The impersonated user.
    pub fn user_email(&self) -> &str {
        &self.user_email
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The shared client.
    pub fn client(&self) -> &ImpersonationClient {
        &self.client
    }

    /// The current token with its expiry (for writing it elsewhere, e.g. into a Secret).
    pub async fn token(&self) -> Result<ImpersonatedToken> {
        self.client.token(&self.user_email, &self.region).await
    }
}

#[async_trait]
impl CredentialsProvider for ImpersonatedProvider {
    async fn credentials(&self) -> Result<Grant> {
        let token = self.token().await?;
        Ok(Grant {
            credentials: Credentials::Bearer { token: token.token },
            host: ApiHost::Direct,
        })
    }

    async fn invalidate(&self) {
        self.client.invalidate(&self.user_email, &self.region).await;
    }

    fn name(&self) -> &'static str {
        "impersonation"
    }
}
