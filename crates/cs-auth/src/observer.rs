//! Hooks that tell the embedding binary what happened, for metrics. No global state: the binary
//! passes an observer in and exports what it records (e.g. to Prometheus).

use std::{
    fmt,
    sync::atomic::{AtomicU64, Ordering},
};

use crate::Step;

/// How one HTTP request of the impersonation flow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestOutcome {
    /// HTTP 200 with a usable token.
    Success,
    /// An HTTP status other than 200.
    HttpError,
    /// HTTP 200 whose body held no usable token.
    InvalidResponse,
    /// No answer within the HTTP timeout.
    Timeout,
    /// A connection, DNS or TLS failure.
    Transport,
}

impl RequestOutcome {
    /// A stable label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::HttpError => "http_error",
            Self::InvalidResponse => "invalid_response",
            Self::Timeout => "timeout",
            Self::Transport => "transport",
        }
    }
}

/// How a request for an impersonated token was served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CacheLookup {
    /// A valid token was in the cache.
    Hit,
    /// This call ran the impersonation flow.
    Miss,
    /// Another caller was already running the flow for the same user and region; this call waited
    /// for and shared its result.
    Coalesced,
}

impl CacheLookup {
    /// A stable label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Coalesced => "coalesced",
        }
    }
}

/// The two paths of a [`FallbackProvider`](crate::FallbackProvider).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FallbackPath {
    /// The preferred provider (impersonation).
    Primary,
    /// The provider used while the primary fails (legacy credentials).
    Secondary,
}

impl FallbackPath {
    /// A stable label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Secondary => "secondary",
        }
    }
}

/// Receives events from the providers. Every method has an empty default body, so an observer
/// implements only what it exports. Methods are called inline and must be cheap.
pub trait AuthObserver: Send + Sync + fmt::Debug {
    /// One HTTP request of the impersonation flow finished (retries are counted one by one).
    fn token_request(&self, _step: Step, _outcome: RequestOutcome) {}
    /// An impersonated token was asked for.
    fn cache_lookup(&self, _lookup: CacheLookup) {}
    /// A [`FallbackProvider`](crate::FallbackProvider) served credentials from `path`.
    fn credentials_served(&self, _path: FallbackPath) {}
    /// A [`FallbackProvider`](crate::FallbackProvider) switched to `to`.
    fn fallback_transition(&self, _to: FallbackPath) {}
}

/// An observer that records nothing (the default).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl AuthObserver for NoopObserver {}

const OUTCOMES: [RequestOutcome; 5] = [
    RequestOutcome::Success,
    RequestOutcome::HttpError,
    RequestOutcome::InvalidResponse,
    RequestOutcome::Timeout,
    RequestOutcome::Transport,
];

fn outcome_index(outcome: RequestOutcome) -> usize {
    match outcome {
        RequestOutcome::Success => 0,
        RequestOutcome::HttpError => 1,
        RequestOutcome::InvalidResponse => 2,
        RequestOutcome::Timeout => 3,
        RequestOutcome::Transport => 4,
    }
}

fn step_index(step: Step) -> usize {
    usize::from(step.number() - 1)
}

/// An observer keeping plain atomic counters, read with [`AuthCounters::snapshot`]. Share one
/// `Arc<AuthCounters>` between the impersonation client and the fallback provider.
#[derive(Debug, Default)]
pub struct AuthCounters {
    requests: [[AtomicU64; 5]; 3],
    cache: [AtomicU64; 3],
    served: [AtomicU64; 2],
    transitions: [AtomicU64; 2],
}

fn path_index(path: FallbackPath) -> usize {
    match path {
        FallbackPath::Primary => 0,
        FallbackPath::Secondary => 1,
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl AuthObserver for AuthCounters {
    fn token_request(&self, step: Step, outcome: RequestOutcome) {
        bump(&self.requests[step_index(step)][outcome_index(outcome)]);
    }

    fn cache_lookup(&self, lookup: CacheLookup) {
        let i = match lookup {
            CacheLookup::Hit => 0,
            CacheLookup::Miss => 1,
            CacheLookup::Coalesced => 2,
        };
        bump(&self.cache[i]);
    }

    fn credentials_served(&self, path: FallbackPath) {
        bump(&self.served[path_index(path)]);
    }

    fn fallback_transition(&self, to: FallbackPath) {
        bump(&self.transitions[path_index(to)]);
    }
}

impl AuthCounters {
    /// The counters' current values.
    pub fn snapshot(&self) -> AuthCountersSnapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let outcomes = |step: Step| {
            let row = &self.requests[step_index(step)];
            OutcomeCounts {
                success: load(&row[0]),
                http_error: load(&row[1]),
                invalid_response: load(&row[2]),
                timeout: load(&row[3]),
                transport: load(&row[4]),
            }
        };
        AuthCountersSnapshot {
            service_account_token: outcomes(Step::ServiceAccountToken),
            rpt: outcomes(Step::Rpt),
            impersonate: outcomes(Step::Impersonate),
            cache_hits: load(&self.cache[0]),
            cache_misses: load(&self.cache[1]),
            cache_coalesced: load(&self.cache[2]),
            served_primary: load(&self.served[0]),
            served_secondary: load(&self.served[1]),
            transitions_to_primary: load(&self.transitions[0]),
            transitions_to_secondary: load(&self.transitions[1]),
        }
    }
}

/// Request counts of one step by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    /// HTTP 200 with a token.
    pub success: u64,
    /// Other HTTP statuses.
    pub http_error: u64,
    /// HTTP 200 without a usable token.
    pub invalid_response: u64,
    /// Timeouts.
    pub timeout: u64,
    /// Connection-level failures.
    pub transport: u64,
}

impl OutcomeCounts {
    /// All requests of the step.
    pub fn total(&self) -> u64 {
        self.success + self.http_error + self.invalid_response + self.timeout + self.transport
    }

    /// The count for one outcome.
    pub fn get(&self, outcome: RequestOutcome) -> u64 {
        match outcome {
            RequestOutcome::Success => self.success,
            RequestOutcome::HttpError => self.http_error,
            RequestOutcome::InvalidResponse => self.invalid_response,
            RequestOutcome::Timeout => self.timeout,
            RequestOutcome::Transport => self.transport,
        }
    }
}

/// A point-in-time copy of [`AuthCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthCountersSnapshot {
    /// Step 1 requests.
    pub service_account_token: OutcomeCounts,
    /// Step 2 requests.
    pub rpt: OutcomeCounts,
    /// Step 3 requests.
    pub impersonate: OutcomeCounts,
    /// Impersonated-token lookups answered from the cache.
    pub cache_hits: u64,
    /// Impersonated-token lookups that ran the flow.
    pub cache_misses: u64,
    /// Impersonated-token lookups that shared another caller's flow.
    pub cache_coalesced: u64,
    /// Credentials served by fallback providers from their primary.
    pub served_primary: u64,
    /// Credentials served by fallback providers from their secondary.
    pub served_secondary: u64,
    /// Switches back to the primary.
    pub transitions_to_primary: u64,
    /// Switches to the secondary.
    pub transitions_to_secondary: u64,
}

impl AuthCountersSnapshot {
    /// The request counts of one step.
    pub fn requests(&self, step: Step) -> OutcomeCounts {
        match step {
            Step::ServiceAccountToken => self.service_account_token,
            Step::Rpt => self.rpt,
            Step::Impersonate => self.impersonate,
        }
    }
}

/// All request outcomes, e.g. for pre-registering metric label sets.
pub fn all_outcomes() -> [RequestOutcome; 5] {
    OUTCOMES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_count_each_event_in_its_own_cell() {
        let c = AuthCounters::default();
        c.token_request(Step::Impersonate, RequestOutcome::Success);
        c.token_request(Step::Impersonate, RequestOutcome::Timeout);
        c.token_request(Step::Impersonate, RequestOutcome::Timeout);
        c.token_request(Step::Rpt, RequestOutcome::HttpError);
        c.cache_lookup(CacheLookup::Hit);
        c.cache_lookup(CacheLookup::Coalesced);
        c.credentials_served(FallbackPath::Secondary);
        c.fallback_transition(FallbackPath::Secondary);
        let s = c.snapshot();
        assert_eq!(
            s.impersonate,
            OutcomeCounts {
                success: 1,
                timeout: 2,
                ..Default::default()
            }
        );
        assert_eq!(s.requests(Step::Rpt).get(RequestOutcome::HttpError), 1);
        assert_eq!(s.service_account_token.total(), 0);
        assert_eq!((s.cache_hits, s.cache_misses, s.cache_coalesced), (1, 0, 1));
        assert_eq!((s.served_primary, s.served_secondary), (0, 1));
        assert_eq!((s.transitions_to_primary, s.transitions_to_secondary), (0, 1));
        for o in all_outcomes() {
            assert!(!o.as_str().is_empty());
        }
    }
}
