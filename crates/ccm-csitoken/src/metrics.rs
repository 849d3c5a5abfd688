//! The controller's Prometheus metrics. The binary owns the registry and calls [`Metrics::register`].

use std::sync::atomic::AtomicU64;

use jiff::Timestamp;
use prometheus_client::{
    encoding::{EncodeLabel, EncodeLabelSet, EncodeLabelValue, LabelSetEncoder, LabelValueEncoder},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::FailureReason;

impl EncodeLabelValue for FailureReason {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// The `reason` label of the failure counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct ReasonLabel {
    /// Why the pass failed.
    pub reason: FailureReason,
}

impl EncodeLabelSet for ReasonLabel {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        ("reason", self.reason).encode(encoder.encode_label())
    }
}

/// Metrics of one CSI token controller. Clones share the same values.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    last_success: Gauge<f64, AtomicU64>,
    failures: Family<ReasonLabel, Counter>,
    expiry: Gauge<f64, AtomicU64>,
    writes: Counter,
}

impl Metrics {
    /// Fresh metrics, all zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the four metrics:
    /// `cloudsigma_csi_token_last_success_timestamp_seconds` (gauge, Unix time of the last pass that
    /// left a valid token in the Secret), `cloudsigma_csi_token_refresh_failures_total{reason}`
    /// (counter), `cloudsigma_csi_token_expiry_seconds` (gauge, seconds until the stored token expires,
    /// 0 when none or expired; updated on every pass) and `cloudsigma_csi_token_secret_writes_total`
    /// (counter of creates and updates of the Secret).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "cloudsigma_csi_token_last_success_timestamp_seconds",
            "Unix time of the last refresh pass that left a valid token in the Secret",
            self.last_success.clone(),
        );
        registry.register(
            "cloudsigma_csi_token_refresh_failures",
            "Failed refresh passes, by reason",
            self.failures.clone(),
        );
        registry.register(
            "cloudsigma_csi_token_expiry_seconds",
            "Seconds until the token stored in the Secret expires (0 when there is none or it expired)",
            self.expiry.clone(),
        );
        registry.register(
            "cloudsigma_csi_token_secret_writes",
            "Creates and updates of the CSI token Secret",
            self.writes.clone(),
        );
    }

    /// Records a successful pass at `now`.
    pub fn record_success(&self, now: Timestamp) {
        self.last_success.set(unix_seconds(now));
    }

    /// Records a failed pass.
    pub fn record_failure(&self, reason: FailureReason) {
        self.failures.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Records the stored token's expiry as seen at `now` (`None`: no usable token stored).
    pub fn record_expiry(&self, expires_at: Option<Timestamp>, now: Timestamp) {
        let left = expires_at.map_or(0.0, |e| e.duration_since(now).as_secs_f64().max(0.0));
        self.expiry.set(left);
    }

    /// Records one create or update of the Secret.
    pub fn record_write(&self) {
        self.writes.inc();
    }

    /// Unix time of the last success (0 before the first).
    pub fn last_success(&self) -> f64 {
        self.last_success.get()
    }

    /// Failures counted for `reason`.
    pub fn failures(&self, reason: FailureReason) -> u64 {
        self.failures.get_or_create(&ReasonLabel { reason }).get()
    }

    /// The last recorded seconds-until-expiry.
    pub fn expiry_seconds(&self) -> f64 {
        self.expiry.get()
    }

    /// Writes of the Secret so far.
    pub fn writes(&self) -> u64 {
        self.writes.get()
    }
}

fn unix_seconds(t: Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_documented_names() {
        let m = Metrics::new();
        let mut registry = Registry::default();
        m.register(&mut registry);
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        m.record_success(now);
        m.record_failure(FailureReason::IssuerTimeout);
        m.record_failure(FailureReason::IssuerTimeout);
        m.record_failure(FailureReason::NamespaceMissing);
        m.record_expiry(
            Some(now.checked_add(jiff::SignedDuration::from_secs(600)).unwrap()),
            now,
        );
        m.record_write();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "cloudsigma_csi_token_last_success_timestamp_seconds 1700000000.0",
            "cloudsigma_csi_token_refresh_failures_total{reason=\"issuer_timeout\"} 2",
            "cloudsigma_csi_token_refresh_failures_total{reason=\"namespace_missing\"} 1",
            "cloudsigma_csi_token_expiry_seconds 600.0",
            "cloudsigma_csi_token_secret_writes_total 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert_eq!(m.failures(FailureReason::IssuerTimeout), 2);
        assert_eq!(m.failures(FailureReason::KubeError), 0);
    }

    #[test]
    fn expiry_is_never_negative() {
        let m = Metrics::new();
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        m.record_expiry(Some(Timestamp::from_second(1_699_999_000).unwrap()), now);
        assert_eq!(m.expiry_seconds(), 0.0);
        m.record_expiry(None, now);
        assert_eq!(m.expiry_seconds(), 0.0);
    }
}
