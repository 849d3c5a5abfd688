//! The service-account token (step 1) and the RPT (step 2): shared by every user and region, cached
//! in one slot until their refresh point, fetched by one caller at a time.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use tokio::sync::Mutex;
use tracing::{debug, warn};

use crate::{
    Result, RetryPolicy, Step,
    lifetime::refresh_after,
    retry::with_retries,
    wire::{Issued, Wire},
};

/// The tokens step 3 needs.
pub(crate) struct ServiceTokens {
    /// The service-account access token (step 1), sent as `subject_token`.
    pub(crate) sa: SecretString,
    /// The RPT (step 2), sent as the bearer token.
    pub(crate) rpt: SecretString,
    /// Which service-account token this is; see [`ServiceTokenCache::discard`].
    pub(crate) generation: u64,
    /// Whether the service-account token came from the cache (and so may have been revoked since).
    pub(crate) sa_reused: bool,
}

struct Held {
    token: SecretString,
    refresh_at: Instant,
}

impl Held {
    fn new(issued: Issued, buffer: Duration) -> Self {
        let refresh_at = issued.sent_at + refresh_after(issued.lifetime, buffer);
        Self {
            token: issued.token,
            refresh_at,
        }
    }

    fn usable(&self, now: Instant) -> bool {
        now < self.refresh_at
    }
}

#[derive(Default)]
struct Slot {
    sa: Option<Held>,
    rpt: Option<Held>,
    generation: u64,
}

/// Cache of the service-account token and the RPT.
pub(crate) struct ServiceTokenCache {
    client_id: String,
    client_secret: SecretString,
    retry: RetryPolicy,
    buffer: Duration,
    slot: Mutex<Slot>,
}

impl ServiceTokenCache {
    pub(crate) fn new(
        client_id: String,
        client_secret: SecretString,
        retry: RetryPolicy,
        buffer: Duration,
    ) -> Self {
        Self {
            client_id,
            client_secret,
            retry,
            buffer,
            slot: Mutex::new(Slot::default()),
        }
    }

    /// The current tokens, fetching what is missing or due. Holding the slot's lock while fetching
    /// makes concurrent callers share one fetch. When step 2 refuses a cached service-account token
    /// with 401 (it may have been revoked early), steps 1 and 2 run once more.
    pub(crate) async fn get(&self, wire: &Wire) -> Result<ServiceTokens> {
        let mut slot = self.slot.lock().await;
        let mut may_refetch = true;
        loop {
            let now = Instant::now();
            let cached_sa = slot
                .sa
                .as_ref()
                .filter(|held| held.usable(now))
                .map(|held| held.token.clone());
            let sa_reused = cached_sa.is_some();
            let sa = match cached_sa {
                Some(sa) => sa,
                None => {
                    slot.rpt = None;
                    let issued = with_retries(&self.retry, Step::ServiceAccountToken, || {
                        wire.service_account_token(&self.client_id, &self.client_secret)
                    })
                    .await?;
                    debug!(
                        lifetime_s = issued.lifetime.as_secs(),
                        "obtained a service-account token"
                    );
                    let sa = issued.token.clone();
                    slot.sa = Some(Held::new(issued, self.buffer));
                    slot.generation += 1;
                    sa
                }
            };
            if let Some(rpt) = slot.rpt.as_ref().filter(|held| held.usable(now)) {
                return Ok(ServiceTokens {
                    sa,
                    rpt: rpt.token.clone(),
                    generation: slot.generation,
                    sa_reused,
                });
            }
            match with_retries(&self.retry, Step::Rpt, || wire.rpt(&sa)).await {
                Ok(issued) => {
                    debug!(lifetime_s = issued.lifetime.as_secs(), "obtained an RPT");
                    let rpt = issued.token.clone();
                    slot.rpt = Some(Held::new(issued, self.buffer));
                    return Ok(ServiceTokens {
                        sa,
                        rpt,
                        generation: slot.generation,
                        sa_reused,
                    });
                }
                Err(error) if error.is_unauthorized() && sa_reused && may_refetch => {
                    warn!(%error, "the cached service-account token was refused; fetching a new one once");
                    slot.sa = None;
                    may_refetch = false;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Drops the tokens if they are still those of `generation` (a newer pair fetched meanwhile by
    /// another caller is kept).
    pub(crate) async fn discard(&self, generation: u64) {
        let mut slot = self.slot.lock().await;
        if slot.generation == generation {
            slot.sa = None;
            slot.rpt = None;
        }
    }

    /// Drops the tokens unconditionally.
    pub(crate) async fn clear(&self) {
        let mut slot = self.slot.lock().await;
        slot.sa = None;
        slot.rpt = None;
    }
}
