//! The error type of this crate and the parsing of CloudSigma error bodies.

use std::{fmt, time::Duration};

use serde::Deserialize;
use serde_json::Value;

use crate::types::DriveStatus;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One entry of a CloudSigma error body (`[{"error_type", "error_point", "error_message"}]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ErrorDetail {
    /// `validation`, `notexist`, `backend`, `permission`, `database`, `concurrency`, `billing`, `payment`, …
    #[serde(default)]
    pub error_type: Option<String>,
    /// The offending field of a validation error.
    #[serde(default)]
    pub error_point: Option<String>,
    /// Human-readable text.
    #[serde(default)]
    pub error_message: Option<String>,
}

/// Everything known about a request the API answered with an error status (boxed inside [`Error`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiFailure {
    /// HTTP method.
    pub method: &'static str,
    /// Route template, e.g. `servers/{uuid}/` (never a concrete uuid or query value).
    pub route: &'static str,
    /// HTTP status code.
    pub status: u16,
    /// The `error_type` of the first error entry.
    pub error_type: Option<String>,
    /// The `error_point` of the first error entry.
    pub error_point: Option<String>,
    /// The `error_message` of the first error entry.
    pub error_message: Option<String>,
    /// Every error entry of the body (empty when the body was empty or not an error document).
    pub details: Vec<ErrorDetail>,
    /// The `X-REQUEST-ID` response header.
    pub request_id: Option<String>,
    /// The `Retry-After` header, when it gave a number of seconds.
    pub retry_after: Option<Duration>,
}

impl ApiFailure {
    /// Builds the failure from a status and the raw body: a JSON array of error objects (documented), a
    /// single error object (seen in the wild), or anything else (kept as no details; the body itself is
    /// not stored since it is unknown what it holds).
    pub(crate) fn from_body(
        method: &'static str,
        route: &'static str,
        status: u16,
        body: &[u8],
        request_id: Option<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        let details = parse_error_body(body);
        let first = details.first().cloned().unwrap_or_default();
        Self {
            method,
            route,
            status,
            error_type: first.error_type,
            error_point: first.error_point,
            error_message: first.error_message,
            details,
            request_id,
            retry_after,
        }
    }
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} answered {}", self.method, self.route, self.status)?;
        if let Some(kind) = &self.error_type {
            write!(f, " ({kind})")?;
        }
        if let Some(point) = &self.error_point {
            write!(f, " at `{point}`")?;
        }
        if let Some(message) = &self.error_message {
            write!(f, ": {message}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " [request id {id}]")?;
        }
        Ok(())
    }
}

/// Most entries of an error body that are kept.
pub(crate) const MAX_ERROR_DETAILS: usize = 20;
/// Longest `error_message` kept, in characters (longer ones are cut and end in `…`).
pub(crate) const MAX_ERROR_MESSAGE_CHARS: usize = 1000;
/// Longest `error_type` / `error_point` kept, in characters.
pub(crate) const MAX_ERROR_FIELD_CHARS: usize = 100;

/// A field of an error body as it may be kept: control characters (line breaks, escape sequences)
/// become spaces, so the text cannot forge log lines, and it is cut at `max` characters.
fn clean_field(value: Option<String>, max: usize) -> Option<String> {
    let value = value?;
    let mut out: String = value
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if value.chars().nth(max).is_some() {
        out.push('…');
    }
    Some(out)
}

/// Parses an error body: array of entries, a single entry, or nothing usable. At most
/// [`MAX_ERROR_DETAILS`] entries are kept, each field cleaned and bounded (see `clean_field`).
pub(crate) fn parse_error_body(body: &[u8]) -> Vec<ErrorDetail> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let is_entry = |v: &Value| {
        v.as_object().is_some_and(|o| {
            o.contains_key("error_type") || o.contains_key("error_message") || o.contains_key("error_point")
        })
    };
    let entries: Vec<Value> = match value {
        Value::Array(items) => items.into_iter().filter(is_entry).collect(),
        object @ Value::Object(_) if is_entry(&object) => vec![object],
        _ => Vec::new(),
    };
    entries
        .into_iter()
        .filter_map(|v| serde_json::from_value::<ErrorDetail>(v).ok())
        .take(MAX_ERROR_DETAILS)
        .map(|d| ErrorDetail {
            error_type: clean_field(d.error_type, MAX_ERROR_FIELD_CHARS),
            error_point: clean_field(d.error_point, MAX_ERROR_FIELD_CHARS),
            error_message: clean_field(d.error_message, MAX_ERROR_MESSAGE_CHARS),
        })
        .collect()
}

/// Everything that can go wrong talking to CloudSigma. Messages and `Debug` output never contain
/// credentials or response bodies other than the API's own error fields.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client is configured incorrectly (base URL, option value).
    #[error("invalid CloudSigma client configuration: {0}")]
    Config(String),
    /// A caller passed an unusable argument (e.g. an empty uuid).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The credentials provider could not produce credentials.
    #[error("no CloudSigma credentials: {0}")]
    Credentials(#[source] cs_auth::Error),
    /// 400: the request was invalid (`validation`).
    #[error("bad request: {0}")]
    BadRequest(Box<ApiFailure>),
    /// 401: the credentials were rejected (after one invalidate-and-retry).
    #[error("unauthorized: {0}")]
    Unauthorized(Box<ApiFailure>),
    /// 402: insufficient funds (`payment`/`billing`).
    #[error("payment required: {0}")]
    PaymentRequired(Box<ApiFailure>),
    /// 403: permission denied or not allowed in the current state; see `error_type`.
    #[error("forbidden: {0}")]
    Forbidden(Box<ApiFailure>),
    /// 404: the object does not exist (`notexist`).
    #[error("not found: {0}")]
    NotFound(Box<ApiFailure>),
    /// 503: concurrent-update conflict (`concurrency`) or no capacity; retryable.
    #[error("conflict or temporarily unavailable: {0}")]
    Conflict(Box<ApiFailure>),
    /// 429: rate limited (the API documents no code for this; 429 is assumed); retryable.
    #[error("rate limited: {0}")]
    RateLimited(Box<ApiFailure>),
    /// Any other 5xx.
    #[error("server error: {0}")]
    Server(Box<ApiFailure>),
    /// Any other unexpected status (3xx, 405, 406, 409, …).
    #[error("unexpected response: {0}")]
    UnexpectedStatus(Box<ApiFailure>),
    /// No response within the per-request timeout.
    #[error("{method} {route} timed out after {timeout:?}")]
    Timeout {
        /// HTTP method.
        method: &'static str,
        /// Route template.
        route: &'static str,
        /// The timeout that elapsed.
        timeout: Duration,
    },
    /// Connection-level failure (DNS, refused, reset, TLS, body read).
    #[error("{method} {route} failed: {source}")]
    Transport {
        /// HTTP method.
        method: &'static str,
        /// Route template.
        route: &'static str,
        /// The underlying error (its URL removed).
        #[source]
        source: reqwest::Error,
    },
    /// A success response whose body is not what the API documents.
    #[error("{method} {route}: cannot decode the {status} response: {reason}{}", request_suffix(.request_id))]
    Decode {
        /// HTTP method.
        method: &'static str,
        /// Route template.
        route: &'static str,
        /// HTTP status code.
        status: u16,
        /// What did not match (quoted values from the body are elided).
        reason: String,
        /// The `X-REQUEST-ID` response header.
        request_id: Option<String>,
    },
    /// Attaching is impossible: the server has no free device channel left.
    #[error("server {server} has no free drive channel ({drives} drives attached, at most {max} allowed)")]
    NoFreeChannel {
        /// Server uuid.
        server: String,
        /// Drives currently in its definition.
        drives: usize,
        /// The limit this client enforces.
        max: usize,
    },
    /// The API accepted a drive-list update but the returned server does not reflect it (documented
    /// behaviour of a running server when hot-plug is not supported).
    #[error("server {server}: the {operation} of drive {drive} was accepted but not applied")]
    NotApplied {
        /// Server uuid.
        server: String,
        /// Drive uuid.
        drive: String,
        /// `attach` or `detach`.
        operation: &'static str,
    },
    /// A wait for a drive state did not finish in time.
    #[error("drive {drive} did not become {wanted} within {waited:?} (last status {last_status})")]
    WaitTimeout {
        /// Drive uuid.
        drive: String,
        /// The awaited condition.
        wanted: String,
        /// How long it waited.
        waited: Duration,
        /// The last status seen.
        last_status: DriveStatus,
    },
}

fn request_suffix(id: &Option<String>) -> String {
    id.as_ref()
        .map(|id| format!(" [request id {id}]"))
        .unwrap_or_default()
}

impl Error {
    /// Maps an error status to its variant.
    pub(crate) fn from_status(failure: ApiFailure) -> Self {
        let failure = Box::new(failure);
        match failure.status {
            400 => Self::BadRequest(failure),
            401 => Self::Unauthorized(failure),
            402 => Self::PaymentRequired(failure),
            403 => Self::Forbidden(failure),
            404 => Self::NotFound(failure),
            429 => Self::RateLimited(failure),
            503 => Self::Conflict(failure),
            500..=599 => Self::Server(failure),
            _ => Self::UnexpectedStatus(failure),
        }
    }

    /// Whether trying the same thing again later may succeed: 503, 429, 500/502/504 (any 5xx but 501),
    /// timeouts and connection errors. Controllers use this to choose between requeue and give up.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Conflict(_) | Self::RateLimited(_) | Self::Timeout { .. } | Self::Transport { .. } => true,
            Self::Server(f) => f.status != 501,
            _ => false,
        }
    }

    /// Whether the object does not exist (404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }

    /// The API's answer, for errors that carry one.
    pub fn api_failure(&self) -> Option<&ApiFailure> {
        match self {
            Self::BadRequest(f)
            | Self::Unauthorized(f)
            | Self::PaymentRequired(f)
            | Self::Forbidden(f)
            | Self::NotFound(f)
            | Self::Conflict(f)
            | Self::RateLimited(f)
            | Self::Server(f)
            | Self::UnexpectedStatus(f) => Some(f),
            _ => None,
        }
    }

    /// The HTTP status, for errors that carry one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Decode { status, .. } => Some(*status),
            other => other.api_failure().map(|f| f.status),
        }
    }

    /// The API's `error_type`, when the body had one.
    pub fn error_type(&self) -> Option<&str> {
        self.api_failure().and_then(|f| f.error_type.as_deref())
    }

    /// The `X-REQUEST-ID` of the failed response, when there was one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Decode { request_id, .. } => request_id.as_deref(),
            other => other.api_failure().and_then(|f| f.request_id.as_deref()),
        }
    }

    /// A short, low-cardinality label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Config(_) => "config",
            Self::InvalidArgument(_) => "invalid_argument",
            Self::Credentials(_) => "credentials",
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized(_) => "unauthorized",
            Self::PaymentRequired(_) => "payment_required",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::RateLimited(_) => "rate_limited",
            Self::Server(_) => "server",
            Self::UnexpectedStatus(_) => "unexpected_status",
            Self::Timeout { .. } => "timeout",
            Self::Transport { .. } => "transport",
            Self::Decode { .. } => "decode",
            Self::NoFreeChannel { .. } => "no_free_channel",
            Self::NotApplied { .. } => "not_applied",
            Self::WaitTimeout { .. } => "wait_timeout",
        }
    }
}

/// Describes a serde_json error without quoting values from the body (a value could be sensitive).
pub(crate) fn describe_json_error(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        if c == '"' {
            if !quoted {
                out.push('…');
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16, body: &str) -> ApiFailure {
        ApiFailure::from_body(
            "GET",
            "servers/{uuid}/",
            status,
            body.as_bytes(),
            Some("rid-1".into()),
            None,
        )
    }

    #[test]
    fn parses_the_documented_array_body() {
        let f = failure(
            404,
            r#"[{"error_type":"notexist","error_point":null,"error_message":"Object with uuid x does not exist"}]"#,
        );
        assert_eq!(f.error_type.as_deref(), Some("notexist"));
        assert_eq!(f.error_point, None);
        assert_eq!(
            f.error_message.as_deref(),
            Some("Object with uuid x does not exist")
        );
        assert_eq!(f.details.len(), 1);
        let e = Error::from_status(f);
        assert!(e.is_not_found() && !e.is_retryable());
        assert_eq!(e.request_id(), Some("rid-1"));
        assert_eq!(
            e.to_string(),
            "not found: GET servers/{uuid}/ answered 404 (notexist): Object with uuid x does not exist [request id rid-1]"
        );
    }

    #[test]
    fn parses_a_single_object_body_and_validation_point() {
        let f = failure(
            400,
            r#"{"error_type":"validation","error_point":"size","error_message":"too small"}"#,
        );
        assert_eq!(f.error_point.as_deref(), Some("size"));
        let e = Error::from_status(f);
        assert!(matches!(e, Error::BadRequest(_)));
        assert!(e.to_string().contains("at `size`"), "{e}");
    }

    #[test]
    fn empty_and_garbage_bodies_give_no_details() {
        for body in [
            "",
            "   ",
            "<html>Bad Gateway</html>",
            "{\"detail\":\"x\"}",
            "[1,2]",
            "null",
        ] {
            let f = failure(502, body);
            assert!(f.details.is_empty() && f.error_type.is_none(), "{body}");
            assert_eq!(f.status, 502);
        }
        let multi = failure(
            400,
            r#"[{"error_type":"validation","error_point":"name","error_message":"a"},
                {"error_type":"validation","error_point":"size","error_message":"b"}]"#,
        );
        assert_eq!(multi.details.len(), 2);
        assert_eq!(multi.error_point.as_deref(), Some("name"));
    }

    #[test]
    fn error_fields_are_bounded_and_cannot_forge_log_lines() {
        let long = "x".repeat(5000);
        let body = format!(
            r#"{{"error_type":"validation\nFAKE","error_point":"{long}","error_message":"a\r\nb\u001b[31m{long}"}}"#
        );
        let f = failure(400, &body);
        assert_eq!(f.error_type.as_deref(), Some("validation FAKE"));
        assert_eq!(
            f.error_point.as_ref().map(|p| p.chars().count()),
            Some(MAX_ERROR_FIELD_CHARS + 1)
        );
        let message = f.error_message.unwrap_or_default();
        assert!(
            message.starts_with("a  b [31mxxx") && message.ends_with('…'),
            "{message}"
        );
        assert_eq!(message.chars().count(), MAX_ERROR_MESSAGE_CHARS + 1);
        let many = format!("[{}]", vec![r#"{"error_type":"v"}"#; 500].join(","));
        assert_eq!(failure(400, &many).details.len(), MAX_ERROR_DETAILS);
    }

    #[test]
    fn statuses_map_to_variants_and_retryability() {
        let cases: [(u16, &str, bool); 11] = [
            (400, "bad_request", false),
            (401, "unauthorized", false),
            (402, "payment_required", false),
            (403, "forbidden", false),
            (404, "not_found", false),
            (405, "unexpected_status", false),
            (429, "rate_limited", true),
            (500, "server", true),
            (501, "server", false),
            (503, "conflict", true),
            (504, "server", true),
        ];
        for (status, label, retryable) in cases {
            let e = Error::from_status(failure(status, "[]"));
            assert_eq!(
                (e.metric_label(), e.is_retryable(), e.status()),
                (label, retryable, Some(status))
            );
        }
    }

    #[test]
    fn json_errors_do_not_quote_body_values() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct T {
            size: u64,
        }
        let err = serde_json::from_str::<T>(r#"{"size":"hunter2"}"#).unwrap_err();
        let text = describe_json_error(&err);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("invalid type"), "{text}");
    }
}
