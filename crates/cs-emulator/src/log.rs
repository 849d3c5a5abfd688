//! The request log and per-route counters.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::emulator::Shared;
use crate::fault::{FaultId, duration_ms};

/// Records kept at most; older ones are dropped (counters are not).
const MAX_RECORDS: usize = 100_000;

/// Which virtual host a request was addressed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostKind {
    /// `/{loc}/api/2.0/` (or the `/api/2.0/` alias).
    Regular,
    /// `/{loc}/direct/...` (API 2.0 and impersonation).
    Direct,
    /// The Keycloak token endpoint under `/oauth/`.
    Oauth,
    /// The emulator's own `/_emulator/` API.
    Admin,
    /// Nothing matched (unknown location or prefix).
    Unknown,
}

/// One request the emulator answered (or dropped).
#[derive(Clone, Debug, Serialize)]
pub struct RequestRecord {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Request path as sent, location prefix included, without the query.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Route template: method, space, path without the location prefix and with ids replaced, e.g.
    /// `GET /api/2.0/servers/{uuid}/`; `METHOD (unmatched)` when no route matched.
    pub route: String,
    /// Location addressed, if any.
    pub location: Option<String>,
    /// Virtual host addressed.
    pub host: HostKind,
    /// Email of the user the request acted as (after the direct-host rule), `None` if unauthenticated.
    pub user: Option<String>,
    /// HTTP status answered; `0` when the connection was closed without a response (a
    /// `CloseConnection` fault, or the client went away first).
    pub status: u16,
    /// Time from arrival to answer.
    #[serde(rename = "duration_ms", with = "duration_ms")]
    pub duration: Duration,
    /// The fault that affected this request, if any.
    pub fault: Option<FaultId>,
}

/// Records and counters.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    records: VecDeque<RequestRecord>,
    counts: BTreeMap<String, u64>,
}

impl RequestLog {
    pub(crate) fn count_arrival(&mut self, route: &str) {
        *self.counts.entry(route.to_owned()).or_default() += 1;
    }

    fn push(&mut self, r: RequestRecord) {
        if self.records.len() >= MAX_RECORDS {
            self.records.pop_front();
        }
        self.records.push_back(r);
    }

    pub(crate) fn records(&self) -> Vec<RequestRecord> {
        self.records.iter().cloned().collect()
    }

    pub(crate) fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.clone()
    }

    pub(crate) fn count(&self, route: &str) -> u64 {
        self.counts.get(route).copied().unwrap_or(0)
    }

    pub(crate) fn reset(&mut self) {
        self.records.clear();
        self.counts.clear();
    }
}

/// Counts a request when it arrives and records it when it is answered, or when its future is dropped
/// (connection closed), so a request the client gave up on is still logged.
pub(crate) struct LogGuard {
    shared: Arc<Shared>,
    started: Instant,
    record: Option<RequestRecord>,
}

impl LogGuard {
    pub(crate) fn begin(shared: Arc<Shared>, mut record: RequestRecord) -> LogGuard {
        record.status = 0;
        shared.log().count_arrival(&record.route);
        LogGuard {
            shared,
            started: Instant::now(),
            record: Some(record),
        }
    }

    pub(crate) fn set_fault(&mut self, id: FaultId) {
        if let Some(r) = &mut self.record {
            r.fault = Some(id);
        }
    }

    pub(crate) fn finish(&mut self, status: u16, user: Option<String>) {
        if let Some(r) = &mut self.record {
            r.status = status;
            r.user = user;
        }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(mut r) = self.record.take() {
            r.duration = self.started.elapsed();
            tracing::info!(
                method = %r.method,
                route = %r.route,
                location = r.location.as_deref().unwrap_or("-"),
                user = r.user.as_deref().unwrap_or("-"),
                status = r.status,
                duration_ms = u64::try_from(r.duration.as_millis()).unwrap_or(u64::MAX),
                fault = r.fault.map(|f| f.0),
                "request"
            );
            self.shared.log().push(r);
        }
    }
}
