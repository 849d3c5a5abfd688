//! The impersonation flow against the CloudSigma emulator (`cs-emulator`): routes, the direct-host rule,
//! coalescing, expiry, injected 504s and the fallback to legacy credentials, and secret hygiene.
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use common::{CLIENT_ID, CLIENT_SECRET, assert_free_of, capture_logs, fast_config};
use cs_auth::{
    ApiHost, AuthCounters, Credentials, CredentialsProvider, Error, FallbackPath, FallbackProvider, Grant,
    ImpersonationClient, RetryPolicy, SharedProvider, Step, UsernamePasswordProvider,
};
use cs_emulator::{Config, Emulator, Fault, FaultAction, HostKind, RouteMatch, ServerSeed};
use secrecy::{ExposeSecret, SecretString};

const TENANT: &str = "tenant@example.com";
const TENANT_PASSWORD: &str = "tenant-password-4d81e0";
const OTHER: &str = "other@example.com";
const SA_EMAIL: &str = "service-account@provider.example";
const IMPERSONATE_ROUTE: &str = "POST /direct/service_provider/api/v1/user/impersonate";
const TOKEN_ROUTE: &str = "POST /oauth/token";

/// An emulator with the tenant (2 servers in zrh), another user, and the OAuth client whose service
/// account owns one server of its own in zrh.
async fn emulator(config: Config) -> Emulator {
    let emu = Emulator::start_with(config).await.unwrap();
    emu.add_user(TENANT, TENANT_PASSWORD);
    emu.add_user(OTHER, "other-password-77aa");
    emu.add_oauth_client(CLIENT_ID, CLIENT_SECRET, SA_EMAIL);
    for name in ["tenant-vm-1", "tenant-vm-2"] {
        emu.add_server(
            "zrh",
            TENANT,
            ServerSeed {
                name: name.into(),
                ..ServerSeed::default()
            },
        );
    }
    emu.add_server(
        "zrh",
        SA_EMAIL,
        ServerSeed {
            name: "provider-vm".into(),
            ..ServerSeed::default()
        },
    );
    emu
}

fn two_regions() -> Config {
    Config {
        locations: vec!["zrh".into(), "lon".into()],
        ..Config::default()
    }
}

fn client_for(emu: &Emulator, counters: Arc<AuthCounters>) -> ImpersonationClient {
    ImpersonationClient::with_observer(fast_config(emu.oauth_url(), emu.direct_url_template()), counters)
        .unwrap()
}

/// Server names listed at `base` (`.../api/2.0/`) with `grant`'s credentials.
async fn server_names(base: &str, grant: &Grant) -> (u16, Vec<String>) {
    let request = reqwest::Client::new().get(format!("{base}servers/?limit=0"));
    let request = match &grant.credentials {
        Credentials::Bearer { token } => request.bearer_auth(token.expose_secret()),
        Credentials::Basic { username, password } => {
            request.basic_auth(username, Some(password.expose_secret()))
        }
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status != 200 {
        return (status, Vec::new());
    }
    let body: serde_json::Value = response.json().await.unwrap();
    let mut names: Vec<String> = body["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    (status, names)
}

/// Waits (at most 3 s) for the background probe to switch `fallback` back to its primary.
async fn wait_for_primary(fallback: &FallbackProvider) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while fallback.active() != FallbackPath::Primary {
        assert!(
            Instant::now() < deadline,
            "the fallback did not return to the primary"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn flow_uses_the_documented_routes_and_the_token_acts_as_the_user_only_on_the_direct_host() {
    let emu = emulator(Config::default()).await;
    let client = client_for(&emu, Arc::default());
    let token = client.token(TENANT, "zrh").await.unwrap();
    assert_eq!(
        token.lifetime,
        Duration::from_secs(900),
        "the emulator's default lifetime"
    );

    let log = emu.requests();
    let seen: Vec<(&str, &str, Option<&str>, u16)> = log
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str(), r.query.as_deref(), r.status))
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                "POST",
                "/oauth/realms/cloudsigma/protocol/openid-connect/token",
                None,
                200
            ),
            (
                "POST",
                "/oauth/realms/cloudsigma/protocol/openid-connect/token",
                None,
                200
            ),
            (
                "POST",
                "/zrh/direct/service_provider/api/v1/user/impersonate",
                None,
                200
            ),
        ]
    );
    assert_eq!(
        log.iter().map(|r| r.route.as_str()).collect::<Vec<_>>(),
        vec![TOKEN_ROUTE, TOKEN_ROUTE, IMPERSONATE_ROUTE]
    );
    assert_eq!(log[2].host, HostKind::Direct);
    assert_eq!(log[2].location.as_deref(), Some("zrh"));

    let grant = client
        .provider(TENANT, "zrh")
        .unwrap()
        .credentials()
        .await
        .unwrap();
    assert_eq!(grant.host, ApiHost::Direct);
    let (status, direct) = server_names(&emu.direct_api_url("zrh"), &grant).await;
    assert_eq!(
        (status, direct),
        (200, vec!["tenant-vm-1".to_owned(), "tenant-vm-2".to_owned()])
    );
    let (status, plain) = server_names(&emu.api_url("zrh"), &grant).await;
    assert_eq!(status, 200);
    assert!(
        !plain.iter().any(|n| n.starts_with("tenant-")),
        "the plain host does not act as the user: {plain:?}"
    );
    assert_eq!(
        plain,
        vec!["provider-vm".to_owned()],
        "it acts as the service account instead"
    );
    let users: Vec<Option<String>> = emu.requests()[3..].iter().map(|r| r.user.clone()).collect();
    assert_eq!(users, vec![Some(TENANT.to_owned()), Some(SA_EMAIL.to_owned())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_calls_make_one_impersonation_and_each_user_or_region_its_own() {
    let emu = emulator(two_regions()).await;
    let counters = Arc::new(AuthCounters::default());
    let client = client_for(&emu, counters.clone());
    let provider = Arc::new(client.provider(TENANT, "zrh").unwrap());
    let tasks = (0..100).map(|_| {
        let p = Arc::clone(&provider);
        tokio::spawn(async move { p.credentials().await.map(|g| g.credentials) })
    });
    let mut tokens = Vec::new();
    for result in futures::future::join_all(tasks).await {
        match result.unwrap().unwrap() {
            Credentials::Bearer { token } => tokens.push(token.expose_secret().to_owned()),
            other => panic!("{other:?}"),
        }
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "all callers got the same token");
    assert_eq!(emu.count(IMPERSONATE_ROUTE), 1);
    assert_eq!(emu.count(TOKEN_ROUTE), 2, "one SA token and one RPT");

    client.token(OTHER, "zrh").await.unwrap();
    assert_eq!(
        emu.count(IMPERSONATE_ROUTE),
        2,
        "a second user gets its own impersonation"
    );
    let lon = client.token(TENANT, "lon").await.unwrap();
    assert_eq!(
        emu.count(IMPERSONATE_ROUTE),
        3,
        "a second region gets its own impersonation"
    );
    assert_ne!(lon.token.expose_secret(), tokens[0]);
    assert!(
        emu.requests()
            .iter()
            .any(|r| r.path == "/lon/direct/service_provider/api/v1/user/impersonate")
    );
    assert_eq!(
        emu.count(TOKEN_ROUTE),
        2,
        "SA token and RPT are shared by users and regions"
    );
    let s = counters.snapshot();
    assert_eq!((s.cache_misses, s.cache_hits + s.cache_coalesced), (3, 99));
}

#[tokio::test]
async fn short_emulator_lifetime_is_honoured() {
    let config = Config {
        token_lifetime: Duration::from_secs(3),
        sa_token_lifetime: Duration::from_secs(3),
        rpt_lifetime: Duration::from_secs(3),
        ..Config::default()
    };
    let emu = emulator(config).await;
    let client = client_for(&emu, Arc::default());
    let start = Instant::now();
    let first = client.token(TENANT, "zrh").await.unwrap();
    assert_eq!(first.lifetime, Duration::from_secs(3));
    assert_eq!(first.refresh_at.duration_since(first.issued_at).as_millis(), 2000);
    let again = client.token(TENANT, "zrh").await.unwrap();
    assert_eq!(again.token.expose_secret(), first.token.expose_secret());
    assert_eq!(emu.count(IMPERSONATE_ROUTE), 1);

    tokio::time::sleep(Duration::from_millis(2100).saturating_sub(start.elapsed())).await;
    let fresh = client.token(TENANT, "zrh").await.unwrap();
    assert_ne!(fresh.token.expose_secret(), first.token.expose_secret());
    assert_eq!(emu.count(IMPERSONATE_ROUTE), 2);
    assert_eq!(emu.count(TOKEN_ROUTE), 4, "SA token and RPT were due as well");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "the old token was replaced before it expired"
    );
    let fresh_grant = Grant {
        credentials: Credentials::Bearer {
            token: fresh.token.clone(),
        },
        host: ApiHost::Direct,
    };
    assert_eq!(
        server_names(&emu.direct_api_url("zrh"), &fresh_grant).await.0,
        200
    );
}

#[tokio::test]
async fn injected_504_is_retried_boundedly_then_fallback_serves_legacy_and_returns() {
    let (logs, _guard) = capture_logs();
    let emu = emulator(Config::default()).await;
    let counters = Arc::new(AuthCounters::default());
    let client = client_for(&emu, counters.clone());
    let fault = emu.inject(Fault::status(RouteMatch::Route(IMPERSONATE_ROUTE.into()), 504));

    let error = client.token(TENANT, "zrh").await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Impersonation {
                step: Step::Impersonate,
                status: Some(504),
                attempts: 3,
                ..
            }
        ),
        "{error:?}"
    );
    let request_id = error
        .request_id()
        .expect("the emulator sends X-Request-Id")
        .to_owned();
    assert_eq!(
        error.to_string(),
        format!(
            "impersonation step 3 (impersonate) failed (HTTP 504, request id {request_id}, after 3 attempts): \
             backend: fault injected by the emulator"
        )
    );
    assert_eq!(emu.count(IMPERSONATE_ROUTE), 3, "bounded: 3 attempts");

    let primary: SharedProvider = Arc::new(client.provider(TENANT, "zrh").unwrap());
    let legacy = UsernamePasswordProvider::new(TENANT, SecretString::from(TENANT_PASSWORD)).unwrap();
    let probe = Duration::from_millis(300);
    let fallback = FallbackProvider::new(primary, Arc::new(legacy), probe).with_observer(counters.clone());

    let grant = fallback.credentials().await.unwrap();
    assert!(
        matches!(grant.credentials, Credentials::Basic { .. }),
        "{grant:?}"
    );
    assert_eq!(grant.host, ApiHost::Regular);
    assert_eq!(fallback.active(), FallbackPath::Secondary);
    let (status, names) = server_names(&emu.api_url("zrh"), &grant).await;
    assert_eq!(
        (status, names.len()),
        (200, 2),
        "legacy credentials see the tenant's servers: {names:?}"
    );
    let before = emu.count(IMPERSONATE_ROUTE);
    for _ in 0..5 {
        assert_eq!(fallback.credentials().await.unwrap().host, ApiHost::Regular);
    }
    assert_eq!(
        emu.count(IMPERSONATE_ROUTE),
        before,
        "no probe within the interval"
    );

    emu.clear_fault(fault);
    tokio::time::sleep(probe + Duration::from_millis(50)).await;
    // This call starts a background probe and is itself still served by the secondary.
    assert_eq!(fallback.credentials().await.unwrap().host, ApiHost::Regular);
    wait_for_primary(&fallback).await;
    let grant = fallback.credentials().await.unwrap();
    assert_eq!(grant.host, ApiHost::Direct);
    assert!(matches!(grant.credentials, Credentials::Bearer { .. }));
    assert_eq!(fallback.active(), FallbackPath::Primary);
    let (status, names) = server_names(&emu.direct_api_url("zrh"), &grant).await;
    assert_eq!((status, names.len()), (200, 2));

    let s = counters.snapshot();
    assert_eq!((s.transitions_to_secondary, s.transitions_to_primary), (1, 1));
    assert_eq!((s.served_secondary, s.served_primary), (7, 1));
    assert_eq!(
        s.impersonate.http_error, 6,
        "3 attempts alone, 3 in the first fallback call"
    );
    let log = logs.text();
    assert_eq!(log.matches("primary credentials failed").count(), 1, "{log}");
    assert_eq!(
        log.matches("switched back from the secondary").count(),
        1,
        "{log}"
    );
}

#[tokio::test]
async fn slow_504_beyond_the_timeout_is_a_timeout_of_step_three() {
    let emu = emulator(Config::default()).await;
    emu.inject(Fault::new(
        RouteMatch::Route(IMPERSONATE_ROUTE.into()),
        FaultAction::Status {
            status: 504,
            error_type: None,
            delay: Duration::from_secs(5),
        },
    ));
    let mut config = fast_config(emu.oauth_url(), emu.direct_url_template());
    config.timeout = Duration::from_millis(300);
    config.retry = RetryPolicy {
        attempts: 2,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
    };
    let client = ImpersonationClient::new(config).unwrap();
    let started = Instant::now();
    let error = client.token(TENANT, "zrh").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(
            error,
            Error::Timeout {
                step: Step::Impersonate,
                attempts: 2,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn wrong_client_secret_is_reported_at_step_one_without_the_secret() {
    let emu = emulator(Config::default()).await;
    let mut config = fast_config(emu.oauth_url(), emu.direct_url_template());
    config.client_secret = SecretString::from("wrong-secret-e51b");
    let client = ImpersonationClient::new(config).unwrap();
    let error = client.token(TENANT, "zrh").await.unwrap_err();
    assert_eq!(
        (error.step(), error.status()),
        (Some(Step::ServiceAccountToken), Some(401))
    );
    assert!(error.to_string().contains("unauthorized_client"), "{error}");
    assert!(!format!("{error} {error:?}").contains("wrong-secret-e51b"));
    assert_eq!(emu.count(TOKEN_ROUTE), 1, "a refusal is not retried");
}

#[tokio::test]
async fn unknown_user_is_reported_at_step_three() {
    let emu = emulator(Config::default()).await;
    let client = client_for(&emu, Arc::default());
    let error = client.token("nobody@example.com", "zrh").await.unwrap_err();
    assert_eq!(
        (error.step(), error.status()),
        (Some(Step::Impersonate), Some(404))
    );
    assert!(error.to_string().contains("notexist"), "{error}");
}

/// Runs of URL-safe base64 at least as long as the emulator's tokens (32 random bytes -> 43 chars).
fn token_like_runs(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .filter(|w| w.len() >= 43)
        .collect()
}

#[tokio::test]
async fn secrets_never_appear_in_formatted_values_or_logs() {
    let (logs, _guard) = capture_logs();
    let emu = emulator(Config::default()).await;
    let client = client_for(&emu, Arc::default());
    let mut out = Vec::new();

    let token = client.token(TENANT, "zrh").await.unwrap();
    let provider = client.provider(TENANT, "zrh").unwrap();
    let grant = provider.credentials().await.unwrap();
    out.push(format!("{client:?} {token:?} {provider:?} {grant:?}"));

    let fault = emu.inject(Fault::status(RouteMatch::Route(IMPERSONATE_ROUTE.into()), 504));
    let legacy = UsernamePasswordProvider::new(TENANT, SecretString::from(TENANT_PASSWORD)).unwrap();
    let fallback = FallbackProvider::new(
        Arc::new(client.provider(OTHER, "zrh").unwrap()),
        Arc::new(legacy.clone()),
        Duration::ZERO,
    );
    let legacy_grant = fallback.credentials().await.unwrap();
    out.push(format!("{legacy:?} {legacy_grant:?} {fallback:?}"));
    let error = client.token(OTHER, "zrh").await.unwrap_err();
    out.push(format!("{error} {error:?}"));
    emu.clear_fault(fault);
    out.push(format!("{:?}", fallback.credentials().await.unwrap()));
    wait_for_primary(&fallback).await;
    let back = fallback.credentials().await.unwrap();
    out.push(format!("{back:?}"));
    let back_token = match &back.credentials {
        Credentials::Bearer { token } => token.expose_secret().to_owned(),
        other => panic!("{other:?}"),
    };

    let secrets = [
        CLIENT_SECRET,
        TENANT_PASSWORD,
        token.token.expose_secret(),
        back_token.as_str(),
    ];
    let text = out.join("\n");
    assert_free_of("formatted values", &text, &secrets);
    let log = logs.text();
    assert!(
        log.contains("obtained an impersonated token") && log.contains("primary credentials failed"),
        "{log}"
    );
    assert_free_of("tracing output", &log, &secrets);
    // The SA token and RPT never leave the client; like every emulator token they are 43 characters
    // of URL-safe base64, and no such run appears anywhere.
    assert_eq!(token_like_runs(&text), Vec::<&str>::new());
    assert_eq!(token_like_runs(&log), Vec::<&str>::new());
    assert_eq!(
        token_like_runs(token.token.expose_secret()).len(),
        1,
        "the pattern matches real tokens"
    );
}
