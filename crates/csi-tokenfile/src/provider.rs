//! The credentials provider over the mounted token file, with per-call legacy fallback.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use cs_auth::{ApiHost, Credentials, CredentialsProvider, Grant, UsernamePasswordProvider};
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use tracing::{debug, info, warn};

use crate::{
    Error, Result,
    read::{normalise_region, read_region, read_snapshot, split_token_path},
};

/// Where the kubelet mounts the `cloudsigma-token` Secret in the controller pod, by default.
pub const DEFAULT_TOKEN_FILE: &str = "/etc/cloudsigma/access_token";

/// How long a token the API refused (401) is kept out of use while the file does not change. After
/// this it is tried again, in case the refusal was a glitch of the API.
pub const DEFAULT_REFUSED_TOKEN_HOLD: Duration = Duration::from_secs(30);

/// The provider name reported in logs, metrics and errors.
const NAME: &str = "token-file";

/// Settings of a [`TokenFileProvider`].
#[derive(Clone, Debug)]
pub struct TokenFileConfig {
    /// The token file; its directory also holds the optional `region` and `user_email` files.
    pub token_file: PathBuf,
    /// The region to serve; when `None` it is read from the `region` file once, at construction.
    pub region_override: Option<String>,
    /// Legacy username/password credentials used whenever the file has no usable token.
    pub legacy: Option<UsernamePasswordProvider>,
}

impl TokenFileConfig {
    /// Reads `token_file`, with no region override and no legacy fallback.
    pub fn new(token_file: impl Into<PathBuf>) -> Self {
        Self {
            token_file: token_file.into(),
            region_override: None,
            legacy: None,
        }
    }
}

/// Which source served the last grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The bearer token of the file, on the direct API host.
    File,
    /// The legacy username/password, on the regular API host.
    Legacy,
}

impl Source {
    /// `file` or `legacy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Legacy => "legacy",
        }
    }
}

/// Where the served region came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionSource {
    /// The configured override (flag or environment).
    Override,
    /// The `region` file next to the token, read at construction.
    File,
}

#[derive(Default)]
struct State {
    /// The source of the last grant handed out.
    serving: Option<Source>,
    /// The last token handed out from the file.
    last_file_token: Option<SecretString>,
    /// A file token the API refused, and when.
    refused: Option<(SecretString, Instant)>,
    /// The last user email seen next to the token.
    user_email: Option<String>,
}

/// Credentials from the CloudSigma token file mounted from the `cloudsigma-token` Secret.
///
/// Every [`credentials`](CredentialsProvider::credentials) call reads the file again (the Secret lives
/// on tmpfs, so this is cheap) and decides afresh:
/// - a usable token (non-empty single ASCII token, not an expired JWT, not refused by the API since it
///   was written, region file agreeing with the served region) → `Bearer` on the **direct** host;
/// - otherwise, when legacy credentials are configured → `Basic` on the **regular** host;
/// - otherwise → [`cs_auth::Error::Unavailable`] naming the file and the reason.
///
/// So the driver goes back to the file as soon as a valid token appears. After a 401 the caller
/// invalidates and retries once; the retry re-reads the file. With legacy credentials configured,
/// [`invalidate`](CredentialsProvider::invalidate) also marks the token last handed out as refused: it
/// is skipped until the file changes or [`DEFAULT_REFUSED_TOKEN_HOLD`] passes, so the retry (and later
/// calls) use the legacy credentials instead of repeating the refused token. Without legacy
/// credentials nothing is marked, and a token refused twice reaches the caller as the API's 401.
pub struct TokenFileProvider {
    token_file: PathBuf,
    dir: PathBuf,
    name: String,
    region: String,
    region_source: RegionSource,
    legacy: Option<UsernamePasswordProvider>,
    refused_hold: Duration,
    clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    state: Mutex<State>,
}

impl fmt::Debug for TokenFileProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenFileProvider")
            .field("token_file", &self.token_file)
            .field("region", &self.region)
            .field("region_source", &self.region_source)
            .field("legacy", &self.legacy)
            .field("serving", &self.lock().serving)
            .finish_non_exhaustive()
    }
}

impl TokenFileProvider {
    /// Builds the provider and fixes the served region: the override when given, else the `region`
    /// file next to the token (read now). Fails when the path names no file, the override is not a
    /// region code, or neither gives a region.
    pub fn new(config: TokenFileConfig) -> Result<Self> {
        let (dir, name) = split_token_path(&config.token_file)?;
        let (region, region_source) = match config.region_override.as_deref().map(str::trim) {
            Some(value) if !value.is_empty() => {
                let region = value.to_ascii_lowercase();
                cs_auth::validate_region(&region).map_err(|e| Error::Config(e.to_string()))?;
                (region, RegionSource::Override)
            }
            _ => {
                let path = dir.join(crate::read::REGION_FILE);
                match read_region(&dir) {
                    Ok(Some(region)) => (region, RegionSource::File),
                    Ok(None) => {
                        return Err(Error::NoRegion {
                            path,
                            reason: "missing or empty".into(),
                        });
                    }
                    Err(e) => {
                        return Err(Error::NoRegion {
                            path,
                            reason: e.to_string(),
                        });
                    }
                }
            }
        };
        Ok(Self {
            token_file: config.token_file,
            dir,
            name,
            region,
            region_source,
            legacy: config.legacy,
            refused_hold: DEFAULT_REFUSED_TOKEN_HOLD,
            clock: Arc::new(Timestamp::now),
            state: Mutex::new(State::default()),
        })
    }

    /// How long a refused token stays out of use while the file is unchanged (default
    /// [`DEFAULT_REFUSED_TOKEN_HOLD`]).
    pub fn with_refused_token_hold(mut self, hold: Duration) -> Self {
        self.refused_hold = hold;
        self
    }

    /// Replaces the wall clock used for the JWT `exp` check (for tests).
    pub fn with_clock(mut self, clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The region this provider serves: API endpoints must be built for it.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Where [`region`](Self::region) came from.
    pub fn region_source(&self) -> RegionSource {
        self.region_source
    }

    /// The configured token file.
    pub fn token_file(&self) -> &Path {
        &self.token_file
    }

    /// Whether legacy credentials are configured as the fallback.
    pub fn has_legacy(&self) -> bool {
        self.legacy.is_some()
    }

    /// The source of the last grant handed out, if any.
    pub fn serving(&self) -> Option<Source> {
        self.lock().serving
    }

    /// The user email last read next to the token (informational; the token decides who acts).
    pub fn user_email(&self) -> Option<String> {
        self.lock().user_email.clone()
    }

    /// Reads the file now and returns its token, or why it is unusable — the decision
    /// [`credentials`](CredentialsProvider::credentials) takes before any fallback.
    pub async fn file_token(&self) -> Result<SecretString> {
        let token_file = self.token_file.clone();
        let dir = self.dir.clone();
        let name = self.name.clone();
        let now = (self.clock)();
        let snapshot = tokio::task::spawn_blocking(move || read_snapshot(&token_file, &dir, &name, now))
            .await
            .map_err(|e| Error::Unreadable {
                path: self.token_file.clone(),
                reason: format!("reader task failed: {e}"),
            })?;
        if let Some(email) = &snapshot.user_email {
            let mut state = self.lock();
            if state.user_email.as_deref() != Some(email.as_str()) {
                state.user_email = Some(email.clone());
            }
        }
        let token = snapshot.token?;
        if self.region_source == RegionSource::File {
            match snapshot.region {
                Ok(Some(file_region)) if file_region != self.region => {
                    return Err(Error::RegionChanged {
                        path: self.dir.join(crate::read::REGION_FILE),
                        file_region,
                        serving: self.region.clone(),
                    });
                }
                Err(e) => return Err(e),
                _ => {}
            }
        }
        let state = self.lock();
        if let Some((refused, at)) = &state.refused
            && refused.expose_secret() == token.expose_secret()
            && at.elapsed() < self.refused_hold
        {
            return Err(Error::Refused {
                path: self.token_file.clone(),
            });
        }
        Ok(token)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a plain assignment, so a poisoned state is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records the source of a grant and logs a switch between sources once.
    fn record(&self, source: Source, file_token: Option<&SecretString>, reason: Option<&Error>) {
        let mut state = self.lock();
        let previous = state.serving.replace(source);
        if let Some(token) = file_token {
            state.last_file_token = Some(token.clone());
        }
        let user_email = state.user_email.clone();
        drop(state);
        if previous == Some(source) {
            return;
        }
        match (source, reason) {
            (Source::File, _) => info!(
                token_file = %self.token_file.display(),
                region = %self.region,
                user_email = user_email.as_deref().unwrap_or("-"),
                "using the CloudSigma token from the token file (direct API host)"
            ),
            (Source::Legacy, Some(reason)) => warn!(
                token_file = %self.token_file.display(),
                reason = %reason,
                "no usable token in the token file; using the legacy username/password (regular API host) \
                 until a valid token appears"
            ),
            (Source::Legacy, None) => warn!("using the legacy username/password"),
        }
    }
}

#[async_trait]
impl CredentialsProvider for TokenFileProvider {
    async fn credentials(&self) -> cs_auth::Result<Grant> {
        match self.file_token().await {
            Ok(token) => {
                self.record(Source::File, Some(&token), None);
                Ok(Grant {
                    credentials: Credentials::Bearer { token },
                    host: ApiHost::Direct,
                })
            }
            Err(reason) => match &self.legacy {
                Some(legacy) => {
                    self.record(Source::Legacy, None, Some(&reason));
                    debug!(reason = %reason, "token file unusable; serving legacy credentials");
                    legacy.credentials().await
                }
                None => {
                    let mut state = self.lock();
                    let was_file = state.serving.take() == Some(Source::File);
                    drop(state);
                    if was_file {
                        warn!(reason = %reason, "the token file no longer holds a usable token");
                    }
                    Err(cs_auth::Error::Unavailable {
                        provider: NAME,
                        reason: reason.to_string(),
                    })
                }
            },
        }
    }

    async fn invalidate(&self) {
        let mut state = self.lock();
        // Without legacy credentials there is nothing better to retry with: the caller's retry re-reads
        // the file (which may have been refreshed meanwhile) and a second 401 reaches the caller as such.
        if self.legacy.is_some()
            && state.serving == Some(Source::File)
            && let Some(token) = state.last_file_token.clone()
        {
            state.refused = Some((token, Instant::now()));
            drop(state);
            warn!(
                token_file = %self.token_file.display(),
                "the CloudSigma API refused the token from the token file; it is skipped until the file changes"
            );
        }
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

/// Checks a region code the way the provider does (lower-cased, then validated), naming `what` in the
/// error. Useful for binaries validating a `--region` flag up front.
pub fn check_region(what: &str, value: &str) -> Result<String> {
    normalise_region(Path::new(what), value)
}
