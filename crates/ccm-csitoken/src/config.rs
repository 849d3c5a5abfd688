//! Settings of the CSI token controller, their defaults and their validation.

use std::time::Duration;

use crate::{Backoff, Error, Result, Schedule};

/// Default namespace of the Secret.
pub const DEFAULT_NAMESPACE: &str = "cloudsigma-csi";
/// Default name of the Secret.
pub const DEFAULT_SECRET_NAME: &str = "cloudsigma-token";
/// Default longest time between two checks of the token (`--csi-token-refresh-interval`).
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(300);
/// Default least lifetime a reader of the mounted file must still find in the token it reads
/// (covers reader-side caching, clock skew and a request in flight).
pub const DEFAULT_MARGIN: Duration = Duration::from_secs(90);
/// Default time the kubelet may need to bring a Secret change into a mounted volume (its sync period
/// of about 60 s plus its cache delay).
pub const DEFAULT_PROPAGATION: Duration = Duration::from_secs(90);
/// Default jitter: a check happens up to this fraction of the wait EARLIER than scheduled.
pub const DEFAULT_JITTER: f64 = 0.1;
/// Default shortest wait between two checks (stops busy loops when the token is short-lived).
pub const DEFAULT_MIN_DELAY: Duration = Duration::from_secs(5);
/// Default first retry delay after a failure.
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_secs(5);
/// Default cap of the retry delay after repeated failures.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(120);
/// `reportingController` of the Events this controller emits.
pub const EVENT_REPORTER: &str = "cloudsigma-ccm";

/// Settings of a [`CsiTokenController`](crate::CsiTokenController). Start from
/// [`Config::default`] and override what the flags set.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Namespace of the Secret (`--csi-token-namespace`, default `cloudsigma-csi`).
    pub namespace: String,
    /// Name of the Secret (`--csi-token-secret-name`, default `cloudsigma-token`).
    pub secret_name: String,
    /// Longest time between two checks of the token (`--csi-token-refresh-interval`, default 5 min).
    pub refresh_interval: Duration,
    /// Least lifetime a reader must still find in the token it reads from the mounted file.
    pub margin: Duration,
    /// Time the kubelet may need to propagate a Secret change to mounted volumes.
    pub propagation: Duration,
    /// Create the namespace when it is missing (`--csi-token-create-namespace`, default false).
    pub create_namespace: bool,
    /// Fraction in `[0, 1)` by which each wait is randomly shortened (never lengthened).
    pub jitter: f64,
    /// Shortest wait between two checks after a successful pass (default 5 s; a shorter
    /// `refresh_interval` lowers it to that).
    pub min_delay: Duration,
    /// First retry delay after a failure; doubles per consecutive failure.
    pub backoff_min: Duration,
    /// Cap of the retry delay.
    pub backoff_max: Duration,
    /// `reportingInstance` of emitted Events (e.g. the pod name); `None` leaves it unset.
    pub reporter_instance: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            secret_name: DEFAULT_SECRET_NAME.to_owned(),
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            margin: DEFAULT_MARGIN,
            propagation: DEFAULT_PROPAGATION,
            create_namespace: false,
            jitter: DEFAULT_JITTER,
            min_delay: DEFAULT_MIN_DELAY,
            backoff_min: DEFAULT_BACKOFF_MIN,
            backoff_max: DEFAULT_BACKOFF_MAX,
            reporter_instance: None,
        }
    }
}

impl Config {
    /// Checks every setting; the error names the first bad field.
    pub fn validate(&self) -> Result<()> {
        check_label("namespace", &self.namespace)?;
        check_subdomain("secret_name", &self.secret_name)?;
        if self.refresh_interval.is_zero() {
            return Err(Error::config("refresh_interval", "must be greater than zero"));
        }
        if self.min_delay.is_zero() {
            return Err(Error::config("min_delay", "must be greater than zero"));
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(Error::config(
                "jitter",
                format!("{} is not a fraction in [0, 1)", self.jitter),
            ));
        }
        if self.backoff_min.is_zero() {
            return Err(Error::config("backoff_min", "must be greater than zero"));
        }
        if self.backoff_max < self.backoff_min {
            return Err(Error::config(
                "backoff_max",
                "must not be shorter than backoff_min",
            ));
        }
        if let Some(instance) = &self.reporter_instance
            && (instance.is_empty() || instance.len() > 128)
        {
            return Err(Error::config(
                "reporter_instance",
                "must be 1 to 128 characters when set",
            ));
        }
        Ok(())
    }

    /// The refresh schedule these settings describe.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            refresh_interval: self.refresh_interval,
            margin: self.margin,
            propagation: self.propagation,
            jitter: self.jitter,
            min_delay: self.min_delay.min(self.refresh_interval),
        }
    }

    /// The retry backoff these settings describe.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            min: self.backoff_min,
            max: self.backoff_max,
            jitter: self.jitter,
        }
    }
}

/// RFC 1123 label: namespace names.
fn check_label(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > 63 {
        return Err(Error::config(
            field,
            format!("{value:?} must be 1 to 63 characters"),
        ));
    }
    if !is_label(value) {
        return Err(Error::config(
            field,
            format!(
                "{value:?} is not a valid name: use lower-case letters, digits and '-', starting and ending \
                 with a letter or digit"
            ),
        ));
    }
    Ok(())
}

/// RFC 1123 subdomain: Secret names.
fn check_subdomain(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > 253 {
        return Err(Error::config(
            field,
            format!("{value:?} must be 1 to 253 characters"),
        ));
    }
    if !value.split('.').all(is_label) {
        return Err(Error::config(
            field,
            format!(
                "{value:?} is not a valid name: use lower-case letters, digits, '-' and '.', each part starting \
                 and ending with a letter or digit"
            ),
        ));
    }
    Ok(())
}

fn is_label(part: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !part.is_empty()
        && part.len() <= 63
        && part.chars().all(|c| alnum(c) || c == '-')
        && part.starts_with(alnum)
        && part.ends_with(alnum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.namespace, "cloudsigma-csi");
        assert_eq!(c.secret_name, "cloudsigma-token");
        assert_eq!(c.refresh_interval, Duration::from_secs(300));
        assert_eq!(c.margin + c.propagation, Duration::from_secs(180));
        assert!(!c.create_namespace);
    }

    #[test]
    fn each_bad_setting_is_named() {
        let cases: Vec<(&str, Config)> = vec![
            (
                "namespace",
                Config {
                    namespace: "".into(),
                    ..Config::default()
                },
            ),
            (
                "namespace",
                Config {
                    namespace: "Cloud_Sigma".into(),
                    ..Config::default()
                },
            ),
            (
                "namespace",
                Config {
                    namespace: "a.b".into(),
                    ..Config::default()
                },
            ),
            (
                "namespace",
                Config {
                    namespace: "x".repeat(64),
                    ..Config::default()
                },
            ),
            (
                "secret_name",
                Config {
                    secret_name: "-token".into(),
                    ..Config::default()
                },
            ),
            (
                "secret_name",
                Config {
                    secret_name: "a..b".into(),
                    ..Config::default()
                },
            ),
            (
                "refresh_interval",
                Config {
                    refresh_interval: Duration::ZERO,
                    ..Config::default()
                },
            ),
            (
                "min_delay",
                Config {
                    min_delay: Duration::ZERO,
                    ..Config::default()
                },
            ),
            (
                "jitter",
                Config {
                    jitter: 1.0,
                    ..Config::default()
                },
            ),
            (
                "jitter",
                Config {
                    jitter: -0.1,
                    ..Config::default()
                },
            ),
            (
                "jitter",
                Config {
                    jitter: f64::NAN,
                    ..Config::default()
                },
            ),
            (
                "backoff_min",
                Config {
                    backoff_min: Duration::ZERO,
                    ..Config::default()
                },
            ),
            (
                "backoff_max",
                Config {
                    backoff_max: Duration::from_secs(1),
                    ..Config::default()
                },
            ),
            (
                "reporter_instance",
                Config {
                    reporter_instance: Some(String::new()),
                    ..Config::default()
                },
            ),
        ];
        for (field, config) in cases {
            let err = config.validate().expect_err(field);
            match &err {
                Error::Config { field: named, .. } => assert_eq!(*named, field, "{err}"),
                other => panic!("expected a config error for {field}, got {other}"),
            }
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    #[test]
    fn a_short_interval_lowers_the_minimum_delay() {
        let c = Config {
            refresh_interval: Duration::from_secs(2),
            ..Config::default()
        };
        c.validate().unwrap();
        assert_eq!(c.schedule().min_delay, Duration::from_secs(2));
        assert_eq!(Config::default().schedule().min_delay, Duration::from_secs(5));
    }

    #[test]
    fn dotted_secret_names_are_allowed() {
        let c = Config {
            secret_name: "cloudsigma.token-1".into(),
            ..Config::default()
        };
        c.validate().unwrap();
    }
}
