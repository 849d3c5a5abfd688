//! When to check the token again and when the stored one must be replaced: pure functions of the
//! stored token's expiry, the current time and the settings. No clock is read here; randomness comes in
//! as a `sample` in `[0, 1)`, so every decision is reproducible in tests.
//!
//! Rule: a token is *due* when `expires_at - now <= margin + propagation` (its successor must be in the
//! Secret by then so that, after the kubelet took up to `propagation` to update the mounted file, the
//! reader still finds at least `margin` of lifetime). Otherwise the next check is at
//! `min(now + refresh_interval, expires_at - margin - propagation)`, shortened by up to `jitter` of the
//! wait (jitter only ever makes a check EARLIER), or just after the source said it will hand out a new
//! token, whichever comes first; never sooner than `min_delay` after `now`.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// How long after the source's announced renewal instant the controller asks it again, so that the
/// source has certainly turned its cached token over.
pub const RENEWAL_GRACE: Duration = Duration::from_millis(500);

/// The refresh settings (see [`Config`](crate::Config) for their meaning and defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// Longest wait between two checks.
    pub refresh_interval: Duration,
    /// Least lifetime a reader must find left in the token it reads.
    pub margin: Duration,
    /// Time the kubelet may need to bring a Secret change into the mounted file.
    pub propagation: Duration,
    /// Fraction in `[0, 1)` by which a wait is randomly shortened.
    pub jitter: f64,
    /// Shortest wait between two checks.
    pub min_delay: Duration,
}

/// How usable the token stored in the Secret is at a given instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// No token is stored, or its expiry cannot be read.
    Missing,
    /// The token must be replaced now: it has `left` (possibly negative: expired) of lifetime, which
    /// is not more than `margin + propagation`.
    Due {
        /// Lifetime left; negative when already expired.
        left: SignedDuration,
    },
    /// The token can stay; it has `left` of lifetime.
    Fresh {
        /// Lifetime left.
        left: Duration,
    },
}

impl Freshness {
    /// Whether the stored token must be replaced now.
    pub fn must_replace(self) -> bool {
        !matches!(self, Self::Fresh { .. })
    }
}

/// What determined the time of the next check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckCause {
    /// The refresh interval.
    Interval,
    /// The stored token's safety point (`expires_at - margin - propagation`).
    SafetyPoint,
    /// The source's announced renewal of its token.
    SourceRenewal,
    /// The minimum delay (the stored token is already due, or a computed wait was shorter).
    MinDelay,
}

/// When to check next, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextCheck {
    /// The wait from `now`.
    pub delay: Duration,
    /// `now + delay`.
    pub at: Timestamp,
    /// What determined it.
    pub cause: CheckCause,
}

impl Schedule {
    /// `margin + propagation`: a stored token with this much lifetime left or less is due.
    pub fn threshold(&self) -> Duration {
        self.margin.saturating_add(self.propagation)
    }

    /// The last instant at which a token expiring at `expires_at` may still be replaced in time:
    /// `expires_at - margin - propagation`.
    pub fn safety_point(&self, expires_at: Timestamp) -> Timestamp {
        sub(expires_at, self.threshold())
    }

    /// How usable a stored token expiring at `expires_at` (`None`: no usable token) is at `now`.
    pub fn freshness(&self, expires_at: Option<Timestamp>, now: Timestamp) -> Freshness {
        let Some(expires_at) = expires_at else {
            return Freshness::Missing;
        };
        let left = expires_at.duration_since(now);
        match Duration::try_from(left) {
            Ok(left) if left > self.threshold() => Freshness::Fresh { left },
            _ => Freshness::Due { left },
        }
    }

    /// When to check again after a successful pass that left a token expiring at `stored` in the
    /// Secret; `renew_at` is when the source said it will hand out a newer token (if it said).
    /// `sample` is a random number in `[0, 1)` for the jitter.
    ///
    /// Guarantees: `min_delay <= delay <= refresh_interval`; while the stored token is fresh and its
    /// safety point is at least `min_delay` away, `at` is not later than the safety point.
    pub fn next_check(
        &self,
        stored: Option<Timestamp>,
        renew_at: Option<Timestamp>,
        now: Timestamp,
        sample: f64,
    ) -> NextCheck {
        let renewal = renew_at
            .filter(|r| *r > now)
            .and_then(|r| Duration::try_from(r.duration_since(now)).ok())
            .map(|d| d.saturating_add(RENEWAL_GRACE));
        let (base, mut cause) = match self.freshness(stored, now) {
            Freshness::Fresh { left } => {
                let to_safety = left.saturating_sub(self.threshold());
                if to_safety < self.refresh_interval {
                    (to_safety, CheckCause::SafetyPoint)
                } else {
                    (self.refresh_interval, CheckCause::Interval)
                }
            }
            // The stored token is due but the source has nothing newer before its renewal: wait for
            // that (bounded by the interval) rather than asking it again and again.
            Freshness::Due { .. } | Freshness::Missing if renewal.is_some() => {
                (self.refresh_interval, CheckCause::Interval)
            }
            // Due, and no renewal announced: the source may have a newer token any moment.
            Freshness::Due { .. } | Freshness::Missing => (Duration::ZERO, CheckCause::MinDelay),
        };
        let mut delay = shorten(base, self.jitter, sample);
        if let Some(renewal) = renewal
            && renewal < delay
        {
            delay = renewal;
            cause = CheckCause::SourceRenewal;
        }
        if delay < self.min_delay {
            delay = self.min_delay;
            cause = CheckCause::MinDelay;
        }
        NextCheck {
            delay,
            at: add(now, delay),
            cause,
        }
    }
}

/// Capped exponential backoff with jitter for consecutive failures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub min: Duration,
    /// Cap of the delay.
    pub max: Duration,
    /// Fraction in `[0, 1)` by which a delay is randomly shortened.
    pub jitter: f64,
}

impl Backoff {
    /// The wait after the `failures`-th consecutive failure (1 = first): `min * 2^(failures-1)`,
    /// capped at `max`, shortened by up to `jitter` of itself.
    pub fn delay(&self, failures: u32, sample: f64) -> Duration {
        let doublings = failures.saturating_sub(1).min(32);
        let base = self.min.saturating_mul(1u32 << doublings.min(31)).min(self.max);
        let base = if doublings >= 32 { self.max } else { base };
        shorten(base, self.jitter, sample)
    }
}

/// `d` shortened by `jitter * sample` of itself; out-of-range inputs are clamped.
fn shorten(d: Duration, jitter: f64, sample: f64) -> Duration {
    let clamp01 = |x: f64| if x.is_finite() { x.clamp(0.0, 1.0) } else { 0.0 };
    let factor = 1.0 - clamp01(jitter) * clamp01(sample);
    d.mul_f64(factor.clamp(0.0, 1.0))
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

fn sub(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_sub(d).unwrap_or(Timestamp::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    /// The defaults: 5 min interval, 90 s margin, 90 s propagation, 10 % jitter, 5 s minimum.
    fn defaults() -> Schedule {
        crate::Config::default().schedule()
    }

    fn no_jitter() -> Schedule {
        Schedule {
            jitter: 0.0,
            ..defaults()
        }
    }

    #[test]
    fn freshness_table() {
        let sch = defaults(); // threshold 180 s
        let cases: &[(Option<i64>, i64, Freshness)] = &[
            (None, 0, Freshness::Missing),
            (Some(900), 0, Freshness::Fresh { left: s(900) }),
            (Some(900), 719, Freshness::Fresh { left: s(181) }),
            (
                Some(900),
                720,
                Freshness::Due {
                    left: SignedDuration::from_secs(180),
                },
            ),
            (
                Some(900),
                800,
                Freshness::Due {
                    left: SignedDuration::from_secs(100),
                },
            ),
            (
                Some(900),
                900,
                Freshness::Due {
                    left: SignedDuration::ZERO,
                },
            ),
            (
                Some(900),
                960,
                Freshness::Due {
                    left: SignedDuration::from_secs(-60),
                },
            ),
        ];
        for (expires, now, want) in cases {
            let got = sch.freshness(expires.map(t), t(*now));
            assert_eq!(got, *want, "expires {expires:?} now {now}");
            assert_eq!(got.must_replace(), !matches!(want, Freshness::Fresh { .. }));
        }
    }

    /// (stored expiry, source renewal, now, sample) -> (delay, cause), all in seconds from t(0).
    #[test]
    fn next_check_table_without_jitter() {
        let sch = no_jitter();
        type Case = (Option<i64>, Option<i64>, i64, f64, CheckCause);
        let cases: &[Case] = &[
            // 900 s token just written, source renews at 600 s: the interval comes first.
            (Some(900), Some(600), 0, 300.0, CheckCause::Interval),
            // Half-way: the source's renewal (+0.5 s grace) comes before the interval.
            (Some(900), Some(600), 400, 200.5, CheckCause::SourceRenewal),
            // No renewal known: the safety point (900 - 180 = 720) comes before the interval.
            (Some(900), None, 500, 220.0, CheckCause::SafetyPoint),
            (Some(900), None, 0, 300.0, CheckCause::Interval),
            // Long-lived token: always the interval.
            (Some(3600), Some(2400), 0, 300.0, CheckCause::Interval),
            // Safety point closer than the minimum delay: the minimum wins.
            (Some(900), None, 718, 5.0, CheckCause::MinDelay),
            // Due with no renewal known: ask again after the minimum delay.
            (Some(900), None, 720, 5.0, CheckCause::MinDelay),
            (None, None, 0, 5.0, CheckCause::MinDelay),
            // Due (60 s token, far below the 180 s threshold) but the source renews at 40 s: wait for it.
            (Some(60), Some(40), 0, 40.5, CheckCause::SourceRenewal),
            // ...and its renewal is past (source will hand out a new one now): minimum delay.
            (Some(60), Some(40), 45, 5.0, CheckCause::MinDelay),
            // Renewal 2 s away: the minimum delay bounds it.
            (Some(60), Some(40), 38, 5.0, CheckCause::MinDelay),
        ];
        for (stored, renew, now, delay, cause) in cases {
            let got = sch.next_check(stored.map(t), renew.map(t), t(*now), 0.5);
            assert_eq!(
                (got.delay, got.cause),
                (Duration::from_secs_f64(*delay), *cause),
                "stored {stored:?} renew {renew:?} now {now}"
            );
            assert_eq!(got.at, t(*now) + got.delay);
        }
    }

    #[test]
    fn jitter_only_makes_checks_earlier() {
        let sch = defaults(); // 10 %
        // Interval-bound: between 270 s and 300 s.
        assert_eq!(sch.next_check(Some(t(900)), None, t(0), 0.0).delay, s(300));
        assert_eq!(sch.next_check(Some(t(900)), None, t(0), 0.5).delay, s(285));
        let early = sch.next_check(Some(t(900)), None, t(0), 0.999_999).delay;
        assert!(early > s(270) - Duration::from_millis(1) && early <= s(270) + Duration::from_millis(1));
        // Safety-point-bound (720 - 500 = 220 s): between 198 s and 220 s.
        assert_eq!(sch.next_check(Some(t(900)), None, t(500), 1.0).delay, s(198));
        assert_eq!(sch.next_check(Some(t(900)), None, t(500), 0.0).delay, s(220));
    }

    #[test]
    fn bounds_hold_for_many_inputs() {
        let sch = defaults();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let now = t((rnd() % 5000) as i64);
            let stored = (rnd() % 4 != 0).then(|| t((rnd() % 6000) as i64));
            let renew = (rnd() % 2 == 0).then(|| t((rnd() % 6000) as i64));
            let sample = (rnd() % 1000) as f64 / 1000.0;
            let next = sch.next_check(stored, renew, now, sample);
            assert!(next.delay >= sch.min_delay, "{next:?}");
            assert!(next.delay <= sch.refresh_interval, "{next:?}");
            if let Some(exp) = stored
                && let Freshness::Fresh { .. } = sch.freshness(stored, now)
            {
                let safety = sch.safety_point(exp);
                if safety.duration_since(now) >= SignedDuration::try_from(sch.min_delay).unwrap() {
                    assert!(next.at <= safety, "{next:?} after safety point {safety}");
                }
            }
        }
    }

    /// A 900 s token refreshed by a cache at 600 s, checked with the defaults: the Secret gets the new
    /// token at 600.5 s, with 299.5 s of lifetime left on the old one (more than the 180 s threshold).
    #[test]
    fn timeline_of_a_fifteen_minute_token() {
        let sch = defaults();
        let mut now = t(0);
        let (expires, renew) = (t(900), t(600));
        let mut checks = Vec::new();
        while now < renew {
            let next = sch.next_check(Some(expires), Some(renew), now, 0.5);
            now = next.at;
            checks.push((now.duration_since(t(0)).as_secs_f64(), next.cause));
        }
        assert_eq!(
            checks,
            vec![
                (285.0, CheckCause::Interval),
                (570.0, CheckCause::Interval),
                (600.5, CheckCause::SourceRenewal)
            ]
        );
        assert_eq!(
            sch.freshness(Some(expires), now),
            Freshness::Fresh {
                left: Duration::from_millis(299_500)
            }
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff {
            min: s(5),
            max: s(120),
            jitter: 0.0,
        };
        let delays: Vec<u64> = (1..=8).map(|n| b.delay(n, 0.7).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 120, 120, 120]);
        assert_eq!(b.delay(0, 0.0), s(5));
        assert_eq!(b.delay(u32::MAX, 0.0), s(120));
        let jittered = Backoff { jitter: 0.5, ..b };
        assert_eq!(jittered.delay(3, 1.0), s(10));
        assert_eq!(jittered.delay(3, 0.0), s(20));
    }

    #[test]
    fn out_of_range_samples_are_clamped() {
        let sch = defaults();
        assert_eq!(sch.next_check(Some(t(900)), None, t(0), f64::NAN).delay, s(300));
        assert_eq!(sch.next_check(Some(t(900)), None, t(0), -3.0).delay, s(300));
        assert_eq!(sch.next_check(Some(t(900)), None, t(0), 7.0).delay, s(270));
    }
}
