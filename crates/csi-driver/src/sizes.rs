//! Volume sizes: capacity ranges to whole GiB within the driver's limits.

use crate::{Error, Result, csi::CapacityRange};

/// One gibibyte.
pub const GIB: u64 = 1 << 30;

/// The sizes the driver provisions. Every size is a whole number of GiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeLimits {
    /// Smallest volume (default 1 GiB; CloudSigma's own dssd minimum is 512 MiB).
    pub min_bytes: u64,
    /// Largest volume (default 10 TiB, as the Go driver).
    pub max_bytes: u64,
    /// Size of a volume created without a capacity range (default 10 GiB).
    pub default_bytes: u64,
}

impl Default for SizeLimits {
    fn default() -> Self {
        Self {
            min_bytes: GIB,
            max_bytes: 10 * 1024 * GIB,
            default_bytes: 10 * GIB,
        }
    }
}

impl SizeLimits {
    /// Checks the limits themselves: whole GiB, `min <= default <= max`, `min >= 1 GiB`.
    pub fn validate(&self) -> Result<()> {
        for (field, value) in [
            ("min volume size", self.min_bytes),
            ("max volume size", self.max_bytes),
            ("default volume size", self.default_bytes),
        ] {
            if value == 0 || value % GIB != 0 {
                return Err(Error::InvalidArgument(format!(
                    "{field} must be a positive whole number of GiB, not {value} bytes"
                )));
            }
        }
        if !(self.min_bytes <= self.default_bytes && self.default_bytes <= self.max_bytes) {
            return Err(Error::InvalidArgument(format!(
                "volume size limits must satisfy min ({}) <= default ({}) <= max ({})",
                self.min_bytes, self.default_bytes, self.max_bytes
            )));
        }
        Ok(())
    }

    /// The size to provision for `range`:
    /// - `required_bytes` rounded up to whole GiB, at least `min_bytes`;
    /// - without `required_bytes`: `default_bytes`, lowered to `limit_bytes` rounded down to whole GiB
    ///   when the limit is smaller;
    /// - OUT_OF_RANGE when the result exceeds `limit_bytes` or `max_bytes`, when the limit is below
    ///   `min_bytes`, or when a value is negative or `limit < required`.
    pub fn volume_bytes(&self, range: Option<&CapacityRange>) -> Result<u64> {
        let (required, limit) = match range {
            None => (0, 0),
            Some(r) => (
                non_negative("required_bytes", r.required_bytes)?,
                non_negative("limit_bytes", r.limit_bytes)?,
            ),
        };
        if limit > 0 && required > limit {
            return Err(Error::OutOfRange(format!(
                "capacity_range.limit_bytes ({limit}) is smaller than required_bytes ({required})"
            )));
        }
        let mut size = if required > 0 {
            round_up_gib(required)
        } else {
            self.default_bytes
        };
        size = size.max(self.min_bytes);
        if limit > 0 && size > limit {
            if required == 0 && round_down_gib(limit) >= self.min_bytes {
                size = round_down_gib(limit);
            } else {
                return Err(Error::OutOfRange(format!(
                    "volumes are whole GiB of at least {} GiB: {} bytes would be needed, more than \
                     capacity_range.limit_bytes ({limit})",
                    self.min_bytes / GIB,
                    size
                )));
            }
        }
        if size > self.max_bytes {
            return Err(Error::OutOfRange(format!(
                "{size} bytes exceed the largest volume this driver creates ({} bytes, {} GiB)",
                self.max_bytes,
                self.max_bytes / GIB
            )));
        }
        Ok(size)
    }
}

/// Whether an existing volume of `size` bytes satisfies `range` (for idempotent CreateVolume).
pub fn satisfies(size: u64, range: Option<&CapacityRange>) -> bool {
    let Some(range) = range else { return true };
    let required = u64::try_from(range.required_bytes).unwrap_or(0);
    let limit = u64::try_from(range.limit_bytes).unwrap_or(0);
    size >= required && (limit == 0 || size <= limit)
}

fn non_negative(field: &str, value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| {
        Error::OutOfRange(format!(
            "capacity_range.{field} must not be negative (got {value})"
        ))
    })
}

/// `bytes` rounded up to a whole GiB.
pub fn round_up_gib(bytes: u64) -> u64 {
    bytes.div_ceil(GIB).saturating_mul(GIB)
}

fn round_down_gib(bytes: u64) -> u64 {
    bytes / GIB * GIB
}

/// A size as the `i64` the CSI messages carry (saturating; sizes never come near the limit).
pub fn to_i64(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(required: i64, limit: i64) -> CapacityRange {
        CapacityRange {
            required_bytes: required,
            limit_bytes: limit,
        }
    }

    fn size(required: i64, limit: i64) -> Result<u64> {
        SizeLimits::default().volume_bytes(Some(&range(required, limit)))
    }

    #[test]
    fn required_bytes_round_up_to_whole_gib_with_a_1_gib_minimum() {
        let gib = GIB as i64;
        assert_eq!(size(10 * gib, 0).unwrap(), 10 * GIB);
        assert_eq!(size(10 * gib, 10 * gib).unwrap(), 10 * GIB);
        assert_eq!(size(1, 0).unwrap(), GIB);
        assert_eq!(size(gib + 1, 0).unwrap(), 2 * GIB);
        assert_eq!(size(512 << 20, 0).unwrap(), GIB);
        assert_eq!(SizeLimits::default().volume_bytes(None).unwrap(), 10 * GIB);
        assert_eq!(size(0, 0).unwrap(), 10 * GIB);
    }

    #[test]
    fn a_limit_alone_lowers_the_default_and_is_otherwise_honoured() {
        let gib = GIB as i64;
        assert_eq!(size(0, 5 * gib).unwrap(), 5 * GIB);
        assert_eq!(size(0, 5 * gib + 7).unwrap(), 5 * GIB);
        assert_eq!(size(0, 20 * gib).unwrap(), 10 * GIB);
        assert!(matches!(size(0, 512 << 20), Err(Error::OutOfRange(_))));
        // 1.5 GiB exactly cannot be made of whole GiB.
        let e = size(3 * gib / 2, 3 * gib / 2).unwrap_err();
        assert!(
            matches!(e, Error::OutOfRange(_)) && e.to_string().contains("limit_bytes"),
            "{e}"
        );
    }

    #[test]
    fn bad_ranges_and_oversized_requests_are_out_of_range() {
        let gib = GIB as i64;
        for (required, limit) in [(-1, 0), (0, -1), (2 * gib, gib), (10241 * gib, 0)] {
            assert!(
                matches!(size(required, limit), Err(Error::OutOfRange(_))),
                "{required} {limit}"
            );
        }
        assert_eq!(size(10240 * gib, 0).unwrap(), 10240 * GIB);
    }

    #[test]
    fn existing_sizes_are_checked_against_the_range() {
        let gib = GIB as i64;
        assert!(satisfies(10 * GIB, Some(&range(10 * gib, 0))));
        assert!(satisfies(10 * GIB, Some(&range(10 * gib, 10 * gib))));
        assert!(!satisfies(10 * GIB, Some(&range(20 * gib, 0))));
        assert!(!satisfies(10 * GIB, Some(&range(0, 5 * gib))));
        assert!(satisfies(10 * GIB, None));
    }

    #[test]
    fn limits_are_validated() {
        SizeLimits::default().validate().unwrap();
        let bad = SizeLimits {
            min_bytes: GIB + 1,
            ..SizeLimits::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("min volume size")
        );
        let bad = SizeLimits {
            default_bytes: 20 * 1024 * GIB,
            ..SizeLimits::default()
        };
        assert!(bad.validate().is_err());
    }
}
