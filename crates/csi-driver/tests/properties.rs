//! Bad input for the pure decisions of the controller: capacity ranges of any `i64` values against any
//! valid size limits, paging tokens and `max_entries` of any value, CSI names of any text, CloudSigma
//! timestamps, and drives with extreme sizes and odd metadata. Nothing panics, and every answer follows
//! docs/csi.md ("Sizes", ListVolumes paging, CreateVolume names).
//!
//! Proptest runs 256 cases per property with a fixed seed; `PROPTEST_CASES` and `PROPTEST_RNG_SEED`
//! override both.
#![allow(clippy::unwrap_used, clippy::panic)]

use cs_api::{Drive, Meta, StorageType};
use csi_driver::{
    Error,
    convert::{self, CONTEXT_STORAGE_TYPE},
    csi::CapacityRange,
    paging,
    sizes::{self, GIB, SizeLimits},
    validate,
};
use proptest::{
    prelude::*,
    test_runner::{Config as ProptestConfig, RngSeed},
};

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 256;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0x00c5_1d51_eed0);
    }
    config.failure_persistence = None;
    config
}

/// Valid limits: whole GiB with min <= default <= max (what the binary accepts).
fn limits() -> impl Strategy<Value = SizeLimits> {
    (1u64..4, 0u64..20, 0u64..20_000).prop_map(|(min, extra_default, extra_max)| SizeLimits {
        min_bytes: min * GIB,
        default_bytes: (min + extra_default) * GIB,
        max_bytes: (min + extra_default + extra_max) * GIB,
    })
}

/// Byte counts around the interesting points: whole GiB, one byte off, tiny, huge, negative.
fn bytes() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0i64),
        (0i64..30_000).prop_map(|g| g * GIB as i64),
        (0i64..30_000, -1i64..=1).prop_map(|(g, d)| g * GIB as i64 + d),
        0i64..(4 * GIB as i64),
        any::<i64>(),
        Just(i64::MAX),
        Just(i64::MIN),
        Just(-1),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_capacity_range_gives_a_documented_size_or_out_of_range(
        limits in limits(),
        required in bytes(),
        limit in bytes(),
        with_range in any::<bool>(),
    ) {
        let range = CapacityRange { required_bytes: required, limit_bytes: limit };
        let range = with_range.then_some(&range);
        let result = limits.volume_bytes(range);
        // Independently of the code: a whole-GiB size exists in
        // [max(required, min), min(limit or infinity, max)] unless a value is negative or limit < required.
        let (req, lim) = match range {
            None => (0, 0),
            Some(r) => (r.required_bytes, r.limit_bytes),
        };
        let possible = req >= 0 && lim >= 0 && (lim == 0 || lim >= req) && {
            let low = (req as u64).max(limits.min_bytes).div_ceil(GIB) * GIB;
            let high = if lim == 0 { limits.max_bytes } else { (lim as u64).min(limits.max_bytes) };
            low <= high
        };
        match result {
            Ok(size) => {
                prop_assert!(possible);
                prop_assert_eq!(size % GIB, 0);
                prop_assert!(size >= limits.min_bytes && size <= limits.max_bytes);
                prop_assert!(size >= req as u64);
                prop_assert!(lim == 0 || size <= lim as u64);
                prop_assert!(sizes::satisfies(size, range));
                if req == 0 {
                    // No request: the default, or the limit rounded down when that is smaller.
                    let expected = if lim == 0 || lim as u64 >= limits.default_bytes {
                        limits.default_bytes
                    } else {
                        lim as u64 / GIB * GIB
                    };
                    prop_assert_eq!(size, expected);
                } else {
                    prop_assert_eq!(size, sizes::round_up_gib(req as u64).max(limits.min_bytes));
                }
                prop_assert_eq!(sizes::to_i64(size) as u64, size);
            }
            Err(error) => {
                prop_assert!(!possible, "refused a possible range: {}", error);
                prop_assert!(matches!(error, Error::OutOfRange(_)), "{:?}", error);
                prop_assert_eq!(error.code(), tonic::Code::OutOfRange);
            }
        }
    }

    #[test]
    fn any_paging_token_and_max_entries_pages_completely_or_is_refused(
        ids in prop::collection::btree_set(any::<u128>(), 0..40),
        token_kind in 0u8..4,
        other in ".{0,40}",
        max_entries in prop_oneof![Just(0i32), 1i32..10, any::<i32>()],
    ) {
        let ids: Vec<String> = ids.iter().map(|n| uuid::Uuid::from_u128(*n).hyphenated().to_string()).collect();
        let token = match token_kind {
            0 => String::new(),
            1 => ids.first().cloned().unwrap_or_default(),
            2 => uuid::Uuid::from_u128(u128::MAX / 3).hyphenated().to_string(),
            _ => other.clone(),
        };
        let result = paging::page(ids.clone(), |s| s.as_str(), &token, max_entries);
        let valid_token = token.is_empty() || validate::is_cloud_uuid(&token);
        match result {
            Err(error) if max_entries < 0 => prop_assert_eq!(error.code(), tonic::Code::InvalidArgument),
            Err(error) => {
                prop_assert!(!valid_token, "{}", error);
                prop_assert_eq!(error.code(), tonic::Code::Aborted);
            }
            Ok((first, mut next)) => {
                prop_assert!(max_entries >= 0 && valid_token);
                // Walk every page: together they are the sorted ids from the token on, each once.
                let mut sorted = ids.clone();
                sorted.sort();
                let expected: Vec<String> =
                    sorted.into_iter().filter(|id| token.is_empty() || id.as_str() >= token.as_str()).collect();
                let mut seen = first;
                let mut pages = 1;
                while !next.is_empty() {
                    prop_assert!(max_entries > 0);
                    let (more, after) = paging::page(ids.clone(), |s| s.as_str(), &next, max_entries).unwrap();
                    prop_assert!(!more.is_empty() && more.len() <= max_entries as usize);
                    seen.extend(more);
                    next = after;
                    pages += 1;
                    prop_assert!(pages <= 41);
                }
                prop_assert_eq!(seen, expected);
            }
        }
    }

    #[test]
    fn names_of_any_text_are_accepted_exactly_by_the_spec_rules(name in prop_oneof![
        ".{0,140}",
        "[a-z0-9-]{120,135}",
        any::<String>(),
        "pvc-[\\x00-\\x20\\x7f-\\u{a0}]{1,3}",
    ]) {
        let banned = |c: char| matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{7f}'..='\u{9f}');
        let ok = !name.is_empty() && name.len() <= 128 && !name.chars().any(banned);
        let result = validate::name("name", &name);
        prop_assert_eq!(result.is_ok(), ok, "{:?}", result);
        if let Err(error) = result {
            prop_assert_eq!(error.code(), tonic::Code::InvalidArgument);
            prop_assert!(error.to_string().starts_with("name "), "{}", error);
        }
    }

    #[test]
    fn cloudsigma_timestamps_round_trip_and_garbage_is_none(
        seconds in -30_000_000_000i64..250_000_000_000,
        micros in 0i32..1_000_000,
        garbage in ".{0,40}",
    ) {
        let ts = jiff::Timestamp::new(seconds, micros * 1000).unwrap();
        let text = ts.strftime("%Y-%m-%d %H:%M:%S.%6f+00:00").to_string();
        let parsed = convert::parse_timestamp(&text).unwrap();
        prop_assert_eq!((parsed.seconds, parsed.nanos), (seconds, micros * 1000), "{}", text);
        let _ = convert::parse_timestamp(&garbage);
    }

    #[test]
    fn drives_with_extreme_sizes_and_odd_metadata_convert_without_panicking(
        size in any::<u64>(),
        storage in prop_oneof![Just(None), ".{0,12}".prop_map(Some)],
        meta in prop::collection::btree_map(".{0,10}", ".{0,20}", 0..6),
        uuid in ".{0,40}",
    ) {
        let drive = Drive {
            uuid: uuid.clone(),
            size,
            storage_type: storage.as_deref().map(StorageType::from),
            meta: Meta::from(meta),
            ..Drive::default()
        };
        let volume = convert::volume(&drive, "zrh");
        prop_assert_eq!(volume.volume_id, uuid);
        prop_assert_eq!(volume.capacity_bytes, sizes::to_i64(size));
        prop_assert!(volume.capacity_bytes >= 0);
        prop_assert!(volume.volume_context.contains_key(CONTEXT_STORAGE_TYPE));
        let _ = convert::is_ours(&drive.meta);
    }
}
