//! The lifecycle of initialized Nodes: the shutdown taint, and removal of Nodes whose VM is gone.
//!
//! A Node is deleted only when its providerID names a server that a direct `GET /servers/{uuid}/`
//! answered 404 `notexist` for, on two checks at least `grace` apart, with no successful lookup in
//! between. Every other outcome (401, 403, 5xx, timeouts, a missing providerID, a list that lacks the
//! server) keeps the Node.

use std::time::{Duration, Instant};

use crate::{PowerState, ServerFacts};

/// What looking up a Node's server gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The server exists.
    Found(ServerFacts),
    /// A direct GET of the server's UUID answered 404 with `error_type` `notexist`.
    ConfirmedNotFound,
    /// The lookup failed (any other error) or was not possible: nothing can be concluded.
    Failed,
}

/// The memory of a Node between lifecycle passes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GoneState {
    /// When the server was first confirmed not found, since the last time it was found.
    pub first_not_found: Option<Instant>,
}

/// Inputs of one lifecycle decision.
#[derive(Debug, Clone)]
pub struct LifecycleInput<'a> {
    /// The Node's `Ready` condition is `True`.
    pub ready: bool,
    /// The Node carries the shutdown taint.
    pub has_shutdown_taint: bool,
    /// The Node has one of our providerIDs (only those can ever be deleted).
    pub has_provider_id: bool,
    /// What the server lookup gave (ignored for Ready nodes).
    pub lookup: &'a Lookup,
    /// What earlier passes remembered.
    pub state: GoneState,
    /// Now.
    pub now: Instant,
    /// Minimum time between the two not-found checks.
    pub grace: Duration,
    /// `false` under `--disable-node-deletion`.
    pub deletion_enabled: bool,
}

/// What to do with the Node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleDecision {
    /// Nothing to change.
    Keep,
    /// Add `node.cloudprovider.kubernetes.io/shutdown:NoSchedule`.
    AddShutdownTaint,
    /// Remove the shutdown taint.
    RemoveShutdownTaint,
    /// The server was confirmed not found; check again once the grace period has passed.
    AwaitSecondCheck {
        /// When it was first confirmed not found.
        since: Instant,
    },
    /// Confirmed gone twice, `grace` apart: delete the Node.
    Delete,
    /// Confirmed gone, but deletion is disabled: keep the Node and say so.
    GoneButDeletionDisabled,
}

impl LifecycleDecision {
    /// The state to remember for the next pass.
    pub fn next_state(self, previous: GoneState, lookup: &Lookup) -> GoneState {
        match (self, lookup) {
            (Self::AwaitSecondCheck { since }, _) => GoneState {
                first_not_found: Some(since),
            },
            (Self::Delete | Self::GoneButDeletionDisabled, _) => previous,
            (_, Lookup::Found(_)) => GoneState::default(),
            (_, _) => previous,
        }
    }
}

/// Decides what the lifecycle controller does with one Node.
pub fn decide_lifecycle(input: &LifecycleInput<'_>) -> LifecycleDecision {
    if input.ready {
        return if input.has_shutdown_taint {
            LifecycleDecision::RemoveShutdownTaint
        } else {
            LifecycleDecision::Keep
        };
    }
    match input.lookup {
        Lookup::Failed => LifecycleDecision::Keep,
        Lookup::Found(server) => match (server.power, input.has_shutdown_taint) {
            (PowerState::Stopped, false) => LifecycleDecision::AddShutdownTaint,
            (PowerState::Running, true) => LifecycleDecision::RemoveShutdownTaint,
            _ => LifecycleDecision::Keep,
        },
        Lookup::ConfirmedNotFound if !input.has_provider_id => LifecycleDecision::Keep,
        Lookup::ConfirmedNotFound => match input.state.first_not_found {
            None => LifecycleDecision::AwaitSecondCheck { since: input.now },
            Some(since) if input.now.saturating_duration_since(since) >= input.grace => {
                if input.deletion_enabled {
                    LifecycleDecision::Delete
                } else {
                    LifecycleDecision::GoneButDeletionDisabled
                }
            }
            Some(since) => LifecycleDecision::AwaitSecondCheck { since },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(power: PowerState) -> ServerFacts {
        ServerFacts {
            uuid: "u".into(),
            name: "n".into(),
            cpu_mhz: 1,
            mem_bytes: 1,
            power,
            nics: vec![],
        }
    }

    struct Case {
        name: &'static str,
        ready: bool,
        taint: bool,
        pid: bool,
        lookup: Lookup,
        first_nf_ago: Option<u64>,
        deletion: bool,
        want: fn(Instant, Instant) -> LifecycleDecision,
    }

    #[test]
    fn table() {
        let base = Instant::now();
        let now = base + Duration::from_secs(1000);
        let grace = Duration::from_secs(60);
        let cases = vec![
            Case {
                name: "ready, no taint",
                ready: true,
                taint: false,
                pid: true,
                lookup: Lookup::Failed,
                first_nf_ago: None,
                deletion: true,
                want: |_, _| LifecycleDecision::Keep,
            },
            Case {
                name: "ready with stale shutdown taint",
                ready: true,
                taint: true,
                pid: true,
                lookup: Lookup::Failed,
                first_nf_ago: None,
                deletion: true,
                want: |_, _| LifecycleDecision::RemoveShutdownTaint,
            },
            Case {
                name: "ready node is never deleted",
                ready: true,
                taint: false,
                pid: true,
                lookup: Lookup::ConfirmedNotFound,
                first_nf_ago: Some(600),
                deletion: true,
                want: |_, _| LifecycleDecision::Keep,
            },
            Case {
                name: "stopped VM gets the taint",
                ready: false,
                taint: false,
                pid: true,
                lookup: Lookup::Found(server(PowerState::Stopped)),
                first_nf_ago: None,
                deletion: true,
                want: |_, _| LifecycleDecision::AddShutdownTaint,
            },
            Case {
                name: "stopped VM with taint",
                ready: false,
                taint: true,
                pid: true,
                lookup: Lookup::Found(server(PowerState::Stopped)),
                first_nf_ago: None,
                deletion: true,
                want: |_, _| LifecycleDecision::Keep,
            },
            Case {
                name: "running again loses the taint",
                ready: false,
                taint: true,
                pid: true,
                lookup: Lookup::Found(server(PowerState::Running)),
                first_nf_ago: None,
                deletion: true,
                want: |_, _| LifecycleDecision::RemoveShutdownTaint,
            },
            Case {
                name: "transitioning keeps the taint",
                ready: false,
                taint: true,
                pid: true,
                lookup: Lookup::Found(server(PowerState::Other)),
                first_nf_ago: None,
                deletion: true,
                want: |_, _| LifecycleDecision::Keep,
            },
            Case {
                name: "lookup error never deletes",
                ready: false,
                taint: false,
                pid: true,
                lookup: Lookup::Failed,
                first_nf_ago: Some(600),
                deletion: true,
                want: |_, _| LifecycleDecision::Keep,
            },
            Case {
                name: "first 404 starts the grace period",
                ready: false,
                taint: false,
                pid: true,
                lookup: Lookup::ConfirmedNotFound,
                first_nf_ago: None,
                deletion: true,
                want: |_, now| LifecycleDecision::AwaitSecondCheck { since: now },
            },
            Case {
                name: "second 404 too early",
                ready: false,
                taint: false,
                pid: true,
                lookup: Lookup::ConfirmedNotFound,
                first_nf_ago: Some(59),
                deletion: true,
                want: |b, _| LifecycleDecision::AwaitSecondCheck {
                    since: b + Duration::from_secs(941),
                },
            },
            Case {
                name: "second 404 after grace deletes",
                ready: false,
                taint: false,
                pid: true,
                lookup: Lookup::ConfirmedNotFound,
                first_nf_ago: Some(60),
                deletion: true,
                want: |_, _| LifecycleDecision::Delete,
            },
            Case {
                name: "deletion disabled",
                ready: false,
                taint: false,
                pid: true,
                lookup: Lookup::ConfirmedNotFound,
                first_nf_ago: Some(120),
                deletion: false,
                want: |_, _| LifecycleDecision::GoneButDeletionDisabled,
            },
            Case {
                name: "no providerID is never deleted",
                ready: false,
                taint: false,
                pid: false,
                lookup: Lookup::ConfirmedNotFound,
                first_nf_ago: Some(600),
                deletion: true,
                want: |_, _| LifecycleDecision::Keep,
            },
        ];
        for c in cases {
            let state = GoneState {
                first_not_found: c.first_nf_ago.map(|ago| now - Duration::from_secs(ago)),
            };
            let input = LifecycleInput {
                ready: c.ready,
                has_shutdown_taint: c.taint,
                has_provider_id: c.pid,
                lookup: &c.lookup,
                state,
                now,
                grace,
                deletion_enabled: c.deletion,
            };
            assert_eq!(decide_lifecycle(&input), (c.want)(base, now), "{}", c.name);
        }
    }

    #[test]
    fn found_resets_the_memory_and_errors_keep_it() {
        let t = Instant::now();
        let remembered = GoneState {
            first_not_found: Some(t),
        };
        let found = Lookup::Found(server(PowerState::Running));
        assert_eq!(
            LifecycleDecision::Keep.next_state(remembered, &found),
            GoneState::default()
        );
        assert_eq!(
            LifecycleDecision::Keep.next_state(remembered, &Lookup::Failed),
            remembered
        );
        let later = t + Duration::from_secs(5);
        assert_eq!(
            LifecycleDecision::AwaitSecondCheck { since: later }
                .next_state(GoneState::default(), &Lookup::ConfirmedNotFound),
            GoneState {
                first_not_found: Some(later)
            }
        );
    }
}
