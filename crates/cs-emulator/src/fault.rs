//! Fault injection: which requests fail, how, and how often.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Identifies an injected fault, to clear it later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FaultId(pub u64);

/// A fault: requests matching `route` (and `method`, when given) get `action` instead of (or before)
/// their normal answer.
///
/// JSON form (admin API): `{"route": "all" | {"path_contains": "..."} | {"route": "GET /api/2.0/servers/"},
/// "method": "GET", "action": {"status": {"status": 503, "error_type": "concurrency", "delay_ms": 0}} |
/// {"delay_ms": 200} | "close_connection", "times": 2}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Which requests are affected.
    pub route: RouteMatch,
    /// Only this HTTP method (case-insensitive); `None` = any method.
    #[serde(default)]
    pub method: Option<String>,
    /// What happens to them.
    pub action: FaultAction,
    /// Affect only the next `n` matching requests; `None` = until cleared.
    #[serde(default)]
    pub times: Option<u32>,
}

impl Fault {
    /// A fault on `route` doing `action`, for any method, until cleared.
    pub fn new(route: RouteMatch, action: FaultAction) -> Fault {
        Fault {
            route,
            method: None,
            action,
            times: None,
        }
    }

    /// Answers `status` (with the default error type for it) on every matching request.
    pub fn status(route: RouteMatch, status: u16) -> Fault {
        Fault::new(
            route,
            FaultAction::Status {
                status,
                error_type: None,
                delay: Duration::ZERO,
            },
        )
    }

    /// Restricts the fault to one HTTP method.
    pub fn method(mut self, method: &str) -> Fault {
        self.method = Some(method.to_owned());
        self
    }

    /// Restricts the fault to the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Fault {
        self.times = Some(n);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if let FaultAction::Status { status, .. } = &self.action
            && !(100..=599).contains(status)
        {
            return Err(format!(
                "action.status.status: {status} is not an HTTP status code"
            ));
        }
        if self.times == Some(0) {
            return Err("times: must be at least 1 (omit it for 'until cleared')".into());
        }
        Ok(())
    }

    fn matches(&self, method: &str, path: &str, route: &str) -> bool {
        if let Some(m) = &self.method
            && !m.eq_ignore_ascii_case(method)
        {
            return false;
        }
        match &self.route {
            RouteMatch::All => true,
            RouteMatch::PathContains(s) => path.contains(s.as_str()),
            RouteMatch::Route(r) => r == route,
        }
    }
}

/// Which requests a fault applies to. Admin routes (`/_emulator/`) are never affected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteMatch {
    /// Every request.
    All,
    /// Requests whose path (with the location prefix, without the query) contains this text.
    PathContains(String),
    /// Requests whose route template is exactly this, e.g. `GET /api/2.0/servers/detail/`,
    /// `POST /oauth/token`, `POST /direct/service_provider/api/v1/user/impersonate`.
    Route(String),
}

impl RouteMatch {
    /// `RouteMatch::Route` from a template such as `GET /direct/api/2.0/servers/{uuid}/`.
    pub fn route(template: &str) -> RouteMatch {
        RouteMatch::Route(template.to_owned())
    }

    /// `RouteMatch::PathContains`.
    pub fn path_contains(text: &str) -> RouteMatch {
        RouteMatch::PathContains(text.to_owned())
    }
}

/// What a fault does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// Waits `delay`, then answers `status` with an error body: a CloudSigma error array
    /// (`error_type` defaults from the status: 400 validation, 401/403 permission, 402 payment,
    /// 404 notexist, 503 concurrency, others backend), or an OAuth error object on the token endpoint.
    Status {
        /// HTTP status to answer.
        status: u16,
        /// `error_type` of the body; `None` = derived from the status.
        #[serde(default)]
        error_type: Option<String>,
        /// Wait before answering.
        #[serde(default, rename = "delay_ms", with = "duration_ms")]
        delay: Duration,
    },
    /// Waits, then serves the request normally (added latency).
    #[serde(rename = "delay_ms", with = "duration_ms")]
    Delay(Duration),
    /// Closes the TCP connection without sending a response (the client sees a reset / EOF).
    CloseConnection,
}

/// The `error_type` used for an injected status when the fault names none.
pub(crate) fn default_error_type(status: u16) -> &'static str {
    match status {
        400 => "validation",
        401 | 403 => "permission",
        402 => "payment",
        404 => "notexist",
        503 => "concurrency",
        _ => "backend",
    }
}

/// The faults in force, in injection order.
#[derive(Debug, Default)]
pub(crate) struct FaultTable {
    next_id: u64,
    entries: Vec<(FaultId, Fault, Option<u32>)>,
}

impl FaultTable {
    pub(crate) fn inject(&mut self, fault: Fault) -> FaultId {
        self.next_id += 1;
        let id = FaultId(self.next_id);
        let remaining = fault.times;
        self.entries.push((id, fault, remaining));
        id
    }

    pub(crate) fn clear(&mut self, id: FaultId) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(i, _, _)| *i != id);
        before != self.entries.len()
    }

    pub(crate) fn clear_all(&mut self) {
        self.entries.clear();
    }

    /// The faults in force with the number of matches each has left (`None` = unlimited).
    pub(crate) fn list(&self) -> Vec<(FaultId, Fault, Option<u32>)> {
        self.entries.clone()
    }

    /// The first fault matching the request; consumes one of its `times`.
    pub(crate) fn take(&mut self, method: &str, path: &str, route: &str) -> Option<(FaultId, FaultAction)> {
        let pos = self
            .entries
            .iter()
            .position(|(_, f, _)| f.matches(method, path, route))?;
        let (id, fault, remaining) = &mut self.entries[pos];
        let found = (*id, fault.action.clone());
        if let Some(n) = remaining {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.entries.remove(pos);
            }
        }
        Some(found)
    }
}

/// Serde for a `Duration` as whole milliseconds.
pub(crate) mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_limits_matches_and_then_the_fault_is_gone() {
        let mut t = FaultTable::default();
        t.inject(Fault::status(RouteMatch::route("GET /api/2.0/servers/"), 503).times(2));
        assert!(
            t.take("GET", "/zrh/api/2.0/servers/", "GET /api/2.0/servers/")
                .is_some()
        );
        assert!(
            t.take("GET", "/zrh/api/2.0/servers/", "GET /api/2.0/servers/")
                .is_some()
        );
        assert!(
            t.take("GET", "/zrh/api/2.0/servers/", "GET /api/2.0/servers/")
                .is_none()
        );
        assert!(t.list().is_empty());
    }

    #[test]
    fn method_route_and_path_matching() {
        let mut t = FaultTable::default();
        let id = t.inject(Fault::status(RouteMatch::path_contains("/drives/"), 500).method("post"));
        assert!(
            t.take("GET", "/zrh/api/2.0/drives/", "GET /api/2.0/drives/")
                .is_none()
        );
        assert_eq!(
            t.take("POST", "/zrh/api/2.0/drives/", "POST /api/2.0/drives/")
                .map(|f| f.0),
            Some(id)
        );
        assert!(
            t.take("POST", "/zrh/api/2.0/servers/", "POST /api/2.0/servers/")
                .is_none()
        );
        assert!(t.clear(id));
        assert!(!t.clear(id));
    }

    #[test]
    fn first_injected_wins() {
        let mut t = FaultTable::default();
        let a = t.inject(Fault::status(RouteMatch::All, 500));
        t.inject(Fault::status(RouteMatch::All, 503));
        assert_eq!(t.take("GET", "/x", "GET /x").map(|f| f.0), Some(a));
    }

    #[test]
    fn json_form_round_trips() {
        let f: Fault = serde_json::from_str(
            r#"{"route":{"route":"POST /oauth/token"},"action":{"status":{"status":504,"delay_ms":20}},"times":1}"#,
        )
        .unwrap();
        assert_eq!(
            f,
            Fault {
                route: RouteMatch::route("POST /oauth/token"),
                method: None,
                action: FaultAction::Status {
                    status: 504,
                    error_type: None,
                    delay: Duration::from_millis(20)
                },
                times: Some(1),
            }
        );
        let back: Fault = serde_json::from_value(serde_json::to_value(&f).unwrap()).unwrap();
        assert_eq!(back, f);
        let c: Fault = serde_json::from_str(r#"{"route":"all","action":"close_connection"}"#).unwrap();
        assert_eq!(c.action, FaultAction::CloseConnection);
        let d: Fault = serde_json::from_str(r#"{"route":"all","action":{"delay_ms":5}}"#).unwrap();
        assert_eq!(d.action, FaultAction::Delay(Duration::from_millis(5)));
        assert!(
            serde_json::from_str::<Fault>(r#"{"route":"all","action":"close_connection","x":1}"#).is_err()
        );
    }

    #[test]
    fn validation_names_the_field() {
        let f = Fault::status(RouteMatch::All, 42);
        assert!(f.validate().unwrap_err().contains("status"));
        let f = Fault::status(RouteMatch::All, 500).times(0);
        assert!(f.validate().unwrap_err().contains("times"));
    }
}
