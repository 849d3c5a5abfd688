//! Bad input for the token-file reader: arbitrary bytes (invalid UTF-8, NUL, a byte order mark, CRLF,
//! whitespace only), JWTs with garbage or extreme `exp` claims, huge and endless files, and paths that
//! are no regular file. The reader never panics or hangs, follows the rules of docs/csi.md
//! ("Credentials"), and never puts the file's content in an error.
//!
//! Proptest runs 256 cases per property with a fixed seed; `PROPTEST_CASES` and `PROPTEST_RNG_SEED`
//! override both.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::{
    fs,
    os::unix::fs::{PermissionsExt, symlink},
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use csi_tokenfile::{Error, TokenFileConfig, TokenFileProvider};
use jiff::Timestamp;
use proptest::{
    prelude::*,
    test_runner::{Config as ProptestConfig, RngSeed},
};
use secrecy::ExposeSecret;
use tempfile::TempDir;

/// The fixed "now" of every check (2027-01-15T08:00:00Z).
const NOW: i64 = 1_800_000_000;

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 256;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0x0011_70ce_5eed);
    }
    config.failure_persistence = None;
    config
}

/// A Secret directory with a region file and a provider reading `access_token` in it.
struct Mount {
    dir: TempDir,
    provider: TokenFileProvider,
    runtime: tokio::runtime::Runtime,
}

impl Mount {
    fn new() -> Self {
        let dir = TempDir::new().unwrap();
        fs::write(dir.path().join("region"), "zrh\n").unwrap();
        let provider = TokenFileProvider::new(TokenFileConfig::new(dir.path().join("access_token")))
            .unwrap()
            .with_clock(|| Timestamp::from_second(NOW).unwrap());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        Self {
            dir,
            provider,
            runtime,
        }
    }

    fn token_path(&self) -> PathBuf {
        self.dir.path().join("access_token")
    }

    /// Writes `bytes` as the token file and reads it through the provider.
    fn read(&self, bytes: &[u8]) -> Result<String, Error> {
        let path = self.token_path();
        if fs::symlink_metadata(&path).is_ok_and(|m| !m.is_file()) {
            let _ = fs::remove_file(&path);
        }
        fs::write(&path, bytes).unwrap();
        self.read_current()
    }

    /// Reads whatever is at the token path now, failing the test if that takes more than 2 s.
    fn read_current(&self) -> Result<String, Error> {
        let started = Instant::now();
        let result = self.runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(2), self.provider.file_token()).await
        });
        let result = result.unwrap_or_else(|_| panic!("reading the token file hung"));
        assert!(started.elapsed() < Duration::from_secs(2));
        result.map(|t| t.expose_secret().to_owned())
    }
}

/// The documented rules, written out independently of the reader: one leading UTF-8 BOM is dropped,
/// the rest must be UTF-8, surrounding whitespace is trimmed, what is left must be non-empty visible
/// ASCII, and a JWT whose numeric `exp` is at or before now is expired.
fn expected(bytes: &[u8]) -> Result<String, &'static str> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let Ok(text) = std::str::from_utf8(body) else {
        return Err("not_utf8");
    };
    let token = text.trim();
    if token.is_empty() {
        return Err("empty");
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("malformed");
    }
    match claimed_exp(token) {
        Some(exp) if exp <= NOW as f64 => Err("expired"),
        _ => Ok(token.to_owned()),
    }
}

/// The numeric `exp` of a three-part token whose middle part is base64url JSON, if any.
fn claimed_exp(token: &str) -> Option<f64> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 || parts[1].is_empty() {
        return None;
    }
    let payload = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    )
    .decode(parts[1])
    .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    value.as_object()?.get("exp")?.as_f64()
}

/// Whitespace the reader must trim around a token (ASCII and some Unicode spaces).
fn space() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![" ", "\t", "\r\n", "\n", "\r", "\u{a0}", "\u{2003}"]),
        0..4,
    )
    .prop_map(|parts| parts.concat())
}

/// Token-like content: visible ASCII most of the time, sometimes with a stray character inside.
fn core() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[!-~]{1,80}",
        1 => "[!-~]{0,20}[ \t\n\u{0}\u{7f}\u{feff}é][!-~]{1,20}",
        1 => any::<String>(),
    ]
}

/// Arbitrary bytes, and token-shaped text behind an optional BOM, with whitespace and CRLF around it.
fn file_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..200),
        5 => (any::<bool>(), space(), core(), space()).prop_map(|(bom, lead, core, trail)| {
            let mut bytes = if bom { b"\xEF\xBB\xBF".to_vec() } else { Vec::new() };
            bytes.extend_from_slice(format!("{lead}{core}{trail}").as_bytes());
            bytes
        }),
    ]
}

fn label(error: &Error) -> &'static str {
    match error {
        Error::NotUtf8 { .. } => "not_utf8",
        Error::Empty { .. } => "empty",
        Error::Malformed { .. } => "malformed",
        Error::Expired { .. } => "expired",
        other => panic!("unexpected error for a regular file: {other:?}"),
    }
}

/// The error text must not carry the token (or any 6+ character piece of content that is not part of
/// the path and the fixed wording).
fn assert_not_echoed(error: &Error, content: &str) {
    let text = error.to_string();
    let debug = format!("{error:?}");
    for piece in content.split(|c: char| !c.is_ascii_graphic()) {
        if piece.len() >= 12 {
            assert!(
                !text.contains(piece) && !debug.contains(piece),
                "the error echoes file content {piece:?}: {text}"
            );
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn token_file_bytes_follow_the_documented_rules_and_are_never_echoed(bytes in file_bytes()) {
        let mount = Mount::new();
        let got = mount.read(&bytes);
        let want = expected(&bytes);
        match (&got, &want) {
            (Ok(token), Ok(expected)) => prop_assert_eq!(token, expected),
            (Err(error), Err(kind)) => {
                prop_assert_eq!(label(error), *kind, "{:?}", error);
                assert_not_echoed(error, &String::from_utf8_lossy(&bytes));
            }
            _ => prop_assert!(false, "bytes {:?}: got {:?}, documented {:?}", bytes, got, want),
        }
    }

    #[test]
    fn jwt_claims_of_any_shape_never_panic_and_only_a_past_exp_expires(
        header in "[A-Za-z0-9_-]{0,24}",
        payload in prop_oneof![
            // A JSON object with an `exp` of any JSON type and magnitude.
            3 => exp_claim().prop_map(|exp| URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"u","exp":{exp}}}"#))),
            // Arbitrary JSON text, base64url encoded.
            1 => any::<String>().prop_map(|s| URL_SAFE_NO_PAD.encode(s)),
            // Garbage that is not base64url at all, or an empty middle part.
            1 => "[!-~&&[^.]]{0,40}",
        ],
        signature in "[A-Za-z0-9_-]{0,40}",
        trailer in prop::sample::select(vec!["", "\n", "\r\n", " \r\n\r\n"]),
    ) {
        let token = format!("{header}.{payload}.{signature}");
        let mount = Mount::new();
        let got = mount.read(format!("{token}{trailer}").as_bytes());
        match claimed_exp(&token) {
            Some(exp) if exp <= NOW as f64 => {
                let error = got.unwrap_err();
                prop_assert!(matches!(error, Error::Expired { .. }), "{:?}", error);
                prop_assert!(error.to_string().contains("expired at"), "{}", error);
                assert_not_echoed(&error, &token);
            }
            _ => prop_assert_eq!(got.unwrap(), token),
        }
    }
}

/// `exp` values: seconds near now, far past and future, negative, beyond every timestamp and integer
/// range, fractional, and other JSON types.
fn exp_claim() -> impl Strategy<Value = String> {
    prop_oneof![
        (NOW - 100_000..NOW + 100_000).prop_map(|s| s.to_string()),
        any::<i64>().prop_map(|s| s.to_string()),
        any::<u64>().prop_map(|s| s.to_string()),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        Just("-1e300".to_owned()),
        Just("1e300".to_owned()),
        Just("-377705116801".to_owned()),
        Just("253402300800".to_owned()),
        Just("null".to_owned()),
        Just(r#""1700000000""#.to_owned()),
        Just("[1700000000]".to_owned()),
        Just(r#"{"seconds":1}"#.to_owned()),
        Just("true".to_owned()),
    ]
}

#[test]
fn a_byte_order_mark_is_stripped_once_and_crlf_is_trimmed() {
    let mount = Mount::new();
    assert_eq!(mount.read(b"\xEF\xBB\xBFtok-bom-1\r\n").unwrap(), "tok-bom-1");
    assert_eq!(
        mount.read(b"\xEF\xBB\xBF\r\n  tok-bom-2 \r\n").unwrap(),
        "tok-bom-2"
    );
    // Only one leading BOM is a BOM; a second one, or one inside the token, is a stray character.
    for bytes in [
        &b"\xEF\xBB\xBF\xEF\xBB\xBFtok-bom-3"[..],
        b"tok-\xEF\xBB\xBFbom-4",
        b" \xEF\xBB\xBFtok-bom-5",
    ] {
        assert!(
            matches!(mount.read(bytes), Err(Error::Malformed { .. })),
            "{bytes:?}"
        );
    }
    // NUL bytes are control characters: malformed, not cut off at the NUL.
    assert!(matches!(
        mount.read(b"tok-nul\0rest"),
        Err(Error::Malformed { .. })
    ));
    assert!(matches!(mount.read(b"\0\0\0"), Err(Error::Malformed { .. })));
    assert!(matches!(
        mount.read(b"\xEF\xBB\xBF \r\n\t"),
        Err(Error::Empty { .. })
    ));
}

#[test]
fn a_huge_or_endless_token_file_is_rejected_quickly_naming_the_limit() {
    let mount = Mount::new();
    let started = Instant::now();
    let error = mount.read(&vec![b'a'; 10 << 20]).unwrap_err();
    assert!(matches!(error, Error::TooLarge { limit: 65536, .. }), "{error:?}");
    assert!(error.to_string().contains("larger than 65536 bytes"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // A sparse 64 GiB file: only the first 64 KiB + 1 byte are read, or this would take minutes and
    // all memory.
    let file = fs::File::create(mount.token_path()).unwrap();
    file.set_len(64 << 30).unwrap();
    drop(file);
    let started = Instant::now();
    let error = mount.read_current().unwrap_err();
    assert!(matches!(error, Error::TooLarge { .. }), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn paths_that_are_no_readable_regular_file_are_reported_not_hung_on() {
    let mount = Mount::new();
    let path = mount.token_path();
    let shown = path.display().to_string();

    // A directory.
    fs::create_dir(&path).unwrap();
    let error = mount.read_current().unwrap_err();
    assert!(
        matches!(&error, Error::Unreadable { path: p, .. } if *p == path),
        "{error:?}"
    );
    assert!(error.to_string().contains(&shown), "{error}");
    fs::remove_dir(&path).unwrap();

    // A dangling symlink (the kubelet removed the version it pointed to).
    symlink(mount.dir.path().join("..2020_01_01/access_token"), &path).unwrap();
    assert_eq!(
        mount.read_current().unwrap_err(),
        Error::Missing { path: path.clone() }
    );
    fs::remove_file(&path).unwrap();

    // A symlink loop.
    symlink(&path, &path).unwrap();
    assert!(matches!(mount.read_current(), Err(Error::Unreadable { .. })));
    fs::remove_file(&path).unwrap();

    // Devices are no Secret files: /dev/zero would never end.
    for device in ["/dev/null", "/dev/zero"] {
        symlink(device, &path).unwrap();
        let error = mount.read_current().unwrap_err();
        assert!(
            matches!(&error, Error::Unreadable { reason, .. } if reason.contains("not a regular file")),
            "{device}: {error:?}"
        );
        fs::remove_file(&path).unwrap();
    }

    // A FIFO nobody writes to: opening it for reading would block forever.
    let made = Command::new("mkfifo").arg(&path).status();
    if made.is_ok_and(|s| s.success()) {
        let error = mount.read_current().unwrap_err();
        assert!(
            matches!(&error, Error::Unreadable { reason, .. } if reason.contains("not a regular file")),
            "{error:?}"
        );
        fs::remove_file(&path).unwrap();
    }

    // No read permission. Root reads it anyway (CAP_DAC_OVERRIDE), so the case is checked only where
    // the permission bits are enforced.
    fs::write(&path, "tok-perm-1").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::File::open(&path).is_err() {
        let error = mount.read_current().unwrap_err();
        assert!(
            matches!(&error, Error::Unreadable { reason, .. } if reason.contains("ermission")),
            "{error:?}"
        );
        assert!(!error.to_string().contains("tok-perm-1"));
    }
}
