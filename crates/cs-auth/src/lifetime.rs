//! When a cached token must be replaced: the refresh rule shared by all three token kinds.

use std::time::Duration;

/// Lifetime assumed when a token response has no `expires_in` or `expires_in: 0` (15 minutes, the
/// value CloudSigma's tokens have been observed with).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// The lifetime of a token given the `expires_in` its issuer reported.
pub fn lifetime_from_expires_in(expires_in: Option<u64>) -> Duration {
    match expires_in {
        Some(secs) if secs > 0 => Duration::from_secs(secs),
        _ => DEFAULT_TOKEN_LIFETIME,
    }
}

/// How long after issue a token of `lifetime` stays in a cache whose expiry buffer is `buffer`:
/// `min(lifetime - buffer, lifetime * 2/3)`, where a buffer as long as the lifetime or longer leaves
/// `lifetime * 2/3`.
///
/// Examples with the default 5 min buffer: a 900 s token is refreshed after 600 s, a 3600 s token
/// after 2400 s, a 60 s token after 40 s, a 3 s token after 2 s. A handed-out token thus always has
/// at least a third of its lifetime (and at least the buffer, for long lifetimes) left. The result is
/// positive for every positive lifetime.
pub fn refresh_after(lifetime: Duration, buffer: Duration) -> Duration {
    let two_thirds = lifetime.saturating_mul(2) / 3;
    match lifetime.checked_sub(buffer) {
        Some(left) if !left.is_zero() => left.min(two_thirds),
        _ => two_thirds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn refresh_points_for_known_lifetimes() {
        let buffer = s(300);
        assert_eq!(refresh_after(s(900), buffer), s(600));
        assert_eq!(refresh_after(s(3600), buffer), s(2400));
        assert_eq!(refresh_after(s(1200), buffer), s(800));
        assert_eq!(refresh_after(s(60), buffer), s(40));
        assert_eq!(refresh_after(s(300), buffer), s(200));
        assert_eq!(refresh_after(s(3), buffer), s(2));
        assert_eq!(
            refresh_after(s(1), buffer),
            Duration::from_millis(666) + Duration::from_nanos(666_666)
        );
    }

    #[test]
    fn buffer_applies_when_shorter_than_a_third() {
        assert_eq!(refresh_after(s(900), s(60)), s(600));
        assert_eq!(refresh_after(s(3600), s(60)), s(2400));
        assert_eq!(refresh_after(s(900), s(400)), s(500));
        assert_eq!(refresh_after(s(900), Duration::ZERO), s(600));
    }

    #[test]
    fn never_zero_for_a_positive_lifetime() {
        for secs in 1..2000 {
            assert!(!refresh_after(s(secs), s(300)).is_zero(), "{secs}");
            assert!(refresh_after(s(secs), s(300)) < s(secs), "{secs}");
        }
    }

    #[test]
    fn absent_or_zero_expires_in_means_fifteen_minutes() {
        assert_eq!(lifetime_from_expires_in(None), s(900));
        assert_eq!(lifetime_from_expires_in(Some(0)), s(900));
        assert_eq!(lifetime_from_expires_in(Some(3)), s(3));
    }
}
