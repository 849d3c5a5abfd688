//! Behaviour of `TokenFileProvider` for every state of the mounted Secret, including the kubelet's
//! `..data` symlink swap under concurrent readers.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::{
    collections::HashSet,
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use cs_auth::{ApiHost, Credentials, CredentialsProvider, Grant, UsernamePasswordProvider};
use csi_tokenfile::{Error, RegionSource, Source, TokenFileConfig, TokenFileProvider};
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use tempfile::TempDir;

const PASSWORD: &str = "legacy-pw-Secret-77";

fn legacy() -> UsernamePasswordProvider {
    UsernamePasswordProvider::new("owner@example.com", SecretString::from(PASSWORD)).unwrap()
}

fn jwt(exp: i64) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"u-1","exp":{exp}}}"#)),
        URL_SAFE_NO_PAD.encode("signature-bytes")
    )
}

/// A plain directory holding the Secret's files (as with a hand-made mount).
struct Plain {
    dir: TempDir,
}

impl Plain {
    fn new() -> Self {
        Self {
            dir: TempDir::new().unwrap(),
        }
    }
    fn token_path(&self) -> PathBuf {
        self.dir.path().join("access_token")
    }
    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) {
        fs::write(self.dir.path().join(name), bytes).unwrap();
    }
    fn remove(&self, name: &str) {
        fs::remove_file(self.dir.path().join(name)).unwrap();
    }
    fn config(&self, legacy_creds: bool) -> TokenFileConfig {
        TokenFileConfig {
            token_file: self.token_path(),
            region_override: None,
            legacy: legacy_creds.then(legacy),
        }
    }
    /// Region file `zrh` plus the given token; provider with or without legacy.
    fn provider(&self, token: Option<&[u8]>, legacy_creds: bool) -> TokenFileProvider {
        self.write("region", "zrh\n");
        if let Some(token) = token {
            self.write("access_token", token);
        }
        TokenFileProvider::new(self.config(legacy_creds)).unwrap()
    }
}

fn bearer(grant: &Grant) -> String {
    assert_eq!(
        grant.host,
        ApiHost::Direct,
        "a file token belongs on the direct host"
    );
    match &grant.credentials {
        Credentials::Bearer { token } => token.expose_secret().to_owned(),
        other => panic!("expected a bearer token, got {other:?}"),
    }
}

fn assert_legacy(grant: &Grant) {
    assert_eq!(
        grant.host,
        ApiHost::Regular,
        "legacy credentials belong on the regular host"
    );
    match &grant.credentials {
        Credentials::Basic { username, password } => {
            assert_eq!(username, "owner@example.com");
            assert_eq!(password.expose_secret(), PASSWORD);
        }
        other => panic!("expected basic credentials, got {other:?}"),
    }
}

async fn unavailable_reason(provider: &TokenFileProvider) -> String {
    match provider.credentials().await.unwrap_err() {
        cs_auth::Error::Unavailable {
            provider: name,
            reason,
        } => {
            assert_eq!(name, "token-file");
            reason
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_valid_token_is_served_trimmed_as_bearer_on_the_direct_host() {
    let s = Plain::new();
    for (bytes, expected) in [
        (&b"tok-abc\n"[..], "tok-abc"),
        (b"tok-abc\r\n", "tok-abc"),
        (b"  tok-abc  ", "tok-abc"),
        (b"\xEF\xBB\xBFtok-abc\n", "tok-abc"),
    ] {
        let p = s.provider(Some(bytes), false);
        assert_eq!(bearer(&p.credentials().await.unwrap()), expected, "{bytes:?}");
        assert_eq!(p.serving(), Some(Source::File));
        assert_eq!(p.name(), "token-file");
    }
}

#[tokio::test]
async fn missing_file_without_legacy_is_an_error_naming_the_file() {
    let s = Plain::new();
    let p = s.provider(None, false);
    let reason = unavailable_reason(&p).await;
    assert_eq!(
        reason,
        format!("token file {} does not exist", s.token_path().display())
    );
    assert!(matches!(p.file_token().await, Err(Error::Missing { .. })));
}

#[tokio::test]
async fn empty_whitespace_only_and_non_utf8_files_are_rejected_clearly() {
    let s = Plain::new();
    let p = s.provider(Some(b""), false);
    let shown = s.token_path().display().to_string();
    assert_eq!(
        unavailable_reason(&p).await,
        format!("token file {shown} is empty")
    );
    s.write("access_token", " \r\n\t\n");
    assert_eq!(
        unavailable_reason(&p).await,
        format!("token file {shown} is empty")
    );
    s.write("access_token", b"tok-\xFF\xFE-Secret");
    let reason = unavailable_reason(&p).await;
    assert_eq!(reason, format!("token file {shown} is not UTF-8 text"));
    s.write("access_token", "tok-one\ntok-two\n");
    let reason = unavailable_reason(&p).await;
    assert!(
        reason.contains("does not hold a single token") && !reason.contains("tok-one"),
        "{reason}"
    );
}

#[tokio::test]
async fn an_unreadable_or_oversized_file_is_rejected() {
    let s = Plain::new();
    let p = s.provider(None, false);
    fs::create_dir(s.token_path()).unwrap();
    let reason = unavailable_reason(&p).await;
    assert!(reason.contains("cannot be read"), "{reason}");
    fs::remove_dir(s.token_path()).unwrap();
    s.write("access_token", vec![b'a'; 64 * 1024 + 1]);
    assert!(matches!(
        p.file_token().await,
        Err(Error::TooLarge { limit: 65536, .. })
    ));
    s.write("access_token", vec![b'a'; 64 * 1024]);
    assert_eq!(bearer(&p.credentials().await.unwrap()).len(), 64 * 1024);
}

#[tokio::test]
async fn an_expired_jwt_is_stale_and_the_error_names_the_expiry() {
    let s = Plain::new();
    let now = Timestamp::from_second(1_900_000_000).unwrap();
    let expired = jwt(1_900_000_000 - 90);
    let p = TokenFileProvider::new({
        s.write("region", "zrh");
        s.write("access_token", format!("{expired}\n"));
        s.config(false)
    })
    .unwrap()
    .with_clock(move || now);
    let reason = unavailable_reason(&p).await;
    assert!(
        reason.contains("expired at 2030-03-17T17:45:10Z (90 s ago)"),
        "{reason}"
    );
    assert!(!reason.contains(&expired));
    // A JWT valid for another minute is served.
    let fresh = jwt(1_900_000_000 + 60);
    s.write("access_token", &fresh);
    assert_eq!(bearer(&p.credentials().await.unwrap()), fresh);
}

#[tokio::test]
async fn legacy_serves_while_the_file_is_unusable_and_the_file_wins_as_soon_as_it_is_valid() {
    let s = Plain::new();
    let p = s.provider(None, true);
    // Missing file -> legacy.
    assert_legacy(&p.credentials().await.unwrap());
    assert_eq!(p.serving(), Some(Source::Legacy));
    // A token appears -> the very next call uses it.
    s.write("access_token", "tok-1\n");
    assert_eq!(bearer(&p.credentials().await.unwrap()), "tok-1");
    assert_eq!(p.serving(), Some(Source::File));
    // Empty (e.g. truncated by a non-atomic writer) -> legacy again.
    s.write("access_token", "");
    assert_legacy(&p.credentials().await.unwrap());
    // Expired JWT -> legacy; valid JWT -> file.
    s.write("access_token", jwt(1_000_000_000));
    assert_legacy(&p.credentials().await.unwrap());
    let fresh = jwt(Timestamp::now().as_second() + 600);
    s.write("access_token", &fresh);
    assert_eq!(bearer(&p.credentials().await.unwrap()), fresh);
    // Removed -> legacy.
    s.remove("access_token");
    assert_legacy(&p.credentials().await.unwrap());
}

#[tokio::test]
async fn a_refused_token_is_skipped_until_the_file_changes() {
    let s = Plain::new();
    let p = s.provider(Some(b"tok-old"), true);
    assert_eq!(bearer(&p.credentials().await.unwrap()), "tok-old");
    // The API answered 401: the client invalidates and retries once -> legacy.
    p.invalidate().await;
    assert_legacy(&p.credentials().await.unwrap());
    assert!(matches!(p.file_token().await, Err(Error::Refused { .. })));
    // The Secret is refreshed -> the new token is used at once.
    s.write("access_token", "tok-new");
    assert_eq!(bearer(&p.credentials().await.unwrap()), "tok-new");

    // Without legacy, the retry re-reads the file: a refreshed token is used, an unchanged one is
    // sent again (so a second 401 reaches the caller as the API's answer).
    let s2 = Plain::new();
    let p2 = s2.provider(Some(b"tok-x"), false);
    assert_eq!(bearer(&p2.credentials().await.unwrap()), "tok-x");
    p2.invalidate().await;
    assert_eq!(bearer(&p2.credentials().await.unwrap()), "tok-x");
    s2.write("access_token", "tok-x2");
    p2.invalidate().await;
    assert_eq!(bearer(&p2.credentials().await.unwrap()), "tok-x2");

    // After the hold time the same token is tried again.
    let s3 = Plain::new();
    let p3 = s3
        .provider(Some(b"tok-y"), true)
        .with_refused_token_hold(Duration::ZERO);
    p3.credentials().await.unwrap();
    p3.invalidate().await;
    assert_eq!(bearer(&p3.credentials().await.unwrap()), "tok-y");

    // Invalidating while legacy serves does not mark the file's next token.
    let s4 = Plain::new();
    let p4 = s4.provider(None, true);
    assert_legacy(&p4.credentials().await.unwrap());
    p4.invalidate().await;
    s4.write("access_token", "tok-z");
    assert_eq!(bearer(&p4.credentials().await.unwrap()), "tok-z");
}

#[tokio::test]
async fn the_region_comes_from_the_override_or_the_region_file() {
    let s = Plain::new();
    s.write("access_token", "tok");
    // Neither -> error naming the region file and the override.
    let e = TokenFileProvider::new(s.config(false)).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("no region override") && text.contains("/region"),
        "{text}"
    );
    // Region file (trimmed, lower-cased).
    s.write("region", " ZRH\n");
    let p = TokenFileProvider::new(s.config(false)).unwrap();
    assert_eq!((p.region(), p.region_source()), ("zrh", RegionSource::File));
    // Override wins.
    let mut config = s.config(false);
    config.region_override = Some("Next".into());
    let p = TokenFileProvider::new(config).unwrap();
    assert_eq!((p.region(), p.region_source()), ("next", RegionSource::Override));
    // Invalid values are named.
    let mut config = s.config(false);
    config.region_override = Some("zürich".into());
    assert!(
        TokenFileProvider::new(config)
            .unwrap_err()
            .to_string()
            .contains("zürich")
    );
    s.write("region", "a/b");
    let text = TokenFileProvider::new(s.config(false)).unwrap_err().to_string();
    assert!(text.contains("/region") && text.contains("a/b"), "{text}");
    // A path naming no file.
    let e = TokenFileProvider::new(TokenFileConfig::new("/")).unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
}

#[tokio::test]
async fn a_region_file_that_changes_later_makes_the_token_unusable() {
    let s = Plain::new();
    let p = s.provider(Some(b"tok-1"), true);
    assert_eq!(bearer(&p.credentials().await.unwrap()), "tok-1");
    s.write("region", "fra");
    assert_legacy(&p.credentials().await.unwrap());
    let e = p.file_token().await.unwrap_err();
    assert!(
        matches!(&e, Error::RegionChanged { file_region, serving, .. } if file_region == "fra" && serving == "zrh"),
        "{e}"
    );
    // A removed region file is fine: the served region was fixed at start.
    s.remove("region");
    assert_eq!(bearer(&p.credentials().await.unwrap()), "tok-1");
    // With an override, the file's region is not consulted.
    s.write("region", "fra");
    let mut config = s.config(false);
    config.region_override = Some("zrh".into());
    let p = TokenFileProvider::new(config).unwrap();
    assert_eq!(bearer(&p.credentials().await.unwrap()), "tok-1");
}

#[tokio::test]
async fn the_user_email_file_is_read_next_to_the_token() {
    let s = Plain::new();
    s.write("user_email", "tenant@example.com\n");
    let p = s.provider(Some(b"tok"), false);
    assert_eq!(p.user_email(), None);
    p.credentials().await.unwrap();
    assert_eq!(p.user_email().as_deref(), Some("tenant@example.com"));
}

#[tokio::test]
async fn debug_output_and_errors_never_contain_secrets() {
    let s = Plain::new();
    let secret_token = "tok-Very-Secret-42";
    let p = s.provider(Some(secret_token.as_bytes()), true);
    let grant = p.credentials().await.unwrap();
    p.invalidate().await;
    let legacy_grant = p.credentials().await.unwrap();
    let text = format!("{p:?} {grant:?} {legacy_grant:?} {:?}", p.file_token().await);
    assert!(!text.contains(secret_token) && !text.contains(PASSWORD), "{text}");
    s.write("access_token", format!("{secret_token}\n{secret_token}"));
    let e = p.file_token().await.unwrap_err();
    assert!(!format!("{e} {e:?}").contains(secret_token));
}

/// A Secret volume laid out the way the kubelet's atomic writer does it.
struct Projected {
    dir: TempDir,
    version: usize,
    current: Option<String>,
}

impl Projected {
    fn new(files: &[(&str, String)]) -> Self {
        let mut p = Self {
            dir: TempDir::new().unwrap(),
            version: 0,
            current: None,
        };
        p.update(files);
        p
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a new timestamped version directory, points `..data_tmp` at it, renames `..data_tmp`
    /// over `..data`, makes sure the visible `<key> -> ..data/<key>` links exist and removes the old
    /// version directory.
    fn update(&mut self, files: &[(&str, String)]) {
        self.version += 1;
        let name = format!("..2026_01_02_03_04_{:02}.{:09}", self.version % 60, self.version);
        let version_dir = self.path().join(&name);
        fs::create_dir(&version_dir).unwrap();
        for (key, value) in files {
            fs::write(version_dir.join(key), value).unwrap();
        }
        let tmp = self.path().join("..data_tmp");
        symlink(&name, &tmp).unwrap();
        fs::rename(&tmp, self.path().join("..data")).unwrap();
        for (key, _) in files {
            let visible = self.path().join(key);
            if fs::symlink_metadata(&visible).is_err() {
                symlink(format!("..data/{key}"), &visible).unwrap();
            }
        }
        if let Some(old) = self.current.replace(name) {
            fs::remove_dir_all(self.path().join(old)).unwrap();
        }
    }
}

#[tokio::test]
async fn reads_through_the_kubelet_layout_follow_each_swap() {
    let token = |n: usize| format!("tok-{n}");
    let files = |n: usize| {
        vec![
            ("access_token", token(n)),
            ("region", "zrh".into()),
            ("user_email", format!("u{n}@x.io")),
        ]
    };
    let mut secret = Projected::new(&files(1));
    let p = TokenFileProvider::new(TokenFileConfig::new(secret.path().join("access_token"))).unwrap();
    assert_eq!(p.region(), "zrh");
    assert_eq!(bearer(&p.credentials().await.unwrap()), "tok-1");
    secret.update(&files(2));
    assert_eq!(bearer(&p.credentials().await.unwrap()), "tok-2");
    assert_eq!(p.user_email().as_deref(), Some("u2@x.io"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_readers_always_see_one_whole_consistent_secret_version_during_kubelet_swaps() {
    // Even versions: region zrh and a token starting "zrh-"; odd versions: region fra, token "fra-".
    // Long tokens make a torn read likely if reads were not atomic; a token from one version paired
    // with the region of another shows up as a "fra-" token being served for zrh.
    let version = |n: usize| {
        let region = if n.is_multiple_of(2) { "zrh" } else { "fra" };
        let token = format!("{region}-{n:05}-{}", "x".repeat(8000));
        vec![
            ("access_token", token),
            ("region", region.to_owned()),
            ("user_email", format!("u{n}@x.io")),
        ]
    };
    let mut secret = Projected::new(&version(0));
    let provider =
        Arc::new(TokenFileProvider::new(TokenFileConfig::new(secret.path().join("access_token"))).unwrap());
    assert_eq!(provider.region(), "zrh");

    let all_tokens: Arc<HashSet<String>> = Arc::new((0..=400).map(|n| version(n)[0].1.clone()).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (provider, all_tokens, stop) =
            (Arc::clone(&provider), Arc::clone(&all_tokens), Arc::clone(&stop));
        readers.push(tokio::spawn(async move {
            let (mut served, mut refused_other_region) = (0u32, 0u32);
            let mut reads = 0u32;
            while reads < 20 || !stop.load(Ordering::Relaxed) {
                reads += 1;
                match provider.file_token().await {
                    Ok(token) => {
                        let token = token.expose_secret();
                        assert!(
                            all_tokens.contains(token),
                            "a token that was never written whole was read"
                        );
                        assert!(
                            token.starts_with("zrh-"),
                            "token of a fra version paired with the zrh region"
                        );
                        served += 1;
                    }
                    Err(Error::RegionChanged { file_region, .. }) => {
                        assert_eq!(file_region, "fra");
                        refused_other_region += 1;
                    }
                    Err(other) => panic!("a reader saw an unexpected state during a swap: {other}"),
                }
            }
            (served, refused_other_region)
        }));
    }
    let writer = tokio::task::spawn_blocking(move || {
        for n in 1..=400 {
            secret.update(&version(n));
            if n.is_multiple_of(50) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        secret
    });
    let _secret = writer.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    let (mut served, mut other) = (0, 0);
    for reader in readers {
        let (s, o) = reader.await.unwrap();
        served += s;
        other += o;
    }
    assert!(served > 0, "no reader was served a token");
    // Version 400 is a zrh version: after the swaps the file is served again.
    let final_token = provider.file_token().await.unwrap();
    assert!(final_token.expose_secret().starts_with("zrh-00400-"));
    eprintln!("reads during swaps: {served} served, {other} refused for the other region");
}
