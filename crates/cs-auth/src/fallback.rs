//! A provider that prefers one source of credentials and falls back to another while it fails.

use std::{
    fmt,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use tracing::{debug, info, warn};

use crate::{
    AuthObserver, CredentialsProvider, Error, FallbackPath, Grant, NoopObserver, Result, SharedProvider,
};

/// How often a failed primary is tried again by default.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(30);

struct State {
    active: FallbackPath,
    /// When the primary was last tried while the secondary was active.
    last_probe: Option<Instant>,
}

/// Serves the primary provider's credentials (impersonation) and, while it fails, the secondary's
/// (legacy). Behaviour:
/// - primary fails -> the call is served by the secondary; one `warn!` for the switch;
/// - while on the secondary, the primary is tried again at most once per `probe_interval` (and also
///   whenever the secondary fails); its first success switches back with one `info!`;
/// - both fail -> [`Error::AllFailed`] with both errors;
/// - [`invalidate`](CredentialsProvider::invalidate) goes to the provider currently active.
pub struct FallbackProvider {
    primary: SharedProvider,
    secondary: SharedProvider,
    probe_interval: Duration,
    state: Mutex<State>,
    observer: Arc<dyn AuthObserver>,
}

impl fmt::Debug for FallbackProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackProvider")
            .field("primary", &self.primary)
            .field("secondary", &self.secondary)
            .field("probe_interval", &self.probe_interval)
            .field("active", &self.active())
            .finish()
    }
}

impl FallbackProvider {
    /// Prefers `primary`; uses `secondary` while it fails, probing the primary every `probe_interval`.
    pub fn new(primary: SharedProvider, secondary: SharedProvider, probe_interval: Duration) -> Self {
        Self {
            primary,
            secondary,
            probe_interval,
            state: Mutex::new(State {
                active: FallbackPath::Primary,
                last_probe: None,
            }),
            observer: Arc::new(NoopObserver),
        }
    }

    /// Reports served paths and transitions to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn AuthObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// The path currently serving credentials.
    pub fn active(&self) -> FallbackPath {
        self.lock().active
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is a single assignment.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether this call should try the primary; claims the probe slot when on the secondary.
    fn should_try_primary(&self) -> bool {
        let mut state = self.lock();
        match state.active {
            FallbackPath::Primary => true,
            FallbackPath::Secondary => {
                let now = Instant::now();
                let due = state
                    .last_probe
                    .is_none_or(|at| now.duration_since(at) >= self.probe_interval);
                if due {
                    state.last_probe = Some(now);
                }
                due
            }
        }
    }

    fn primary_succeeded(&self) {
        let mut state = self.lock();
        if state.active == FallbackPath::Secondary {
            state.active = FallbackPath::Primary;
            state.last_probe = None;
            drop(state);
            info!(
                primary = self.primary.name(),
                secondary = self.secondary.name(),
                "primary credentials work again; switched back from the secondary"
            );
            self.observer.fallback_transition(FallbackPath::Primary);
        }
    }

    fn primary_failed(&self, error: &Error) {
        let mut state = self.lock();
        state.last_probe = Some(Instant::now());
        if state.active == FallbackPath::Primary {
            state.active = FallbackPath::Secondary;
            drop(state);
            warn!(
                primary = self.primary.name(),
                secondary = self.secondary.name(),
                probe_interval_s = self.probe_interval.as_secs_f64(),
                %error,
                "primary credentials failed; serving the secondary until the primary works again"
            );
            self.observer.fallback_transition(FallbackPath::Secondary);
        } else {
            debug!(primary = self.primary.name(), %error, "primary credentials still failing");
        }
    }

    async fn try_primary(&self) -> Result<Grant> {
        let result = self.primary.credentials().await;
        match &result {
            Ok(_) => {
                self.primary_succeeded();
                self.observer.credentials_served(FallbackPath::Primary);
            }
            Err(error) => self.primary_failed(error),
        }
        result
    }
}

#[async_trait]
impl CredentialsProvider for FallbackProvider {
    async fn credentials(&self) -> Result<Grant> {
        let primary_error = if self.should_try_primary() {
            match self.try_primary().await {
                Ok(grant) => return Ok(grant),
                Err(error) => Some(error),
            }
        } else {
            None
        };
        let secondary_error = match self.secondary.credentials().await {
            Ok(grant) => {
                self.observer.credentials_served(FallbackPath::Secondary);
                return Ok(grant);
            }
            Err(error) => error,
        };
        // The secondary failed too: a primary that was not tried in this call gets a chance now.
        let primary_error = match primary_error {
            Some(error) => error,
            None => match self.try_primary().await {
                Ok(grant) => return Ok(grant),
                Err(error) => error,
            },
        };
        Err(Error::AllFailed {
            primary_name: self.primary.name(),
            primary: Box::new(primary_error),
            secondary_name: self.secondary.name(),
            secondary: Box::new(secondary_error),
        })
    }

    async fn invalidate(&self) {
        match self.active() {
            FallbackPath::Primary => self.primary.invalidate().await,
            FallbackPath::Secondary => self.secondary.invalidate().await,
        }
    }

    fn name(&self) -> &'static str {
        "fallback"
    }
}
