//! The controller: keeps the Secret holding the source's current token, woken by its schedule and by
//! changes to the Secret.

use std::{future::Future, pin::pin, sync::Arc, time::Duration};

use futures::{StreamExt, stream::BoxStream};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::{
    Api, Client, Resource,
    api::{DeleteParams, ObjectMeta, PostParams, Preconditions},
    runtime::{
        WatchStreamExt,
        events::{Event, EventType, Recorder, Reporter},
        watcher,
    },
};
use secrecy::ExposeSecret;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::{
    Backoff, Config, Error, FailureReason, IssuedToken, Metrics, Result, Schedule, TokenSource,
    config::EVENT_REPORTER,
    schedule::Freshness,
    secret::{self, Assessment},
};

/// How often one pass re-reads and retries when its write conflicts with another writer.
const MAX_WRITE_ATTEMPTS: u32 = 5;
/// Kubernetes limits an Event note to 1 kB.
const MAX_NOTE: usize = 1000;

/// Keeps Secret `<namespace>/<secret_name>` holding the current token of a [`TokenSource`].
///
/// Build it with [`CsiTokenController::new`] and spawn [`CsiTokenController::run`]; run exactly one
/// per tenant cluster (on the leader), since two instances with separate token caches would keep
/// replacing each other's token.
pub struct CsiTokenController {
    config: Config,
    schedule: Schedule,
    backoff: Backoff,
    source: Arc<dyn TokenSource>,
    metrics: Metrics,
    client: Client,
    secrets: Api<Secret>,
    recorder: Recorder,
}

impl std::fmt::Debug for CsiTokenController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsiTokenController")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What one successful pass wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// Nothing: the Secret already held the token.
    Nothing,
    /// Created the Secret.
    Created,
    /// Updated the named data keys and/or `labels` in place.
    Updated(Vec<&'static str>),
    /// Deleted a Secret of ours that could not hold the token (`why`) and created it anew.
    Recreated(String),
}

/// What woke the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    Timer,
    SecretChanged,
    SecretDeleted,
    Relisted,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::Timer => "timer",
            Self::SecretChanged => "secret_changed",
            Self::SecretDeleted => "secret_deleted",
            Self::Relisted => "relisted",
        }
    }
}

/// What the loop remembers between passes.
#[derive(Default)]
struct State {
    /// Consecutive failed passes.
    failures: u32,
    /// The token the Secret was last seen or made to hold.
    known: Option<IssuedToken>,
    /// Whether we warned that tokens are too short-lived for the margin (reset by a token that is not).
    warned_short: bool,
    /// Whether the watcher listed the Secret since its last (re)start.
    listed_since_init: bool,
}

impl CsiTokenController {
    /// Checks `config` and prepares the controller; nothing is called until [`run`](Self::run).
    /// `source` should wrap the impersonation client the node controller uses (see
    /// [`ImpersonationSource`](crate::ImpersonationSource)); `metrics` are registered by the caller.
    pub fn new(
        client: Client,
        config: Config,
        source: Arc<dyn TokenSource>,
        metrics: Metrics,
    ) -> Result<Self> {
        config.validate()?;
        let secrets = Api::namespaced(client.clone(), &config.namespace);
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: EVENT_REPORTER.to_owned(),
                instance: config.reporter_instance.clone(),
            },
        );
        Ok(Self {
            schedule: config.schedule(),
            backoff: config.backoff(),
            config,
            source,
            metrics,
            client,
            secrets,
            recorder,
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs until `shutdown` completes: a pass at once, then on the schedule, after failures with
    /// backoff, and whenever the Secret is deleted or changed away from the token. Errors never end
    /// it; they are logged, counted and retried.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = pin!(shutdown);
        let mut events = self.watch();
        let mut state = State::default();
        let mut next = Instant::now();
        let mut last_pass: Option<Instant> = None;
        let mut trigger = Trigger::Timer;
        info!(
            namespace = %self.config.namespace,
            secret = %self.config.secret_name,
            refresh_interval_s = self.config.refresh_interval.as_secs_f64(),
            margin_s = self.config.margin.as_secs_f64(),
            propagation_s = self.config.propagation.as_secs_f64(),
            "CSI token controller started"
        );
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = tokio::time::sleep_until(next) => {}
                event = events.next() => {
                    match event {
                        Some(Ok(event)) => {
                            // A change pulls the next pass forward to now, but never closer than
                            // min_delay to the previous pass: a second writer fighting over the
                            // Secret cannot drive us into a hot loop.
                            if let Some(t) = self.wakes(&event, &mut state) {
                                let now = Instant::now();
                                let earliest = last_pass.map_or(now, |l| (l + self.schedule.min_delay).max(now));
                                if earliest < next {
                                    next = earliest;
                                    trigger = t;
                                }
                            }
                            continue;
                        }
                        Some(Err(e)) => {
                            warn!(namespace = %self.config.namespace, secret = %self.config.secret_name,
                                  error = %e, "watching the CSI token Secret failed; retrying");
                            continue;
                        }
                        None => {
                            warn!("the CSI token Secret watch ended; restarting it");
                            events = self.watch();
                            continue;
                        }
                    }
                }
            }
            let delay = tokio::select! {
                biased;
                () = &mut shutdown => break,
                delay = self.pass(&mut state, trigger) => delay,
            };
            let done = Instant::now();
            last_pass = Some(done);
            next = done + delay;
            trigger = Trigger::Timer;
        }
        info!(namespace = %self.config.namespace, secret = %self.config.secret_name,
              "CSI token controller stopped");
    }

    fn watch(&self) -> BoxStream<'static, std::result::Result<watcher::Event<Secret>, watcher::Error>> {
        let config = watcher::Config::default().fields(&format!("metadata.name={}", self.config.secret_name));
        watcher(self.secrets.clone(), config).default_backoff().boxed()
    }

    /// Whether a watch event calls for a pass now. Our own writes come back as events holding the
    /// token we know, and are ignored.
    fn wakes(&self, event: &watcher::Event<Secret>, state: &mut State) -> Option<Trigger> {
        let differs = |s: &Secret| match &state.known {
            Some(known) => secret::assess(s, known) != Assessment::UpToDate,
            None => true,
        };
        match event {
            watcher::Event::Init => {
                state.listed_since_init = false;
                None
            }
            watcher::Event::InitApply(s) => {
                state.listed_since_init = true;
                differs(s).then_some(Trigger::Relisted)
            }
            watcher::Event::InitDone => (!state.listed_since_init).then_some(Trigger::Relisted),
            watcher::Event::Apply(s) => differs(s).then_some(Trigger::SecretChanged),
            watcher::Event::Delete(_) => Some(Trigger::SecretDeleted),
        }
    }

    /// One pass; returns how long to wait before the next timer-driven one.
    async fn pass(&self, state: &mut State, trigger: Trigger) -> Duration {
        let ns = &self.config.namespace;
        let name = &self.config.secret_name;
        match self.refresh(state).await {
            Ok((token, written)) => {
                let now = Timestamp::now();
                if state.failures > 0 {
                    info!(namespace = %ns, secret = %name, after_failures = state.failures,
                          "CSI token refresh recovered");
                }
                state.failures = 0;
                // What readers see: the expiry rounded down to whole seconds.
                let stored = secret::stored_expires_at(token.expires_at);
                self.metrics.record_success(now);
                self.metrics.record_expiry(Some(stored), now);
                match self.schedule.freshness(Some(stored), now) {
                    Freshness::Due { left } if !state.warned_short => {
                        state.warned_short = true;
                        warn!(
                        namespace = %ns, secret = %name,
                        left_s = left.as_secs_f64(),
                        required_s = self.schedule.threshold().as_secs_f64(),
                        "the token source handed out a token with less lifetime left than margin + propagation: \
                         the configured margin exceeds what the token lifetime allows; the Secret is updated as \
                         soon as the source renews the token (warned once until a token with enough lifetime comes)"
                        );
                    }
                    Freshness::Fresh { .. } => state.warned_short = false,
                    _ => {}
                }
                let next = self
                    .schedule
                    .next_check(Some(stored), token.renew_at, now, rand::random());
                debug!(
                    namespace = %ns, secret = %name, trigger = trigger.as_str(), written = ?written,
                    expires_at = %stored, next_check_in_s = next.delay.as_secs_f64(), cause = ?next.cause,
                    "CSI token pass done"
                );
                state.known = Some(token);
                next.delay
            }
            Err(error) => {
                state.failures = state.failures.saturating_add(1);
                let reason = error.reason();
                self.metrics.record_failure(reason);
                // The stored token's expiry for the gauge (and the Secret for the Event). When even
                // reading fails, the last token known to be stored stands in.
                let now = Timestamp::now();
                let live = match self.secrets.get_opt(name).await {
                    Ok(live) => {
                        self.metrics
                            .record_expiry(live.as_ref().and_then(secret::stored_expiry), now);
                        live
                    }
                    Err(_) => {
                        let known = state
                            .known
                            .as_ref()
                            .map(|k| secret::stored_expires_at(k.expires_at));
                        self.metrics.record_expiry(known, now);
                        None
                    }
                };
                let delay = self.backoff.delay(state.failures, rand::random());
                if reason == FailureReason::NamespaceMissing || reason == FailureReason::ForeignSecret {
                    error!(namespace = %ns, secret = %name, reason = %reason, failures = state.failures,
                           retry_in_s = delay.as_secs_f64(), trigger = trigger.as_str(), "{error}");
                } else {
                    warn!(namespace = %ns, secret = %name, reason = %reason, failures = state.failures,
                          retry_in_s = delay.as_secs_f64(), trigger = trigger.as_str(),
                          "CSI token refresh failed, the Secret is left as it is: {error}");
                }
                if let Some(live) = &live {
                    self.publish_warning(live, reason, &error).await;
                }
                delay
            }
        }
    }

    /// Gets the source's token and makes the Secret hold it.
    async fn refresh(&self, state: &State) -> Result<(IssuedToken, Written)> {
        let token = self.source.token().await?;
        check_token(&token, Timestamp::now())?;
        let written = self.ensure(&token).await?;
        if written != Written::Nothing {
            self.metrics.record_write();
            let previous = state.known.as_ref().map(|k| k.expires_at);
            info!(
                namespace = %self.config.namespace, secret = %self.config.secret_name, written = ?written,
                user_email = %token.user_email, region = %token.region, expires_at = %token.expires_at,
                previous_expires_at = ?previous.map(|p| p.to_string()),
                "wrote the CSI token Secret"
            );
        }
        Ok((token, written))
    }

    /// Creates, updates or recreates the Secret so that it holds `token`; writes nothing when it does.
    async fn ensure(&self, token: &IssuedToken) -> Result<Written> {
        let ns = &self.config.namespace;
        let name = &self.config.secret_name;
        let mut recreated: Option<String> = None;
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let live = self
                .secrets
                .get_opt(name)
                .await
                .map_err(|e| Error::kube(format!("get Secret {ns}/{name}"), e))?;
            let Some(live) = live else {
                match self
                    .secrets
                    .create(&PostParams::default(), &secret::desired(ns, name, token))
                    .await
                {
                    Ok(_) => return Ok(recreated.map_or(Written::Created, Written::Recreated)),
                    Err(kube::Error::Api(s)) if s.is_already_exists() => continue,
                    Err(kube::Error::Api(s)) if s.is_not_found() => {
                        if !self.config.create_namespace {
                            return Err(Error::NamespaceMissing {
                                namespace: ns.clone(),
                            });
                        }
                        self.create_namespace().await?;
                        continue;
                    }
                    Err(e) => return Err(Error::kube(format!("create Secret {ns}/{name}"), e)),
                }
            };
            match secret::assess(&live, token) {
                Assessment::UpToDate => return Ok(Written::Nothing),
                Assessment::Outdated { changed } => {
                    match self
                        .secrets
                        .replace(name, &PostParams::default(), &secret::merged(&live, token))
                        .await
                    {
                        Ok(_) => return Ok(Written::Updated(changed)),
                        Err(kube::Error::Api(s)) if s.is_conflict() || s.is_not_found() => continue,
                        Err(e) => return Err(Error::kube(format!("update Secret {ns}/{name}"), e)),
                    }
                }
                Assessment::Unusable { why, ours: false } => {
                    return Err(Error::ForeignSecret {
                        namespace: ns.clone(),
                        name: name.clone(),
                        why,
                    });
                }
                Assessment::Unusable { why, ours: true } => {
                    warn!(namespace = %ns, secret = %name, why = %why,
                          "the CSI token Secret cannot hold the token; deleting and recreating it");
                    let params = DeleteParams {
                        preconditions: Some(Preconditions {
                            uid: live.metadata.uid.clone(),
                            resource_version: live.metadata.resource_version.clone(),
                        }),
                        ..DeleteParams::default()
                    };
                    match self.secrets.delete(name, &params).await {
                        Ok(_) => recreated = Some(why),
                        Err(kube::Error::Api(s)) if s.is_conflict() || s.is_not_found() => {}
                        Err(e) => return Err(Error::kube(format!("delete Secret {ns}/{name}"), e)),
                    }
                }
            }
        }
        Err(Error::Conflict {
            namespace: ns.clone(),
            name: name.clone(),
            attempts: MAX_WRITE_ATTEMPTS,
        })
    }

    async fn create_namespace(&self) -> Result<()> {
        let ns = &self.config.namespace;
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let object = Namespace {
            metadata: ObjectMeta {
                name: Some(ns.clone()),
                labels: Some(secret::labels()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        match namespaces.create(&PostParams::default(), &object).await {
            Ok(_) => {
                info!(namespace = %ns, "created the namespace of the CSI token Secret (--csi-token-create-namespace)");
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(()),
            Err(e) => Err(Error::kube(
                format!("create Namespace {ns} (--csi-token-create-namespace)"),
                e,
            )),
        }
    }

    async fn publish_warning(&self, live: &Secret, reason: FailureReason, error: &Error) {
        let mut note = error.to_string();
        if note.len() > MAX_NOTE {
            let mut cut = MAX_NOTE;
            while !note.is_char_boundary(cut) {
                cut -= 1;
            }
            note.truncate(cut);
        }
        let event = Event {
            type_: EventType::Warning,
            reason: reason.event_reason().to_owned(),
            note: Some(note),
            action: "RefreshToken".to_owned(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &live.object_ref(&())).await {
            warn!(namespace = %self.config.namespace, secret = %self.config.secret_name, error = %e,
                  "could not publish a Warning Event about the CSI token Secret");
        }
    }
}

/// Refuses tokens that must not be stored: empty, expired, or without region or user.
fn check_token(token: &IssuedToken, now: Timestamp) -> Result<()> {
    if token.token.expose_secret().trim().is_empty() {
        return Err(Error::InvalidToken("the token is empty".into()));
    }
    if token.expires_at <= now {
        return Err(Error::InvalidToken(format!(
            "the token expired at {}",
            token.expires_at
        )));
    }
    if token.region.trim().is_empty() {
        return Err(Error::InvalidToken("the region is empty".into()));
    }
    if token.user_email.trim().is_empty() {
        return Err(Error::InvalidToken("the user email is empty".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn token(value: &str, expires_in: i64) -> (IssuedToken, Timestamp) {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        (
            IssuedToken {
                token: SecretString::from(value),
                expires_at: Timestamp::from_second(1_700_000_000 + expires_in).unwrap(),
                renew_at: None,
                region: "zrh".into(),
                user_email: "tenant@example.com".into(),
            },
            now,
        )
    }

    #[test]
    fn unusable_tokens_are_refused_without_showing_them() {
        let (ok, now) = token("tok-secret-1", 900);
        check_token(&ok, now).unwrap();
        let (empty, now) = token("  ", 900);
        assert!(matches!(check_token(&empty, now), Err(Error::InvalidToken(_))));
        let (expired, now) = token("tok-secret-2", 0);
        let e = check_token(&expired, now).unwrap_err();
        assert_eq!(e.reason(), FailureReason::InvalidToken);
        assert!(!e.to_string().contains("tok-secret-2"), "{e}");
        let (mut no_region, now) = token("tok", 900);
        no_region.region.clear();
        assert!(check_token(&no_region, now).is_err());
    }
}
