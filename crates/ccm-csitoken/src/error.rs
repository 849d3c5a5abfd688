//! The error type of this crate and the failure reasons used as metric labels.

use std::fmt;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a refresh pass failed, as a stable low-cardinality label (metric `reason`, log field, Event
/// reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureReason {
    /// The issuer did not answer in time (client timeout, or HTTP 408/504 from it or a gateway).
    IssuerTimeout,
    /// The issuer answered with an error, an unusable answer, or could not be reached.
    IssuerError,
    /// The issuer refused our credentials (HTTP 401/403).
    Unauthorized,
    /// The source handed out a token that cannot be stored (empty, or already expired).
    InvalidToken,
    /// The Secret's namespace does not exist (and creating it is not enabled, or failed).
    NamespaceMissing,
    /// A Kubernetes API call failed (including conflicts that did not resolve after retries).
    KubeError,
    /// A Secret of the same name exists that cannot hold our data (another type, or immutable) and does
    /// not carry our `managed-by` label, so it is left alone.
    ForeignSecret,
}

impl FailureReason {
    /// Every reason, in a fixed order (for tests and dashboards).
    pub const ALL: [Self; 7] = [
        Self::IssuerTimeout,
        Self::IssuerError,
        Self::Unauthorized,
        Self::InvalidToken,
        Self::NamespaceMissing,
        Self::KubeError,
        Self::ForeignSecret,
    ];

    /// The label value: `issuer_timeout`, `issuer_error`, `unauthorized`, `invalid_token`,
    /// `namespace_missing`, `kube_error` or `foreign_secret`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IssuerTimeout => "issuer_timeout",
            Self::IssuerError => "issuer_error",
            Self::Unauthorized => "unauthorized",
            Self::InvalidToken => "invalid_token",
            Self::NamespaceMissing => "namespace_missing",
            Self::KubeError => "kube_error",
            Self::ForeignSecret => "foreign_secret",
        }
    }

    /// The reason of a Kubernetes Event about this failure (UpperCamelCase, as Kubernetes expects).
    pub fn event_reason(self) -> &'static str {
        match self {
            Self::IssuerTimeout => "TokenIssuerTimeout",
            Self::IssuerError => "TokenIssuerError",
            Self::Unauthorized => "TokenIssuerUnauthorized",
            Self::InvalidToken => "InvalidToken",
            Self::NamespaceMissing => "NamespaceMissing",
            Self::KubeError => "KubernetesApiError",
            Self::ForeignSecret => "ForeignSecret",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in this crate. Messages never contain a token value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting of [`Config`](crate::Config) is invalid; `field` names it.
    #[error("invalid CSI token controller setting {field}: {message}")]
    Config {
        /// The offending field, e.g. `namespace` or `jitter`.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The token source could not hand out a token.
    #[error("token source failed ({reason}): {message}")]
    Source {
        /// The metric label of this failure.
        reason: FailureReason,
        /// What went wrong, without secret values.
        message: String,
    },
    /// The source handed out a token that must not be written.
    #[error("the token source handed out an unusable token: {0}")]
    InvalidToken(String),
    /// The namespace of the Secret does not exist.
    #[error(
        "namespace {namespace:?} for the CSI token Secret does not exist; create it, or let the CCM create \
         it with --csi-token-create-namespace (CLOUDSIGMA_CSI_TOKEN_CREATE_NAMESPACE=true)"
    )]
    NamespaceMissing {
        /// The missing namespace.
        namespace: String,
    },
    /// A Secret with our name exists that we may not take over.
    #[error(
        "Secret {namespace}/{name} cannot hold the CSI token ({why}) and is not managed by this controller \
         (no label app.kubernetes.io/managed-by=cloudsigma-ccm); delete it so it can be recreated"
    )]
    ForeignSecret {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
        /// Why it cannot be used, e.g. `type kubernetes.io/tls` or `immutable`.
        why: String,
    },
    /// A Kubernetes API call failed.
    #[error("kubernetes API: {action} failed: {source}")]
    Kube {
        /// What was attempted, e.g. `update Secret cloudsigma-csi/cloudsigma-token`.
        action: String,
        /// The client error (its message holds names and statuses, never Secret data).
        #[source]
        source: kube::Error,
    },
    /// Updates kept conflicting with concurrent writers.
    #[error("Secret {namespace}/{name} kept changing under us: gave up after {attempts} conflicting writes")]
    Conflict {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
        /// How many writes were attempted.
        attempts: u32,
    },
}

impl Error {
    /// The metric label of this error.
    pub fn reason(&self) -> FailureReason {
        match self {
            Self::Source { reason, .. } => *reason,
            Self::InvalidToken(_) => FailureReason::InvalidToken,
            Self::NamespaceMissing { .. } => FailureReason::NamespaceMissing,
            Self::ForeignSecret { .. } => FailureReason::ForeignSecret,
            Self::Config { .. } | Self::Kube { .. } | Self::Conflict { .. } => FailureReason::KubeError,
        }
    }

    pub(crate) fn config(field: &'static str, message: impl Into<String>) -> Self {
        Self::Config {
            field,
            message: message.into(),
        }
    }

    pub(crate) fn kube(action: impl Into<String>, source: kube::Error) -> Self {
        Self::Kube {
            action: action.into(),
            source,
        }
    }
}

/// The failure reason of a cs-auth error: 401/403 → `unauthorized`; client timeouts and HTTP 408/504
/// → `issuer_timeout`; everything else → `issuer_error`.
pub fn reason_of_auth_error(error: &cs_auth::Error) -> FailureReason {
    match error {
        cs_auth::Error::Timeout { .. } => FailureReason::IssuerTimeout,
        cs_auth::Error::Impersonation {
            status: Some(401 | 403),
            ..
        } => FailureReason::Unauthorized,
        cs_auth::Error::Impersonation {
            status: Some(408 | 504),
            ..
        } => FailureReason::IssuerTimeout,
        _ => FailureReason::IssuerError,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn reason_labels_are_distinct_snake_case() {
        let labels: std::collections::BTreeSet<_> = FailureReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), FailureReason::ALL.len());
        for label in labels {
            assert!(
                label.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{label}"
            );
        }
    }

    #[test]
    fn auth_errors_map_to_reasons() {
        let http = |status| cs_auth::Error::Impersonation {
            step: cs_auth::Step::Impersonate,
            status: Some(status),
            request_id: None,
            message: String::new(),
            attempts: 3,
        };
        assert_eq!(reason_of_auth_error(&http(504)), FailureReason::IssuerTimeout);
        assert_eq!(reason_of_auth_error(&http(408)), FailureReason::IssuerTimeout);
        assert_eq!(reason_of_auth_error(&http(401)), FailureReason::Unauthorized);
        assert_eq!(reason_of_auth_error(&http(403)), FailureReason::Unauthorized);
        assert_eq!(reason_of_auth_error(&http(500)), FailureReason::IssuerError);
        assert_eq!(reason_of_auth_error(&http(200)), FailureReason::IssuerError);
        let timeout = cs_auth::Error::Timeout {
            step: cs_auth::Step::Rpt,
            timeout: Duration::from_secs(30),
            attempts: 1,
        };
        assert_eq!(reason_of_auth_error(&timeout), FailureReason::IssuerTimeout);
        let transport = cs_auth::Error::Transport {
            step: cs_auth::Step::ServiceAccountToken,
            message: "connection refused".into(),
            attempts: 1,
        };
        assert_eq!(reason_of_auth_error(&transport), FailureReason::IssuerError);
    }

    #[test]
    fn namespace_error_names_the_namespace_and_the_flag() {
        let e = Error::NamespaceMissing {
            namespace: "cloudsigma-csi".into(),
        };
        let text = e.to_string();
        assert!(text.contains("\"cloudsigma-csi\""), "{text}");
        assert!(text.contains("--csi-token-create-namespace"), "{text}");
        assert_eq!(e.reason(), FailureReason::NamespaceMissing);
    }
}
