//! The error type of this crate and its mapping onto gRPC status codes.

use tonic::{Code, Status};

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Text of CloudSigma's refusal to resize a drive attached to a running server.
const RUNNING_GUEST_RESIZE: &str = "mounted on a running guest";

/// Why a CSI call failed. Each variant maps to one gRPC code (see [`Error::code`]); messages name the
/// volume, node or field involved and never contain credentials.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A required field is missing or a value is invalid (INVALID_ARGUMENT).
    #[error("{0}")]
    InvalidArgument(String),
    /// The volume, node, snapshot or source does not exist (NOT_FOUND).
    #[error("{0}")]
    NotFound(String),
    /// An object with this name exists but is incompatible with the request (ALREADY_EXISTS).
    #[error("{0}")]
    AlreadyExists(String),
    /// The object is in a state that forbids the call: in use, attached elsewhere (FAILED_PRECONDITION).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The requested capacity cannot be provided (OUT_OF_RANGE).
    #[error("{0}")]
    OutOfRange(String),
    /// A limit is reached: attach slots, quota, funds (RESOURCE_EXHAUSTED).
    #[error("{0}")]
    ResourceExhausted(String),
    /// Another operation on the same object is in progress, or a paging token is invalid (ABORTED).
    #[error("{0}")]
    Aborted(String),
    /// A transient condition; the caller should retry (UNAVAILABLE).
    #[error("{0}")]
    Unavailable(String),
    /// The RPC or feature is not offered (UNIMPLEMENTED).
    #[error("{0}")]
    Unimplemented(String),
    /// Something that should not happen (INTERNAL).
    #[error("{0}")]
    Internal(String),
    /// A CloudSigma API call failed; `context` says what the driver was doing.
    #[error("{context}: {source}")]
    Cloud {
        /// What the driver was doing, e.g. `attaching volume X to node Y`.
        context: String,
        /// The API error (its message carries CloudSigma's own error text and request id).
        #[source]
        source: cs_api::Error,
    },
    /// The gRPC endpoint cannot be used (bad scheme, bind failure, stale path that is no socket).
    #[error("CSI endpoint: {0}")]
    Endpoint(String),
}

impl Error {
    /// Wraps an API error with what the driver was doing.
    pub fn cloud(context: impl Into<String>, source: cs_api::Error) -> Self {
        Self::Cloud {
            context: context.into(),
            source,
        }
    }

    /// The gRPC status code of this error.
    ///
    /// CloudSigma errors: 404 → NOT_FOUND; 401 and refused credentials → UNAUTHENTICATED; credentials
    /// that are merely unavailable right now (no token file yet) → UNAVAILABLE; 403 `permission` →
    /// PERMISSION_DENIED; 403 "Cannot resize drive mounted on a running guest" and other state refusals →
    /// FAILED_PRECONDITION; 400 validation → INVALID_ARGUMENT; 402 payment/billing → RESOURCE_EXHAUSTED;
    /// 503 concurrency, 429, other retryable 5xx, timeouts and connection errors → UNAVAILABLE; no free
    /// drive channel → RESOURCE_EXHAUSTED; an attach/detach the API accepted but did not apply →
    /// FAILED_PRECONDITION; a wait that ran out of time → UNAVAILABLE (the retried call continues it);
    /// anything else → INTERNAL.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::OutOfRange(_) => Code::OutOfRange,
            Self::ResourceExhausted(_) => Code::ResourceExhausted,
            Self::Aborted(_) => Code::Aborted,
            Self::Unavailable(_) => Code::Unavailable,
            Self::Unimplemented(_) => Code::Unimplemented,
            Self::Internal(_) | Self::Endpoint(_) => Code::Internal,
            Self::Cloud { source, .. } => cloud_code(source),
        }
    }
}

/// The gRPC code for a CloudSigma client error (see [`Error::code`]).
pub fn cloud_code(error: &cs_api::Error) -> Code {
    use cs_api::Error as E;
    match error {
        E::NotFound(_) => Code::NotFound,
        E::Unauthorized(_) => Code::Unauthenticated,
        E::Credentials(cs_auth::Error::Unavailable { .. } | cs_auth::Error::AllFailed { .. }) => {
            Code::Unavailable
        }
        E::Credentials(e) if e.is_retryable() => Code::Unavailable,
        E::Credentials(_) => Code::Unauthenticated,
        E::Forbidden(f) => {
            let message = f.error_message.as_deref().unwrap_or_default();
            // 403 means "permission denied" or "not allowed in the current state"; the latter reads
            // "Cannot ..." (e.g. "Cannot resize drive mounted on a running guest").
            if message.contains(RUNNING_GUEST_RESIZE) || message.trim_start().starts_with("Cannot") {
                Code::FailedPrecondition
            } else {
                Code::PermissionDenied
            }
        }
        E::BadRequest(_) | E::InvalidArgument(_) => Code::InvalidArgument,
        E::PaymentRequired(_) => Code::ResourceExhausted,
        E::NoFreeChannel { .. } => Code::ResourceExhausted,
        E::NotApplied { .. } => Code::FailedPrecondition,
        E::WaitTimeout { .. } => Code::Unavailable,
        e if e.is_retryable() => Code::Unavailable,
        _ => Code::Internal,
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        Status::new(error.code(), error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16, error_type: Option<&str>, message: &str) -> cs_api::Error {
        let failure = Box::new(cs_api::ApiFailure {
            method: "GET",
            route: "drives/{uuid}/",
            status,
            error_type: error_type.map(str::to_owned),
            error_point: None,
            error_message: (!message.is_empty()).then(|| message.to_owned()),
            details: Vec::new(),
            request_id: Some("req-1".into()),
            retry_after: None,
        });
        match status {
            400 => cs_api::Error::BadRequest(failure),
            401 => cs_api::Error::Unauthorized(failure),
            402 => cs_api::Error::PaymentRequired(failure),
            403 => cs_api::Error::Forbidden(failure),
            404 => cs_api::Error::NotFound(failure),
            503 => cs_api::Error::Conflict(failure),
            500..=599 => cs_api::Error::Server(failure),
            _ => cs_api::Error::UnexpectedStatus(failure),
        }
    }

    #[test]
    fn cloudsigma_errors_map_to_the_documented_codes() {
        let cases = [
            (
                failure(404, Some("notexist"), "Object with uuid x does not exist"),
                Code::NotFound,
            ),
            (failure(401, None, ""), Code::Unauthenticated),
            (
                failure(
                    403,
                    Some("permission"),
                    "User u does not have all of the permissions [LIST]",
                ),
                Code::PermissionDenied,
            ),
            (
                failure(
                    403,
                    Some("permission"),
                    "Cannot resize drive mounted on a running guest",
                ),
                Code::FailedPrecondition,
            ),
            (
                failure(
                    403,
                    Some("permission"),
                    "Cannot clone drive d while it is resizing",
                ),
                Code::FailedPrecondition,
            ),
            (failure(403, None, ""), Code::PermissionDenied),
            (
                failure(400, Some("validation"), "Size must be at least 536870912"),
                Code::InvalidArgument,
            ),
            (
                failure(402, Some("payment"), "Insufficient funds"),
                Code::ResourceExhausted,
            ),
            (
                failure(503, Some("concurrency"), "Object is locked"),
                Code::Unavailable,
            ),
            (failure(500, Some("backend"), "boom"), Code::Unavailable),
            (failure(502, None, ""), Code::Unavailable),
            (failure(501, None, ""), Code::Internal),
            (failure(405, None, ""), Code::Internal),
        ];
        for (error, code) in cases {
            assert_eq!(cloud_code(&error), code, "{error}");
        }
    }

    #[test]
    fn driver_errors_map_to_their_codes_and_keep_the_message() {
        let status = Status::from(Error::cloud(
            "attaching volume v to node n",
            failure(404, Some("notexist"), "gone"),
        ));
        assert_eq!(status.code(), Code::NotFound);
        assert!(
            status
                .message()
                .starts_with("attaching volume v to node n: not found:"),
            "{}",
            status.message()
        );
        assert_eq!(Status::from(Error::Aborted("busy".into())).code(), Code::Aborted);
        assert_eq!(
            Status::from(Error::OutOfRange("x".into())).code(),
            Code::OutOfRange
        );
        let no_channel = cs_api::Error::NoFreeChannel {
            server: "s".into(),
            drives: 16,
            max: 16,
        };
        assert_eq!(cloud_code(&no_channel), Code::ResourceExhausted);
        let missing = cs_api::Error::Credentials(cs_auth::Error::Unavailable {
            provider: "token-file",
            reason: "token file /x does not exist".into(),
        });
        assert_eq!(cloud_code(&missing), Code::Unavailable);
        let config = cs_api::Error::Credentials(cs_auth::Error::Config("bad".into()));
        assert_eq!(cloud_code(&config), Code::Unauthenticated);
    }
}
