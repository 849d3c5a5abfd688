//! Helpers shared by the integration tests: fast settings, a fake Keycloak + impersonation endpoint on
//! wiremock, and a capture of `tracing` output.
#![allow(dead_code, clippy::unwrap_used)]

use std::{
    io,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use cs_auth::{ImpersonationConfig, RetryPolicy};
use secrecy::SecretString;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers};

pub const CLIENT_ID: &str = "kubernetes_cluster_service";
pub const CLIENT_SECRET: &str = "client-secret-9f3a61c2";
pub const TOKEN_PATH: &str = "/auth/realms/cloudsigma/protocol/openid-connect/token";
pub const UMA: &str = "urn:ietf:params:oauth:grant-type:uma-ticket";

/// Test settings: short timeouts and retry delays.
pub fn fast_config(oauth_url: String, impersonation_url: String) -> ImpersonationConfig {
    ImpersonationConfig {
        oauth_url,
        impersonation_url,
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        retry: RetryPolicy {
            attempts: 3,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(40),
        },
        ..ImpersonationConfig::new(CLIENT_ID, SecretString::from(CLIENT_SECRET))
    }
}

/// The form fields of a request body, in order.
pub fn form(request: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&request.body).into_owned().collect()
}

pub fn grant_type(request: &Request) -> Option<String> {
    form(request)
        .into_iter()
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v)
}

pub fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Answers token requests with numbered tokens `"{prefix}-{n}"`.
pub struct Numbered {
    pub prefix: &'static str,
    pub expires_in: Option<u64>,
    pub counter: Arc<AtomicU32>,
    pub delay: Duration,
}

impl Respond for Numbered {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        let mut body =
            serde_json::json!({"access_token": format!("{}-{n}", self.prefix), "token_type": "Bearer"});
        if let Some(e) = self.expires_in {
            body["expires_in"] = e.into();
        }
        ResponseTemplate::new(200)
            .set_body_json(body)
            .set_delay(self.delay)
    }
}

/// Answers impersonation requests with `"imp-{user_email}-{n}"`.
pub struct Impersonated {
    pub expires_in: Option<u64>,
    pub counter: Arc<AtomicU32>,
    pub delay: Duration,
}

impl Respond for Impersonated {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        let body: serde_json::Value = request.body_json().unwrap();
        let email = body["user_email"].as_str().unwrap_or("?");
        let mut out = serde_json::json!({"access_token": format!("imp-{email}-{n}"), "token_type": "Bearer"});
        if let Some(e) = self.expires_in {
            out["expires_in"] = e.into();
        }
        ResponseTemplate::new(200)
            .set_body_json(out)
            .set_delay(self.delay)
    }
}

/// A fake Keycloak and impersonation endpoint with counters per step.
pub struct FakeCloud {
    pub server: MockServer,
    pub sa: Arc<AtomicU32>,
    pub rpt: Arc<AtomicU32>,
    pub imp: Arc<AtomicU32>,
}

impl FakeCloud {
    /// SA and RPT tokens live `service_expires_in`, impersonated tokens `user_expires_in`; the
    /// impersonation endpoint answers after `imp_delay`.
    pub async fn start(
        service_expires_in: Option<u64>,
        user_expires_in: Option<u64>,
        imp_delay: Duration,
    ) -> Self {
        Self::start_with(service_expires_in, service_expires_in, user_expires_in, imp_delay).await
    }

    /// Like [`FakeCloud::start`] with separate SA and RPT lifetimes.
    pub async fn start_with(
        sa_expires_in: Option<u64>,
        rpt_expires_in: Option<u64>,
        user_expires_in: Option<u64>,
        imp_delay: Duration,
    ) -> Self {
        let server = MockServer::start().await;
        let (sa, rpt, imp) = (Arc::default(), Arc::default(), Arc::default());
        Mock::given(matchers::method("POST"))
            .and(matchers::path(TOKEN_PATH))
            .and(|r: &Request| grant_type(r).as_deref() == Some("client_credentials"))
            .respond_with(Numbered {
                prefix: "sa-token",
                expires_in: sa_expires_in,
                counter: Arc::clone(&sa),
                delay: Duration::ZERO,
            })
            .with_priority(10)
            .mount(&server)
            .await;
        Mock::given(matchers::method("POST"))
            .and(matchers::path(TOKEN_PATH))
            .and(|r: &Request| grant_type(r).as_deref() == Some(UMA))
            .respond_with(Numbered {
                prefix: "rpt-token",
                expires_in: rpt_expires_in,
                counter: Arc::clone(&rpt),
                delay: Duration::ZERO,
            })
            .with_priority(10)
            .mount(&server)
            .await;
        Mock::given(matchers::method("POST"))
            .and(matchers::path_regex(
                r"^/[a-z0-9-]+/direct/service_provider/api/v1/user/impersonate$",
            ))
            .respond_with(Impersonated {
                expires_in: user_expires_in,
                counter: Arc::clone(&imp),
                delay: imp_delay,
            })
            .with_priority(10)
            .mount(&server)
            .await;
        Self { server, sa, rpt, imp }
    }

    pub fn oauth_url(&self) -> String {
        format!("{}/auth", self.server.uri())
    }

    pub fn impersonation_url(&self) -> String {
        format!("{}/{{region}}/direct/", self.server.uri())
    }

    pub fn config(&self) -> ImpersonationConfig {
        fast_config(self.oauth_url(), self.impersonation_url())
    }

    /// (step 1, step 2, step 3) requests answered with a token so far.
    pub fn counts(&self) -> (u32, u32, u32) {
        (
            self.sa.load(Ordering::SeqCst),
            self.rpt.load(Ordering::SeqCst),
            self.imp.load(Ordering::SeqCst),
        )
    }

    pub async fn requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap()
    }
}

/// A shared in-memory log sink.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogBuffer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Captures every event and span of every crate at TRACE on the current thread (use a
/// current-thread runtime so all futures of the test run here).
pub fn capture_logs() -> (LogBuffer, tracing::subscriber::DefaultGuard) {
    // tracing caches per-callsite interest; while only one dispatcher is registered it asks just the
    // registering thread's default, so a parallel test without capture could switch a callsite off
    // for everyone. A second, permanent dispatcher makes tracing consult all live ones.
    static KEEP_REBUILDING: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    KEEP_REBUILDING.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
    let buffer = LogBuffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .with_writer(move || writer.clone())
        .finish();
    (buffer, tracing::subscriber::set_default(subscriber))
}

/// Asserts that none of `secrets` appears in `text`.
pub fn assert_free_of(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(
            !text.contains(secret),
            "{what} contains the secret {secret:?}:\n{text}"
        );
    }
}
