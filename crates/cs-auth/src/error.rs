//! The error type of this crate.

use std::{fmt, time::Duration};

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One step of the impersonation flow (see `docs/auth.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// Step 1: the service-account token from Keycloak (client-credentials grant).
    ServiceAccountToken,
    /// Step 2: the UMA requesting-party token (RPT) for the `service_provider_api` audience.
    Rpt,
    /// Step 3: the service-provider impersonation call on the `direct.{region}` host.
    Impersonate,
}

impl Step {
    /// All steps in flow order.
    pub const ALL: [Self; 3] = [Self::ServiceAccountToken, Self::Rpt, Self::Impersonate];

    /// The step's position in the flow: 1, 2 or 3.
    pub fn number(self) -> u8 {
        match self {
            Self::ServiceAccountToken => 1,
            Self::Rpt => 2,
            Self::Impersonate => 3,
        }
    }

    /// A stable, low-cardinality label for metrics: `service_account_token`, `rpt` or `impersonate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServiceAccountToken => "service_account_token",
            Self::Rpt => "rpt",
            Self::Impersonate => "impersonate",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Self::ServiceAccountToken => "service-account token",
            Self::Rpt => "UMA RPT",
            Self::Impersonate => "impersonate",
        };
        write!(f, "step {} ({what})", self.number())
    }
}

/// Why credentials could not be obtained. Messages never contain secrets or token values.
///
/// The type is `Clone` so one failure can be handed to every caller that was waiting for the same
/// token.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// A provider is not configured correctly (a missing or invalid setting).
    #[error("invalid credentials configuration: {0}")]
    Config(String),
    /// A provider could not produce credentials right now (e.g. no usable token file).
    #[error("{provider}: credentials unavailable: {reason}")]
    Unavailable {
        /// Which provider failed.
        provider: &'static str,
        /// Why, without secret values.
        reason: String,
    },
    /// A region code that cannot name a CloudSigma location.
    #[error(
        "invalid CloudSigma region {region:?}: a region code is non-empty and uses only lower-case \
         letters, digits and '-' (e.g. \"zrh\")"
    )]
    InvalidRegion {
        /// The rejected value.
        region: String,
    },
    /// A step of the impersonation flow got an answer other than a usable 200 token response.
    #[error("impersonation {step} failed{}: {message}", describe(*status, request_id.as_deref(), *attempts))]
    Impersonation {
        /// The step that failed.
        step: Step,
        /// The HTTP status of the last answer (200 when the body of a 200 was unusable).
        status: Option<u16>,
        /// CloudSigma's `X-REQUEST-ID` of the last answer, when it sent one.
        request_id: Option<String>,
        /// The server's own explanation (OAuth `error`/`error_description` or CloudSigma
        /// `error_type`/`error_message`), truncated and with any secret of the request removed.
        message: String,
        /// How many requests were sent for this step.
        attempts: u32,
    },
    /// A step of the impersonation flow got no answer within the configured HTTP timeout.
    #[error("impersonation {step} timed out: no answer within {}s{}", timeout.as_secs_f64(), describe(None, None, *attempts))]
    Timeout {
        /// The step that timed out.
        step: Step,
        /// The per-request timeout that was exceeded.
        timeout: Duration,
        /// How many requests were sent for this step.
        attempts: u32,
    },
    /// A step of the impersonation flow failed below HTTP (connection refused or reset, DNS, TLS).
    #[error("impersonation {step} failed{}: transport error: {message}", describe(None, None, *attempts))]
    Transport {
        /// The step that failed.
        step: Step,
        /// What went wrong, without the URL.
        message: String,
        /// How many requests were sent for this step.
        attempts: u32,
    },
    /// Both paths of a [`FallbackProvider`](crate::FallbackProvider) failed.
    #[error(
        "no credentials: primary {primary_name} failed ({primary}); secondary {secondary_name} failed ({secondary})"
    )]
    AllFailed {
        /// Name of the primary provider.
        primary_name: &'static str,
        /// The primary provider's error.
        primary: Box<Error>,
        /// Name of the secondary provider.
        secondary_name: &'static str,
        /// The secondary provider's error.
        secondary: Box<Error>,
    },
}

fn describe(status: Option<u16>, request_id: Option<&str>, attempts: u32) -> String {
    let mut parts = Vec::new();
    if let Some(status) = status {
        parts.push(format!("HTTP {status}"));
    }
    if let Some(id) = request_id {
        parts.push(format!("request id {id}"));
    }
    if attempts > 1 {
        parts.push(format!("after {attempts} attempts"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

impl Error {
    /// Whether trying the same request again may succeed: HTTP 408, 429 and 5xx answers, timeouts and
    /// connection errors. Configuration errors and 4xx refusals are final.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Impersonation {
                status: Some(status), ..
            } => *status == 408 || *status == 429 || (500..=599).contains(status),
            Self::Timeout { .. } | Self::Transport { .. } => true,
            _ => false,
        }
    }

    /// The impersonation step this error comes from, if any.
    pub fn step(&self) -> Option<Step> {
        match self {
            Self::Impersonation { step, .. } | Self::Timeout { step, .. } | Self::Transport { step, .. } => {
                Some(*step)
            }
            _ => None,
        }
    }

    /// The HTTP status of the failed answer, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Impersonation { status, .. } => *status,
            _ => None,
        }
    }

    /// CloudSigma's request id of the failed answer, if it sent one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Impersonation { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// A stable, low-cardinality label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Config(_) => "config",
            Self::Unavailable { .. } => "unavailable",
            Self::InvalidRegion { .. } => "invalid_region",
            Self::Impersonation {
                status: Some(200), ..
            } => "invalid_response",
            Self::Impersonation { .. } => "http_error",
            Self::Timeout { .. } => "timeout",
            Self::Transport { .. } => "transport",
            Self::AllFailed { .. } => "all_failed",
        }
    }

    /// The same error recording that `attempts` requests were sent for its step.
    pub(crate) fn with_attempts(mut self, n: u32) -> Self {
        match &mut self {
            Self::Impersonation { attempts, .. }
            | Self::Timeout { attempts, .. }
            | Self::Transport { attempts, .. } => *attempts = n,
            _ => {}
        }
        self
    }

    /// Whether the answer was HTTP 401 (the bearer token or client secret was refused).
    pub(crate) fn is_unauthorized(&self) -> bool {
        self.status() == Some(401)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impersonation_error_names_step_status_request_id_and_attempts() {
        let e = Error::Impersonation {
            step: Step::Impersonate,
            status: Some(504),
            request_id: Some("req-42".into()),
            message: "Gateway Timeout".into(),
            attempts: 3,
        };
        assert_eq!(
            e.to_string(),
            "impersonation step 3 (impersonate) failed (HTTP 504, request id req-42, after 3 attempts): \
             Gateway Timeout"
        );
        assert!(e.is_retryable());
        assert_eq!(e.step(), Some(Step::Impersonate));
        assert_eq!(e.request_id(), Some("req-42"));
        assert_eq!(e.metric_label(), "http_error");
    }

    #[test]
    fn timeout_and_transport_errors_read_well() {
        let t = Error::Timeout {
            step: Step::Rpt,
            timeout: Duration::from_millis(1500),
            attempts: 2,
        };
        assert_eq!(
            t.to_string(),
            "impersonation step 2 (UMA RPT) timed out: no answer within 1.5s (after 2 attempts)"
        );
        let c = Error::Transport {
            step: Step::ServiceAccountToken,
            message: "connection refused".into(),
            attempts: 1,
        };
        assert_eq!(
            c.to_string(),
            "impersonation step 1 (service-account token) failed: transport error: connection refused"
        );
        assert!(t.is_retryable() && c.is_retryable());
    }

    #[test]
    fn only_transient_failures_are_retryable() {
        let http = |status| Error::Impersonation {
            step: Step::Rpt,
            status: Some(status),
            request_id: None,
            message: String::new(),
            attempts: 1,
        };
        for status in [500, 502, 503, 504, 429, 408] {
            assert!(http(status).is_retryable(), "{status}");
        }
        for status in [200, 400, 401, 403, 404] {
            assert!(!http(status).is_retryable(), "{status}");
        }
        assert!(http(401).is_unauthorized());
        assert!(!Error::Config("x".into()).is_retryable());
        assert!(!Error::InvalidRegion { region: "ZRH".into() }.is_retryable());
    }

    #[test]
    fn invalid_region_error_names_the_region() {
        let e = Error::InvalidRegion {
            region: "Zürich".into(),
        };
        assert!(e.to_string().contains("\"Zürich\""), "{e}");
    }
}
