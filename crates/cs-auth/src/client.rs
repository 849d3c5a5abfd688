//! The impersonation client: the three-step flow plus the per-(user, region) token cache.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use jiff::Timestamp;
use moka::{Expiry, future::Cache};
use secrecy::SecretString;
use tracing::{info, warn};
use url::Url;

use crate::{
    AuthObserver, ImpersonatedProvider, ImpersonationConfig, NoopObserver, Result, RetryPolicy, Step,
    endpoints::{ImpersonationTemplate, token_url, validate_email},
    lifetime::refresh_after,
    observer::CacheLookup,
    retry::with_retries,
    service::ServiceTokenCache,
    wire::{Issued, Wire},
};

/// An impersonated token with its timing. The token prints as `[REDACTED]` in `Debug` output.
#[derive(Clone)]
pub struct ImpersonatedToken {
    /// The bearer token; valid as the user only on the `direct.{region}` API host.
    pub token: SecretString,
    /// The impersonated user's email.
    pub user_email: String,
    /// The region whose direct host issued it.
    pub region: String,
    /// When the impersonation request was sent (a slightly early, hence safe, issue time).
    pub issued_at: Timestamp,
    /// `issued_at + lifetime`: after this the API refuses the token.
    pub expires_at: Timestamp,
    /// When the cache stops handing this token out and impersonates again
    /// (`issued_at + min(lifetime - buffer, lifetime * 2/3)`).
    pub refresh_at: Timestamp,
    /// The lifetime the endpoint reported (`expires_in`), or 15 min when it reported none.
    pub lifetime: Duration,
}

impl fmt::Debug for ImpersonatedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImpersonatedToken")
            .field("token", &"[REDACTED]")
            .field("user_email", &self.user_email)
            .field("region", &self.region)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .field("refresh_at", &self.refresh_at)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// Cache key: (user email, region).
type Key = (String, String);

/// A cached token and the monotonic instant at which the cache drops it.
#[derive(Clone)]
struct CachedToken {
    token: Arc<ImpersonatedToken>,
    drop_at: Instant,
}

/// Per-entry expiry: each token lives until its own refresh point.
struct UntilRefresh;

impl Expiry<Key, CachedToken> for UntilRefresh {
    fn expire_after_create(&self, _key: &Key, value: &CachedToken, created_at: Instant) -> Option<Duration> {
        Some(value.drop_at.saturating_duration_since(created_at))
    }

    fn expire_after_update(
        &self,
        _key: &Key,
        value: &CachedToken,
        updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.drop_at.saturating_duration_since(updated_at))
    }
}

/// Obtains impersonated tokens through Keycloak and the service-provider endpoint, and caches them per
/// (user email, region).
///
/// Cheap to clone: clones share the HTTP client, the service-account token, the RPT and the token
/// cache, so every component of a process should use clones of one client (one impersonation per
/// user and region per token lifetime for all of them together).
#[derive(Clone)]
pub struct ImpersonationClient {
    inner: Arc<Inner>,
}

struct Inner {
    oauth_url: String,
    client_id: String,
    template: ImpersonationTemplate,
    wire: Wire,
    service: ServiceTokenCache,
    retry: RetryPolicy,
    buffer: Duration,
    cache: Cache<Key, CachedToken>,
    observer: Arc<dyn AuthObserver>,
}

impl fmt::Debug for ImpersonationClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImpersonationClient")
            .field("oauth_url", &self.inner.oauth_url)
            .field("client_id", &self.inner.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("impersonation_url", &self.inner.template.as_str())
            .field("expiry_buffer", &self.inner.buffer)
            .finish_non_exhaustive()
    }
}

impl ImpersonationClient {
    /// Builds a client; every setting is checked and a bad one is named in the error.
    pub fn new(config: ImpersonationConfig) -> Result<Self> {
        Self::with_observer(config, Arc::new(NoopObserver))
    }

    /// Builds a client that reports requests and cache lookups to `observer`.
    pub fn with_observer(config: ImpersonationConfig, observer: Arc<dyn AuthObserver>) -> Result<Self> {
        config.check_scalars()?;
        let token_url = token_url(&config.oauth_url)?;
        let template = ImpersonationTemplate::parse(&config.impersonation_url)?;
        let wire = Wire::new(
            token_url,
            config.timeout,
            config.connect_timeout,
            Arc::clone(&observer),
        )?;
        let service = ServiceTokenCache::new(
            config.client_id.trim().to_owned(),
            config.client_secret,
            config.retry.clone(),
            config.expiry_buffer,
        );
        let cache = Cache::builder()
            .max_capacity(config.max_cached_tokens)
            .expire_after(UntilRefresh)
            .build();
        Ok(Self {
            inner: Arc::new(Inner {
                oauth_url: config.oauth_url,
                client_id: config.client_id,
                template,
                wire,
                service,
                retry: config.retry,
                buffer: config.expiry_buffer,
                cache,
                observer,
            }),
        })
    }

    /// A token acting as `user_email` on the direct host of `region`: from the cache while it is
    /// before the token's refresh point, otherwise from the three-step flow. Concurrent callers for
    /// the same (user, region) share one flow; failures are not cached.
    pub async fn token(&self, user_email: &str, region: &str) -> Result<ImpersonatedToken> {
        let email = user_email.trim();
        validate_email(email)?;
        let endpoint = self.inner.template.endpoint(region)?;
        let key: Key = (email.to_owned(), region.to_owned());
        if let Some(hit) = self.inner.cache.get(&key).await {
            self.inner.observer.cache_lookup(CacheLookup::Hit);
            return Ok(hit.token.as_ref().clone());
        }
        let ran_flow = AtomicBool::new(false);
        let result = self
            .inner
            .cache
            .try_get_with(key, async {
                ran_flow.store(true, Ordering::Relaxed);
                self.inner.fetch(email, region, &endpoint).await
            })
            .await;
        let lookup = if ran_flow.load(Ordering::Relaxed) {
            CacheLookup::Miss
        } else {
            CacheLookup::Coalesced
        };
        self.inner.observer.cache_lookup(lookup);
        result
            .map(|cached| cached.token.as_ref().clone())
            .map_err(|error| error.as_ref().clone())
    }

    /// A provider of `user_email`'s credentials in `region`, sharing this client's cache.
    pub fn provider(&self, user_email: &str, region: &str) -> Result<ImpersonatedProvider> {
        ImpersonatedProvider::new(self.clone(), user_email, region)
    }

    /// Drops the cached token of one user and region (e.g. after the API answered 401 to it).
    pub async fn invalidate(&self, user_email: &str, region: &str) {
        let key: Key = (user_email.trim().to_owned(), region.to_owned());
        self.inner.cache.invalidate(&key).await;
    }

    /// Drops the cached service-account token and RPT; user tokens stay.
    pub async fn invalidate_service_tokens(&self) {
        self.inner.service.clear().await;
    }

    /// Drops every cached token: all users' tokens, the service-account token and the RPT.
    pub async fn clear(&self) {
        self.inner.cache.invalidate_all();
        self.inner.service.clear().await;
    }

    /// The impersonation endpoint used for `region`.
    pub fn impersonation_endpoint(&self, region: &str) -> Result<Url> {
        self.inner.template.endpoint(region)
    }

    /// The Keycloak token endpoint used for steps 1 and 2.
    pub fn token_endpoint(&self) -> &Url {
        self.inner.wire.token_url()
    }
}

impl Inner {
    /// The three-step flow for one user and region. When step 3 refuses (401) tokens that came from
    /// the cache, they are dropped and the whole flow runs once more.
    async fn fetch(&self, email: &str, region: &str, endpoint: &Url) -> Result<CachedToken> {
        let mut may_rerun = true;
        loop {
            let service = self.service.get(&self.wire).await?;
            let attempt = with_retries(&self.retry, Step::Impersonate, || {
                self.wire.impersonate(endpoint, email, &service.sa, &service.rpt)
            })
            .await;
            match attempt {
                Ok(issued) => return Ok(self.cached(issued, email, region)),
                Err(error) if error.is_unauthorized() && service.sa_reused && may_rerun => {
                    warn!(
                        user_email = email,
                        region,
                        %error,
                        "the cached service-account token was refused; running the whole flow once more"
                    );
                    self.service.discard(service.generation).await;
                    may_rerun = false;
                }
                Err(error) => {
                    warn!(user_email = email, region, %error, "impersonation failed");
                    return Err(error);
                }
            }
        }
    }

    fn cached(&self, issued: Issued, email: &str, region: &str) -> CachedToken {
        let keep = refresh_after(issued.lifetime, self.buffer);
        let at = |d: Duration| issued.sent_at_wall.checked_add(d).unwrap_or(Timestamp::MAX);
        let token = ImpersonatedToken {
            token: issued.token,
            user_email: email.to_owned(),
            region: region.to_owned(),
            issued_at: issued.sent_at_wall,
            expires_at: at(issued.lifetime),
            refresh_at: at(keep),
            lifetime: issued.lifetime,
        };
        info!(
            user_email = email,
            region,
            expires_at = %token.expires_at,
            refresh_at = %token.refresh_at,
            lifetime_s = issued.lifetime.as_secs(),
            "obtained an impersonated token"
        );
        CachedToken {
            token: Arc::new(token),
            drop_at: issued.sent_at + keep,
        }
    }
}
