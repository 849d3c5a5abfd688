//! Client settings.

use std::{fmt, sync::Arc, time::Duration};

use crate::{Error, NoopObserver, RequestObserver, Result};

/// Settings of a [`Client`](crate::Client). `Default` gives production values.
#[derive(Clone)]
pub struct ClientOptions {
    /// Time limit of one HTTP attempt, body included (default 30 s).
    pub timeout: Duration,
    /// Time limit for establishing a connection (default 10 s).
    pub connect_timeout: Duration,
    /// Attempts per request including the first (default 4). A 401 retry is extra and happens once.
    pub max_attempts: u32,
    /// First retry delay; doubles per retry, with jitter (default 200 ms).
    pub backoff_min: Duration,
    /// Largest retry delay (default 5 s); also caps a `Retry-After` header.
    pub backoff_max: Duration,
    /// Objects per page when listing (default 100).
    pub page_size: u32,
    /// First delay between polls of a wait (default 100 ms); grows with jitter up to `poll_max`.
    pub poll_min: Duration,
    /// Largest delay between polls of a wait (default 2 s).
    pub poll_max: Duration,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Sees every attempt (default: no-op).
    pub observer: Arc<dyn RequestObserver>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_attempts: 4,
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            page_size: 100,
            poll_min: Duration::from_millis(100),
            poll_max: Duration::from_secs(2),
            user_agent: concat!("cloudsigma-k8s-cs-api/", env!("CARGO_PKG_VERSION")).to_owned(),
            observer: Arc::new(NoopObserver),
        }
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("backoff_min", &self.backoff_min)
            .field("backoff_max", &self.backoff_max)
            .field("page_size", &self.page_size)
            .field("poll_min", &self.poll_min)
            .field("poll_max", &self.poll_max)
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

impl ClientOptions {
    /// Checks every value; the error names the offending field.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("timeout", self.timeout),
            ("connect_timeout", self.connect_timeout),
            ("poll_min", self.poll_min),
            ("poll_max", self.poll_max),
        ];
        for (field, value) in positive {
            if value.is_zero() {
                return Err(Error::Config(format!(
                    "option `{field}` must be greater than zero"
                )));
            }
        }
        if self.max_attempts == 0 {
            return Err(Error::Config("option `max_attempts` must be at least 1".into()));
        }
        if self.page_size == 0 {
            return Err(Error::Config("option `page_size` must be at least 1".into()));
        }
        if self.backoff_min > self.backoff_max {
            return Err(Error::Config(
                "option `backoff_min` must not exceed `backoff_max`".into(),
            ));
        }
        if self.poll_min > self.poll_max {
            return Err(Error::Config(
                "option `poll_min` must not exceed `poll_max`".into(),
            ));
        }
        if self.user_agent.trim().is_empty() {
            return Err(Error::Config("option `user_agent` is empty".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_the_field() {
        ClientOptions::default().validate().unwrap();
        let o = ClientOptions::default();
        assert_eq!(
            (o.timeout, o.max_attempts, o.page_size),
            (Duration::from_secs(30), 4, 100)
        );
        let cases: [(ClientOptions, &str); 5] = [
            (
                ClientOptions {
                    timeout: Duration::ZERO,
                    ..Default::default()
                },
                "`timeout`",
            ),
            (
                ClientOptions {
                    max_attempts: 0,
                    ..Default::default()
                },
                "`max_attempts`",
            ),
            (
                ClientOptions {
                    page_size: 0,
                    ..Default::default()
                },
                "`page_size`",
            ),
            (
                ClientOptions {
                    backoff_min: Duration::from_secs(9),
                    ..Default::default()
                },
                "`backoff_min`",
            ),
            (
                ClientOptions {
                    user_agent: " ".into(),
                    ..Default::default()
                },
                "`user_agent`",
            ),
        ];
        for (options, field) in cases {
            let text = options.validate().unwrap_err().to_string();
            assert!(text.contains(field), "{text}");
        }
    }
}
