//! Bounded retries of one step with exponential backoff and jitter (delays from `backon`).

use std::future::Future;

use backon::{BackoffBuilder, ExponentialBuilder};
use tracing::warn;

use crate::{Result, RetryPolicy, Step};

/// Runs `attempt` until it succeeds, fails with a non-retryable error, or `policy.attempts` requests
/// were made. The returned error records how many attempts were made.
pub(crate) async fn with_retries<T, F, Fut>(policy: &RetryPolicy, step: Step, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let retries = usize::try_from(policy.attempts.saturating_sub(1)).unwrap_or(usize::MAX);
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(retries)
        .with_jitter()
        .build();
    let mut made = 1u32;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if error.is_retryable() => match delays.next() {
                Some(delay) => {
                    warn!(
                        step = step.as_str(),
                        attempt = made,
                        of = policy.attempts,
                        retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        %error,
                        "transient failure, retrying"
                    );
                    tokio::time::sleep(delay).await;
                    made += 1;
                }
                None => return Err(error.with_attempts(made)),
            },
            Err(error) => return Err(error.with_attempts(made)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::{AtomicU32, Ordering},
        time::Duration,
    };

    use super::*;
    use crate::Error;

    fn policy(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        }
    }

    fn http(status: u16) -> Error {
        Error::Impersonation {
            step: Step::Impersonate,
            status: Some(status),
            request_id: None,
            message: String::new(),
            attempts: 1,
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_up_to_the_bound() {
        let calls = AtomicU32::new(0);
        let r: Result<()> = with_retries(&policy(3), Step::Impersonate, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(http(504))
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let e = r.unwrap_err();
        assert!(e.to_string().contains("after 3 attempts"), "{e}");
    }

    #[tokio::test]
    async fn success_after_a_transient_error() {
        let calls = AtomicU32::new(0);
        let r = with_retries(&policy(3), Step::Rpt, || async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(http(503))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn refusals_are_not_retried() {
        for status in [400, 401, 403] {
            let calls = AtomicU32::new(0);
            let r: Result<()> = with_retries(&policy(5), Step::Rpt, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(http(status))
            })
            .await;
            assert_eq!(calls.load(Ordering::SeqCst), 1, "{status}");
            assert_eq!(r.unwrap_err().status(), Some(status));
        }
    }

    #[tokio::test]
    async fn one_attempt_means_no_retry() {
        let calls = AtomicU32::new(0);
        let _ = with_retries::<(), _, _>(&policy(1), Step::Rpt, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(http(500))
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
