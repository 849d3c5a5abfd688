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
    /// When the primary last failed or a probe of it started.
    last_probe: Option<Instant>,
    /// A background probe of the primary is running.
    probing: bool,
}

/// What one call does.
enum Plan {
    /// Ask the primary and wait for it.
    Primary,
    /// Serve the secondary and probe the primary in the background.
    SecondaryAndProbe,
    /// Serve the secondary.
    Secondary,
}

/// Serves the primary provider's credentials (impersonation) and, while it fails, the secondary's
/// (legacy). Behaviour:
/// - primary fails -> the call is served by the secondary; one `warn!` for the switch;
/// - while on the secondary, the primary is probed at most once per `probe_interval` (counted from
///   the end of the last failed attempt) in a background task, so no caller waits for a slow primary;
///   the first successful probe switches back with one `info!`; the secondary keeps serving until then;
/// - the secondary fails while on it -> the primary is asked at once, in the call;
/// - both fail -> [`Error::AllFailed`] with both errors;
/// - [`invalidate`](CredentialsProvider::invalidate) goes to the provider currently active.
pub struct FallbackProvider {
    inner: Arc<Inner>,
}

struct Inner {
    primary: SharedProvider,
    secondary: SharedProvider,
    probe_interval: Duration,
    state: Mutex<State>,
    observer: Arc<dyn AuthObserver>,
}

impl fmt::Debug for FallbackProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackProvider")
            .field("primary", &self.inner.primary)
            .field("secondary", &self.inner.secondary)
            .field("probe_interval", &self.inner.probe_interval)
            .field("active", &self.active())
            .finish()
    }
}

impl FallbackProvider {
    /// Prefers `primary`; uses `secondary` while it fails, probing the primary every `probe_interval`.
    pub fn new(primary: SharedProvider, secondary: SharedProvider, probe_interval: Duration) -> Self {
        Self::build(primary, secondary, probe_interval, Arc::new(NoopObserver))
    }

    fn build(
        primary: SharedProvider,
        secondary: SharedProvider,
        probe_interval: Duration,
        observer: Arc<dyn AuthObserver>,
    ) -> Self {
        let state = State {
            active: FallbackPath::Primary,
            last_probe: None,
            probing: false,
        };
        Self {
            inner: Arc::new(Inner {
                primary,
                secondary,
                probe_interval,
                state: Mutex::new(state),
                observer,
            }),
        }
    }

    /// Reports served paths and transitions to `observer`.
    pub fn with_observer(self, observer: Arc<dyn AuthObserver>) -> Self {
        let inner = &self.inner;
        Self::build(
            Arc::clone(&inner.primary),
            Arc::clone(&inner.secondary),
            inner.probe_interval,
            observer,
        )
    }

    /// The path currently serving credentials.
    pub fn active(&self) -> FallbackPath {
        self.inner.lock().active
    }

    /// Starts a background probe of the primary; without a Tokio runtime it runs in the call.
    async fn probe(&self) {
        let inner = Arc::clone(&self.inner);
        let task = async move {
            // The grant itself is not needed: a working primary is asked again by the next call.
            let _ = inner.try_primary().await;
            inner.lock().probing = false;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(task)),
            Err(_) => task.await,
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is a plain assignment.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn plan(&self) -> Plan {
        let mut state = self.lock();
        match state.active {
            FallbackPath::Primary => Plan::Primary,
            FallbackPath::Secondary => {
                let now = Instant::now();
                let due = state
                    .last_probe
                    .is_none_or(|at| now.duration_since(at) >= self.probe_interval);
                if due && !state.probing {
                    state.probing = true;
                    state.last_probe = Some(now);
                    Plan::SecondaryAndProbe
                } else {
                    Plan::Secondary
                }
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
            Ok(_) => self.primary_succeeded(),
            Err(error) => self.primary_failed(error),
        }
        result
    }

    async fn serve_primary(&self) -> Result<Grant> {
        let result = self.try_primary().await;
        if result.is_ok() {
            self.observer.credentials_served(FallbackPath::Primary);
        }
        result
    }
}

#[async_trait]
impl CredentialsProvider for FallbackProvider {
    async fn credentials(&self) -> Result<Grant> {
        let inner = &self.inner;
        let primary_error = match inner.plan() {
            Plan::Primary => match inner.serve_primary().await {
                Ok(grant) => return Ok(grant),
                Err(error) => Some(error),
            },
            Plan::SecondaryAndProbe => {
                self.probe().await;
                None
            }
            Plan::Secondary => None,
        };
        let secondary_error = match inner.secondary.credentials().await {
            Ok(grant) => {
                inner.observer.credentials_served(FallbackPath::Secondary);
                return Ok(grant);
            }
            Err(error) => error,
        };
        // The secondary failed too: a primary that was not asked in this call gets a chance now.
        let primary_error = match primary_error {
            Some(error) => error,
            None => match inner.serve_primary().await {
                Ok(grant) => return Ok(grant),
                Err(error) => error,
            },
        };
        Err(Error::AllFailed {
            primary_name: inner.primary.name(),
            primary: Box::new(primary_error),
            secondary_name: inner.secondary.name(),
            secondary: Box::new(secondary_error),
        })
    }

    async fn invalidate(&self) {
        match self.active() {
            FallbackPath::Primary => self.inner.primary.invalidate().await,
            FallbackPath::Secondary => self.inner.secondary.invalidate().await,
        }
    }

    fn name(&self) -> &'static str {
        "fallback"
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io,
        sync::atomic::{AtomicBool, AtomicU32, Ordering},
    };

    use secrecy::{ExposeSecret, SecretString};

    use super::*;
    use crate::{ApiHost, AuthCounters, Credentials};

    #[derive(Debug)]
    struct Fake {
        name: &'static str,
        host: ApiHost,
        failing: AtomicBool,
        calls: AtomicU32,
        invalidations: AtomicU32,
    }

    impl Fake {
        fn new(name: &'static str, host: ApiHost) -> Arc<Self> {
            Arc::new(Self {
                name,
                host,
                failing: AtomicBool::new(false),
                calls: AtomicU32::new(0),
                invalidations: AtomicU32::new(0),
            })
        }
        fn fail(&self, failing: bool) {
            self.failing.store(failing, Ordering::SeqCst);
        }
        fn calls(&self) -> u32 {
            self.calls.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl CredentialsProvider for Fake {
        async fn credentials(&self) -> Result<Grant> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.failing.load(Ordering::SeqCst) {
                return Err(Error::Unavailable {
                    provider: self.name,
                    reason: format!("{} is down", self.name),
                });
            }
            let token = SecretString::from(format!("token-of-{}", self.name));
            Ok(Grant {
                credentials: Credentials::Bearer { token },
                host: self.host,
            })
        }
        async fn invalidate(&self) {
            self.invalidations.fetch_add(1, Ordering::SeqCst);
        }
        fn name(&self) -> &'static str {
            self.name
        }
    }

    fn token_of(grant: &Grant) -> String {
        match &grant.credentials {
            Credentials::Bearer { token } => token.expose_secret().to_owned(),
            Credentials::Basic { username, .. } => username.clone(),
        }
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    fn capture_logs() -> (Buffer, tracing::subscriber::DefaultGuard) {
        // tracing caches per-callsite interest; while only one dispatcher is registered it asks just the
        // registering thread's default, so a parallel test without capture could switch a callsite off
        // for everyone. A second, permanent dispatcher makes tracing consult all live ones.
        static KEEP_REBUILDING: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
        KEEP_REBUILDING.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (buffer, tracing::subscriber::set_default(subscriber))
    }

    fn setup(probe: Duration) -> (Arc<Fake>, Arc<Fake>, FallbackProvider, Arc<AuthCounters>) {
        let primary = Fake::new("impersonation", ApiHost::Direct);
        let secondary = Fake::new("legacy", ApiHost::Regular);
        let counters = Arc::new(AuthCounters::default());
        let fallback =
            FallbackProvider::new(primary.clone(), secondary.clone(), probe).with_observer(counters.clone());
        (primary, secondary, fallback, counters)
    }

    #[tokio::test]
    async fn healthy_primary_serves_everything() {
        let (primary, secondary, fallback, counters) = setup(Duration::from_secs(30));
        for _ in 0..3 {
            let grant = fallback.credentials().await.unwrap();
            assert_eq!(
                (token_of(&grant).as_str(), grant.host),
                ("token-of-impersonation", ApiHost::Direct)
            );
        }
        assert_eq!((primary.calls(), secondary.calls()), (3, 0));
        let s = counters.snapshot();
        assert_eq!(
            (s.served_primary, s.served_secondary, s.transitions_to_secondary),
            (3, 0, 0)
        );
        assert_eq!(fallback.active(), FallbackPath::Primary);
    }

    /// Lets background probes run (they are spawned on the test's current-thread runtime).
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    #[tokio::test]
    async fn switches_once_probes_in_background_by_interval_and_returns() {
        let (logs, _guard) = capture_logs();
        let probe = Duration::from_millis(80);
        let (primary, secondary, fallback, counters) = setup(probe);
        primary.fail(true);

        // Failure: served by the secondary, primary tried once, then left alone within the interval.
        for _ in 0..5 {
            let grant = fallback.credentials().await.unwrap();
            assert_eq!(
                (token_of(&grant).as_str(), grant.host),
                ("token-of-legacy", ApiHost::Regular)
            );
        }
        assert_eq!((primary.calls(), secondary.calls()), (1, 5));
        assert_eq!(fallback.active(), FallbackPath::Secondary);

        // After the interval one background probe happens; still failing: no second warning.
        tokio::time::sleep(probe + Duration::from_millis(20)).await;
        assert_eq!(
            token_of(&fallback.credentials().await.unwrap()),
            "token-of-legacy"
        );
        settle().await;
        assert_eq!(
            token_of(&fallback.credentials().await.unwrap()),
            "token-of-legacy"
        );
        settle().await;
        assert_eq!(primary.calls(), 2, "one probe per interval");

        // Recovery is noticed at the next probe; the probing call itself is still served by the secondary.
        primary.fail(false);
        assert_eq!(
            token_of(&fallback.credentials().await.unwrap()),
            "token-of-legacy"
        );
        settle().await;
        assert_eq!(primary.calls(), 2, "still inside the probe interval");
        tokio::time::sleep(probe).await;
        assert_eq!(
            token_of(&fallback.credentials().await.unwrap()),
            "token-of-legacy"
        );
        settle().await;
        assert_eq!(fallback.active(), FallbackPath::Primary);
        let grant = fallback.credentials().await.unwrap();
        assert_eq!(
            (token_of(&grant).as_str(), grant.host),
            ("token-of-impersonation", ApiHost::Direct)
        );

        let text = logs.text();
        assert_eq!(text.matches(" WARN ").count(), 1, "{text}");
        assert_eq!(
            text.matches("switched back from the secondary").count(),
            1,
            "{text}"
        );
        assert!(
            text.contains("impersonation is down"),
            "the warning carries the primary's error: {text}"
        );
        let s = counters.snapshot();
        assert_eq!((s.transitions_to_secondary, s.transitions_to_primary), (1, 1));
        assert_eq!((s.served_primary, s.served_secondary), (1, 9));
    }

    #[tokio::test]
    async fn a_slow_probe_does_not_delay_callers() {
        #[derive(Debug)]
        struct Slow;
        #[async_trait]
        impl CredentialsProvider for Slow {
            async fn credentials(&self) -> Result<Grant> {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Err(Error::Unavailable {
                    provider: "slow",
                    reason: "timed out".into(),
                })
            }
            async fn invalidate(&self) {}
            fn name(&self) -> &'static str {
                "slow"
            }
        }
        let secondary = Fake::new("legacy", ApiHost::Regular);
        let fallback = FallbackProvider::new(Arc::new(Slow), secondary.clone(), Duration::ZERO);
        // Force the secondary path without waiting for the slow primary.
        fallback.inner.primary_failed(&Error::Config("test".into()));
        let started = std::time::Instant::now();
        for _ in 0..3 {
            assert_eq!(
                token_of(&fallback.credentials().await.unwrap()),
                "token-of-legacy"
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "probes ran in the background"
        );
        assert!(
            fallback.inner.lock().probing,
            "one probe is still running, no second one was started"
        );
    }

    #[tokio::test]
    async fn both_failing_reports_both() {
        let (primary, secondary, fallback, _) = setup(Duration::from_secs(30));
        primary.fail(true);
        secondary.fail(true);
        let e = fallback.credentials().await.unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::AllFailed { .. }));
        assert!(
            text.contains("impersonation is down") && text.contains("legacy is down"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn failing_secondary_triggers_an_early_probe() {
        let (primary, secondary, fallback, _) = setup(Duration::from_secs(3600));
        primary.fail(true);
        fallback.credentials().await.unwrap();
        primary.fail(false);
        secondary.fail(true);
        let grant = fallback.credentials().await.unwrap();
        assert_eq!(token_of(&grant), "token-of-impersonation");
        assert_eq!(fallback.active(), FallbackPath::Primary);
    }

    #[tokio::test]
    async fn invalidate_goes_to_the_active_path() {
        let (primary, secondary, fallback, _) = setup(Duration::from_secs(30));
        fallback.invalidate().await;
        primary.fail(true);
        fallback.credentials().await.unwrap();
        fallback.invalidate().await;
        fallback.invalidate().await;
        assert_eq!(primary.invalidations.load(Ordering::SeqCst), 1);
        assert_eq!(secondary.invalidations.load(Ordering::SeqCst), 2);
        assert_eq!(fallback.name(), "fallback");
        let debug = format!("{fallback:?}");
        assert!(debug.contains("Secondary"), "{debug}");
    }
}
