//! Quantiles: from a cumulative histogram (as Prometheus' `histogram_quantile` does) and exactly from
//! a list of values.

/// The `q`-quantile (0..=1) of a cumulative histogram given as `(upper bound, cumulative count)` pairs
/// sorted by bound, interpolating linearly inside the bucket (the lower bound of the first bucket is
/// 0). A quantile that falls in the `+Inf` bucket returns the largest finite bound. `None` when the
/// histogram is empty.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total;
    let mut prev_bound = 0.0;
    let mut prev_count = 0.0;
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(prev_bound);
            }
            let in_bucket = count - prev_count;
            if in_bucket <= 0.0 {
                return Some(bound);
            }
            return Some(prev_bound + (bound - prev_bound) * (rank - prev_count) / in_bucket);
        }
        prev_bound = bound;
        prev_count = count;
    }
    Some(prev_bound)
}

/// The `q`-quantile (0..=1) of `values` by the nearest-rank method; `None` when empty.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

/// `ceil(n / page)`: list calls needed to read `n` objects with pages of `page` (at least 1 call).
pub fn list_calls(n: u64, page: u64) -> u64 {
    n.div_ceil(page.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantile_interpolates_inside_the_bucket() {
        // 10 observations: 4 in (0, 0.1], 4 in (0.1, 0.2], 2 in (0.2, 0.4].
        let b = [(0.1, 4.0), (0.2, 8.0), (0.4, 10.0), (f64::INFINITY, 10.0)];
        assert_eq!(histogram_quantile(0.5, &b), Some(0.125));
        assert!((histogram_quantile(0.99, &b).unwrap() - 0.39).abs() < 1e-9);
        assert_eq!(histogram_quantile(0.2, &b), Some(0.05));
    }

    #[test]
    fn histogram_quantile_in_the_inf_bucket_is_the_largest_bound() {
        let b = [(0.1, 1.0), (0.2, 1.0), (f64::INFINITY, 3.0)];
        assert_eq!(histogram_quantile(0.99, &b), Some(0.2));
        assert_eq!(histogram_quantile(0.5, &[(0.1, 0.0), (f64::INFINITY, 0.0)]), None);
        assert_eq!(histogram_quantile(0.5, &[]), None);
    }

    #[test]
    fn percentile_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(50.0));
        assert_eq!(percentile(&v, 0.99), Some(99.0));
        assert_eq!(percentile(&v, 1.0), Some(100.0));
        assert_eq!(percentile(&[3.0], 0.99), Some(3.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn list_calls_round_up_and_never_drop_to_zero() {
        assert_eq!(list_calls(1000, 100), 10);
        assert_eq!(list_calls(1001, 100), 11);
        assert_eq!(list_calls(100, 20), 5);
        assert_eq!(list_calls(0, 100), 1);
    }
}
