//! A hook that sees every HTTP attempt, so binaries can feed metrics without globals in this crate.

use std::{
    collections::BTreeMap,
    fmt,
    sync::{Mutex, PoisonError},
    time::Duration,
};

/// How one HTTP attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// A response with this status code arrived (any code, success or not).
    Status(u16),
    /// The per-request timeout elapsed.
    Timeout,
    /// A connection-level error (refused, reset, TLS, body read).
    Transport,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(code) => write!(f, "{code}"),
            Self::Timeout => f.write_str("timeout"),
            Self::Transport => f.write_str("transport"),
        }
    }
}

/// Sees every HTTP attempt (retries included). Must be cheap and must not block.
///
/// `route` is a static template such as `servers/{uuid}/` or `servers/{uuid}/action/?do=start`, never a
/// concrete uuid or query value, so it is safe as a metric label.
pub trait RequestObserver: Send + Sync {
    /// Called once per attempt after it finished.
    fn observe(&self, method: &'static str, route: &'static str, outcome: Outcome, elapsed: Duration);
}

/// The default observer: does nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl RequestObserver for NoopObserver {
    fn observe(&self, _: &'static str, _: &'static str, _: Outcome, _: Duration) {}
}

/// Key of a [`CountingObserver`] count: method, route template and outcome.
pub type CountKey = (&'static str, &'static str, Outcome);

/// An observer that counts attempts per method, route and outcome (useful in tests and simple setups).
#[derive(Debug, Default)]
pub struct CountingObserver {
    counts: Mutex<BTreeMap<CountKey, u64>>,
}

impl CountingObserver {
    /// An observer with no counts.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of attempts seen for one method, route and outcome.
    pub fn count(&self, method: &str, route: &str, outcome: Outcome) -> u64 {
        self.snapshot()
            .iter()
            .filter(|((m, r, o), _)| *m == method && *r == route && *o == outcome)
            .map(|(_, n)| *n)
            .sum()
    }

    /// The number of attempts seen for one method and route, any outcome.
    pub fn attempts(&self, method: &str, route: &str) -> u64 {
        self.snapshot()
            .iter()
            .filter(|((m, r, _), _)| *m == method && *r == route)
            .map(|(_, n)| *n)
            .sum()
    }

    /// All counts.
    pub fn snapshot(&self) -> BTreeMap<CountKey, u64> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl RequestObserver for CountingObserver {
    fn observe(&self, method: &'static str, route: &'static str, outcome: Outcome, _: Duration) {
        *self
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((method, route, outcome))
            .or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_route_and_outcome() {
        let o = CountingObserver::new();
        o.observe("GET", "servers/{uuid}/", Outcome::Status(200), Duration::ZERO);
        o.observe("GET", "servers/{uuid}/", Outcome::Status(200), Duration::ZERO);
        o.observe("GET", "servers/{uuid}/", Outcome::Timeout, Duration::ZERO);
        o.observe("PUT", "servers/{uuid}/", Outcome::Status(503), Duration::ZERO);
        assert_eq!(o.count("GET", "servers/{uuid}/", Outcome::Status(200)), 2);
        assert_eq!(o.attempts("GET", "servers/{uuid}/"), 3);
        assert_eq!(o.count("PUT", "servers/{uuid}/", Outcome::Status(503)), 1);
        assert_eq!(Outcome::Transport.to_string(), "transport");
        assert_eq!(Outcome::Status(204).to_string(), "204");
    }
}
