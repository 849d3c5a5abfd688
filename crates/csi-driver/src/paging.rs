//! Paging tokens of ListVolumes and ListSnapshots.
//!
//! Entries are listed in ascending uuid order; a token is the uuid of the first entry of the next page.
//! Resuming at "the first uuid >= token" keeps paging correct when entries are created or deleted
//! between calls (an offset would skip or repeat entries). Anything that is not a uuid is rejected with
//! ABORTED, as the spec requires for an invalid `starting_token`.

use crate::{Error, Result, validate::is_cloud_uuid};

/// Checks a request's paging fields before any listing: ABORTED for a token this driver cannot have
/// issued, INVALID_ARGUMENT for a negative `max_entries`.
pub fn check(starting_token: &str, max_entries: i32) -> Result<()> {
    if max_entries < 0 {
        return Err(Error::InvalidArgument(format!(
            "max_entries must not be negative (got {max_entries})"
        )));
    }
    if !starting_token.is_empty() && !is_cloud_uuid(starting_token) {
        return Err(Error::Aborted(format!(
            "starting_token {starting_token:?} is not a token this driver issued; list again from the start"
        )));
    }
    Ok(())
}

/// One page of `items` (sorted by `key`) starting at `starting_token`, at most `max_entries` long
/// (0 = all), and the token of the next page (empty when this is the last).
pub fn page<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> &str,
    starting_token: &str,
    max_entries: i32,
) -> Result<(Vec<T>, String)> {
    check(starting_token, max_entries)?;
    let max = usize::try_from(max_entries).unwrap_or(0);
    items.sort_by(|a, b| key(a).cmp(key(b)));
    let start = if starting_token.is_empty() {
        0
    } else {
        items.partition_point(|item| key(item) < starting_token)
    };
    let mut rest: Vec<T> = items.into_iter().skip(start).collect();
    if max == 0 || rest.len() <= max {
        return Ok((rest, String::new()));
    }
    let next = key(&rest[max]).to_owned();
    rest.truncate(max);
    Ok((rest, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n)
            .rev()
            .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
            .collect()
    }

    #[test]
    fn pages_walk_every_entry_once_in_uuid_order() {
        let all = ids(7);
        let (mut seen, mut token) = (Vec::new(), String::new());
        loop {
            let (page, next) = page(all.clone(), |s| s.as_str(), &token, 3).unwrap();
            assert!(page.len() <= 3);
            seen.extend(page);
            if next.is_empty() {
                break;
            }
            token = next;
        }
        let mut expected = all;
        expected.sort();
        assert_eq!(seen, expected);
    }

    #[test]
    fn zero_max_entries_returns_everything_and_no_token() {
        let (items, next) = page(ids(25), |s| s.as_str(), "", 0).unwrap();
        assert_eq!((items.len(), next.as_str()), (25, ""));
        let (items, next) = page(ids(3), |s| s.as_str(), "", 3).unwrap();
        assert_eq!((items.len(), next.as_str()), (3, ""));
    }

    #[test]
    fn a_deleted_token_entry_resumes_at_the_next_uuid() {
        let mut all = ids(5);
        all.sort();
        let token = all[2].clone();
        all.remove(2);
        let (items, _) = page(all.clone(), |s| s.as_str(), &token, 0).unwrap();
        assert_eq!(items, all[2..].to_vec());
    }

    #[test]
    fn bad_tokens_abort_and_negative_max_is_invalid() {
        let e = page(ids(2), |s| s.as_str(), "invalid-token", 0).unwrap_err();
        assert!(matches!(e, Error::Aborted(_)), "{e}");
        let e = page(ids(2), |s| s.as_str(), "", -1).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }
}
