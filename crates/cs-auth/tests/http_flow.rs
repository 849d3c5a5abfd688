//! The impersonation flow against a wiremock fake of Keycloak and the impersonation endpoint: exact
//! request shapes, caching, coalescing, retries, error reports.
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use common::*;
use cs_auth::{
    ApiHost, AuthCounters, Credentials, CredentialsProvider, Error, ImpersonationClient, ImpersonationConfig,
    RetryPolicy, Step,
};
use secrecy::ExposeSecret;
use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

const USER: &str = "tenant@example.com";

#[tokio::test]
async fn three_requests_carry_exact_urls_fields_headers_and_json() {
    let cloud = FakeCloud::start(Some(300), Some(900), Duration::ZERO).await;
    let client = ImpersonationClient::new(cloud.config()).unwrap();
    let token = client.token(USER, "next").await.unwrap();

    assert_eq!(token.token.expose_secret(), "imp-tenant@example.com-1");
    assert_eq!((token.user_email.as_str(), token.region.as_str()), (USER, "next"));
    assert_eq!(token.lifetime, Duration::from_secs(900));
    assert_eq!(token.expires_at.duration_since(token.issued_at).as_secs(), 900);
    assert_eq!(token.refresh_at.duration_since(token.issued_at).as_secs(), 600);

    let requests = cloud.requests().await;
    assert_eq!(requests.len(), 3, "exactly three requests");
    let ua = format!("cloudsigma-k8s/{}", env!("CARGO_PKG_VERSION"));
    let host = cloud.server.address().to_string();

    // Step 1: client credentials, no Authorization header.
    let r = &requests[0];
    assert_eq!(r.method.as_str(), "POST");
    assert_eq!(r.url.path(), TOKEN_PATH);
    assert_eq!(r.url.query(), None);
    assert_eq!(header(r, "host"), Some(host.as_str()));
    assert_eq!(
        header(r, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(header(r, "accept"), Some("application/json"));
    assert_eq!(header(r, "user-agent"), Some(ua.as_str()));
    assert_eq!(header(r, "authorization"), None);
    assert_eq!(
        form(r),
        vec![
            ("grant_type".into(), "client_credentials".into()),
            ("client_id".into(), CLIENT_ID.into()),
            ("client_secret".into(), CLIENT_SECRET.into()),
        ]
    );

    // Step 2: UMA ticket with the SA token as bearer.
    let r = &requests[1];
    assert_eq!(r.method.as_str(), "POST");
    assert_eq!(r.url.path(), TOKEN_PATH);
    assert_eq!(r.url.query(), None);
    assert_eq!(header(r, "host"), Some(host.as_str()));
    assert_eq!(
        header(r, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(header(r, "authorization"), Some("Bearer sa-token-1"));
    assert_eq!(header(r, "user-agent"), Some(ua.as_str()));
    assert_eq!(
        form(r),
        vec![
            ("grant_type".into(), UMA.into()),
            ("audience".into(), "service_provider_api".into())
        ]
    );

    // Step 3: impersonation on the region's direct base, RPT as bearer, SA token as subject.
    let r = &requests[2];
    assert_eq!(r.method.as_str(), "POST");
    assert_eq!(
        r.url.path(),
        "/next/direct/service_provider/api/v1/user/impersonate"
    );
    assert_eq!(r.url.query(), None);
    assert_eq!(header(r, "host"), Some(host.as_str()));
    assert_eq!(header(r, "content-type"), Some("application/json"));
    assert_eq!(header(r, "accept"), Some("application/json"));
    assert_eq!(header(r, "authorization"), Some("Bearer rpt-token-1"));
    assert_eq!(header(r, "user-agent"), Some(ua.as_str()));
    let body: serde_json::Value = r.body_json().unwrap();
    assert_eq!(
        body,
        serde_json::json!({"user_email": USER, "subject_token": "sa-token-1"})
    );
}

#[tokio::test]
async fn provider_yields_bearer_for_the_direct_host() {
    let cloud = FakeCloud::start(Some(300), Some(900), Duration::ZERO).await;
    let client = ImpersonationClient::new(cloud.config()).unwrap();
    let provider = client.provider(USER, "zrh").unwrap();
    let grant = provider.credentials().await.unwrap();
    assert_eq!(grant.host, ApiHost::Direct);
    match grant.credentials {
        Credentials::Bearer { token } => assert_eq!(token.expose_secret(), "imp-tenant@example.com-1"),
        other => panic!("expected bearer, got {other:?}"),
    }
    assert_eq!(provider.name(), "impersonation");
    assert_eq!((provider.user_email(), provider.region()), (USER, "zrh"));
}

#[tokio::test]
async fn tokens_are_cached_per_user_and_region_and_service_tokens_shared() {
    let cloud = FakeCloud::start(Some(300), Some(900), Duration::ZERO).await;
    let counters = Arc::new(AuthCounters::default());
    let client = ImpersonationClient::with_observer(cloud.config(), counters.clone()).unwrap();
    let shared = client.clone();

    let a1 = client.token(USER, "zrh").await.unwrap();
    let a2 = shared.token(USER, "zrh").await.unwrap();
    assert_eq!(
        a1.token.expose_secret(),
        a2.token.expose_secret(),
        "a clone shares the cache"
    );
    assert_eq!(cloud.counts(), (1, 1, 1));

    let b = client.token("other@example.com", "zrh").await.unwrap();
    let c = client.token(USER, "next").await.unwrap();
    assert_eq!(b.token.expose_secret(), "imp-other@example.com-2");
    assert_eq!(c.token.expose_secret(), "imp-tenant@example.com-3");
    assert_eq!(
        cloud.counts(),
        (1, 1, 3),
        "new user or region: one impersonation each, same SA/RPT"
    );

    client.invalidate(USER, "zrh").await;
    let a3 = client.token(USER, "zrh").await.unwrap();
    assert_eq!(a3.token.expose_secret(), "imp-tenant@example.com-4");
    assert_eq!(cloud.counts(), (1, 1, 4));

    client.clear().await;
    client.token(USER, "zrh").await.unwrap();
    client.token("other@example.com", "zrh").await.unwrap();
    assert_eq!(
        cloud.counts(),
        (2, 2, 6),
        "clear() drops user tokens and the SA token and RPT"
    );

    let s = counters.snapshot();
    assert_eq!(s.cache_hits, 1);
    assert_eq!(s.cache_misses, 6);
    assert_eq!(
        (
            s.service_account_token.success,
            s.rpt.success,
            s.impersonate.success
        ),
        (2, 2, 6)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_callers_share_one_impersonation() {
    let cloud = FakeCloud::start(Some(300), Some(900), Duration::from_millis(200)).await;
    let counters = Arc::new(AuthCounters::default());
    let client = ImpersonationClient::with_observer(cloud.config(), counters.clone()).unwrap();
    let provider = Arc::new(client.provider(USER, "zrh").unwrap());
    let calls = (0..100).map(|_| {
        let p = Arc::clone(&provider);
        tokio::spawn(async move { p.credentials().await })
    });
    let grants = futures::future::join_all(calls).await;
    for grant in grants {
        match grant.unwrap().unwrap().credentials {
            Credentials::Bearer { token } => assert_eq!(token.expose_secret(), "imp-tenant@example.com-1"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(cloud.counts(), (1, 1, 1));
    let s = counters.snapshot();
    assert_eq!(s.cache_misses, 1);
    assert_eq!(s.cache_hits + s.cache_coalesced, 99);
}

#[tokio::test]
async fn short_lifetimes_are_refreshed_at_two_thirds() {
    // 3 s tokens with the default 300 s buffer: refreshed after 2 s.
    let cloud = FakeCloud::start(Some(3), Some(3), Duration::ZERO).await;
    let client = ImpersonationClient::new(cloud.config()).unwrap();
    let start = Instant::now();
    let first = client.token(USER, "zrh").await.unwrap();
    assert_eq!(first.refresh_at.duration_since(first.issued_at).as_millis(), 2000);
    let same = client.token(USER, "zrh").await.unwrap();
    assert_eq!(same.token.expose_secret(), first.token.expose_secret());
    assert_eq!(cloud.counts(), (1, 1, 1));
    tokio::time::sleep(Duration::from_millis(2100).saturating_sub(start.elapsed())).await;
    let fresh = client.token(USER, "zrh").await.unwrap();
    assert_ne!(fresh.token.expose_secret(), first.token.expose_secret());
    assert_eq!(
        cloud.counts(),
        (2, 2, 2),
        "SA token and RPT expired at the same rule"
    );
}

#[tokio::test]
async fn missing_expires_in_means_fifteen_minutes() {
    let cloud = FakeCloud::start(None, None, Duration::ZERO).await;
    let client = ImpersonationClient::new(cloud.config()).unwrap();
    let t = client.token(USER, "zrh").await.unwrap();
    assert_eq!(t.lifetime, Duration::from_secs(900));
    assert_eq!(t.refresh_at.duration_since(t.issued_at).as_secs(), 600);
}

#[tokio::test]
async fn impersonate_504_is_retried_then_reported_with_step_status_and_request_id() {
    let cloud = FakeCloud::start(Some(300), Some(900), Duration::ZERO).await;
    Mock::given(matchers::path(
        "/zrh/direct/service_provider/api/v1/user/impersonate",
    ))
    .respond_with(
        ResponseTemplate::new(504)
            .insert_header("X-REQUEST-ID", "req-504-abc")
            .set_body_string("<html><body>504 Gateway Time-out</body></html>"),
    )
    .with_priority(1)
    .mount(&cloud.server)
    .await;
    let counters = Arc::new(AuthCounters::default());
    let client = ImpersonationClient::with_observer(cloud.config(), counters.clone()).unwrap();
    let error = client.token(USER, "zrh").await.unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(&error, Error::Impersonation { step: Step::Impersonate, status: Some(504), request_id: Some(id), attempts: 3, .. } if id == "req-504-abc"),
        "{error:?}"
    );
    assert!(
        text.contains("step 3 (impersonate)") && text.contains("HTTP 504") && text.contains("req-504-abc"),
        "{text}"
    );
    assert!(!text.contains("<html>"), "the body is not echoed: {text}");
    assert_eq!(counters.snapshot().impersonate.http_error, 3);
    let imp_requests = cloud
        .requests()
        .await
        .iter()
        .filter(|r| r.url.path().ends_with("/impersonate"))
        .count();
    assert_eq!(imp_requests, 3);
}

#[tokio::test]
async fn errors_are_not_cached() {
    let cloud = FakeCloud::start(Some(300), Some(900), Duration::ZERO).await;
    Mock::given(matchers::path(
        "/zrh/direct/service_provider/api/v1/user/impersonate",
    ))
    .respond_with(ResponseTemplate::new(503))
    .up_to_n_times(3)
    .with_priority(1)
    .mount(&cloud.server)
    .await;
    let client = ImpersonationClient::new(cloud.config()).unwrap();
    let e = client.token(USER, "zrh").await.unwrap_err();
    assert_eq!(e.status(), Some(503));
    let t = client.token(USER, "zrh").await.unwrap();
    assert_eq!(t.token.expose_secret(), "imp-tenant@example.com-1");
}

#[tokio::test]
async fn refusals_are_not_retried_and_carry_the_oauth_error() {
    let server = MockServer::start().await;
    Mock::given(matchers::path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "error": "unauthorized_client",
            "error_description": format!("Invalid client secret {CLIENT_SECRET}"),
        })))
        .mount(&server)
        .await;
    let config = fast_config(
        format!("{}/auth/", server.uri()),
        format!("{}/{{region}}/direct", server.uri()),
    );
    let client = ImpersonationClient::new(config).unwrap();
    let error = client.token(USER, "zrh").await.unwrap_err();
    assert_eq!(error.step(), Some(Step::ServiceAccountToken));
    assert_eq!(error.status(), Some(401));
    assert_eq!(
        error.to_string(),
        "impersonation step 1 (service-account token) failed (HTTP 401): unauthorized_client: Invalid client \
         secret [REDACTED]"
    );
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "no retry on 401"
    );
}

#[tokio::test]
async fn forbidden_impersonation_is_final() {
    let cloud = FakeCloud::start(Some(300), Some(900), Duration::ZERO).await;
    Mock::given(matchers::path("/zrh/direct/service_provider/api/v1/user/impersonate"))
        .respond_with(ResponseTemplate::new(403).set_body_json(serde_json::json!([
            {"error_type": "permission", "error_message": "user is not a customer of this provider", "error_point": null}
        ])))
        .with_priority(1)
        .mount(&cloud.server)
        .await;
    let client = ImpersonationClient::new(cloud.config()).unwrap();
    let error = client.token(USER, "zrh").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "impersonation step 3 (impersonate) failed (HTTP 403): permission: user is not a customer of this provider"
    );
    assert_eq!(cloud.counts(), (1, 1, 0));
    let imp = cloud
        .requests()
        .await
        .iter()
        .filter(|r| r.url.path().ends_with("/impersonate"))
        .count();
    assert_eq!(imp, 1);
}

#[tokio::test]
async fn refused_cached_service_token_reruns_the_whole_flow_once() {
    let cloud = FakeCloud::start(Some(300), Some(900), Duration::ZERO).await;
    let client = ImpersonationClient::new(cloud.config()).unwrap();
    client.token(USER, "zrh").await.unwrap();
    assert_eq!(cloud.counts(), (1, 1, 1));

    // The SA token is revoked early: the next impersonation is refused once.
    Mock::given(matchers::path(
        "/zrh/direct/service_provider/api/v1/user/impersonate",
    ))
    .respond_with(ResponseTemplate::new(401))
    .up_to_n_times(1)
    .with_priority(1)
    .mount(&cloud.server)
    .await;
    let t = client.token("other@example.com", "zrh").await.unwrap();
    assert_eq!(t.token.expose_secret(), "imp-other@example.com-2");
    assert_eq!(
        cloud.counts(),
        (2, 2, 2),
        "new SA token and RPT, impersonation retried"
    );
}

#[tokio::test]
async fn refusal_of_fresh_service_tokens_is_not_rerun() {
    let cloud = FakeCloud::start(Some(300), Some(900), Duration::ZERO).await;
    Mock::given(matchers::path(
        "/zrh/direct/service_provider/api/v1/user/impersonate",
    ))
    .respond_with(ResponseTemplate::new(401))
    .with_priority(1)
    .mount(&cloud.server)
    .await;
    let client = ImpersonationClient::new(cloud.config()).unwrap();
    let e = client.token(USER, "zrh").await.unwrap_err();
    assert_eq!((e.step(), e.status()), (Some(Step::Impersonate), Some(401)));
    assert_eq!(cloud.counts(), (1, 1, 0));
}

#[tokio::test]
async fn invalidate_service_tokens_forces_steps_one_and_two() {
    let cloud = FakeCloud::start(Some(300), Some(900), Duration::ZERO).await;
    let client = ImpersonationClient::new(cloud.config()).unwrap();
    client.token(USER, "zrh").await.unwrap();
    client.invalidate_service_tokens().await;
    client.token(USER, "zrh").await.unwrap();
    assert_eq!(cloud.counts(), (1, 1, 1), "the user token stays cached");
    client.token("b@example.com", "zrh").await.unwrap();
    assert_eq!(cloud.counts(), (2, 2, 2));
}

#[tokio::test]
async fn rpt_refusal_of_a_cached_sa_token_fetches_a_new_sa_token_once() {
    // SA tokens live 300 s, RPTs 1 s (refreshed after 0.67 s).
    let cloud = FakeCloud::start_with(Some(300), Some(1), Some(900), Duration::ZERO).await;
    let client = ImpersonationClient::new(cloud.config()).unwrap();
    client.token(USER, "zrh").await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    Mock::given(matchers::path(TOKEN_PATH))
        .and(|r: &wiremock::Request| grant_type(r).as_deref() == Some(UMA))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({"error": "invalid_token"})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&cloud.server)
        .await;
    let t = client.token("b@example.com", "zrh").await.unwrap();
    assert_eq!(t.token.expose_secret(), "imp-b@example.com-2");
    assert_eq!(
        cloud.counts(),
        (2, 2, 2),
        "the refused SA token was replaced and step 2 repeated"
    );
    let subject = cloud
        .requests()
        .await
        .last()
        .unwrap()
        .body_json::<serde_json::Value>()
        .unwrap();
    assert_eq!(subject["subject_token"], "sa-token-2");
}

#[tokio::test]
async fn rpt_refusal_of_a_fresh_sa_token_is_final() {
    let cloud = FakeCloud::start(Some(300), Some(900), Duration::ZERO).await;
    Mock::given(matchers::path(TOKEN_PATH))
        .and(|r: &wiremock::Request| grant_type(r).as_deref() == Some(UMA))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({"error": "invalid_token"})))
        .with_priority(1)
        .mount(&cloud.server)
        .await;
    let client = ImpersonationClient::new(cloud.config()).unwrap();
    let e = client.token(USER, "zrh").await.unwrap_err();
    assert_eq!((e.step(), e.status()), (Some(Step::Rpt), Some(401)));
    assert_eq!(
        e.to_string(),
        "impersonation step 2 (UMA RPT) failed (HTTP 401): invalid_token"
    );
    assert_eq!(cloud.counts(), (1, 0, 0));
}

#[tokio::test]
async fn timeouts_name_the_step() {
    let cloud = FakeCloud::start(Some(300), Some(900), Duration::from_secs(3)).await;
    let mut config = cloud.config();
    config.timeout = Duration::from_millis(300);
    config.retry = RetryPolicy {
        attempts: 2,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
    };
    let counters = Arc::new(AuthCounters::default());
    let client = ImpersonationClient::with_observer(config, counters.clone()).unwrap();
    let started = Instant::now();
    let error = client.token(USER, "zrh").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded by timeout x attempts"
    );
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
    assert_eq!(
        error.to_string(),
        "impersonation step 3 (impersonate) timed out: no answer within 0.3s (after 2 attempts)"
    );
    assert_eq!(counters.snapshot().impersonate.timeout, 2);
}

#[tokio::test]
async fn connection_errors_are_transport_errors_and_retried() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let config = fast_config(
        format!("http://127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}/{{region}}/"),
    );
    let counters = Arc::new(AuthCounters::default());
    let client = ImpersonationClient::with_observer(config, counters.clone()).unwrap();
    let error = client.token(USER, "zrh").await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Transport {
                step: Step::ServiceAccountToken,
                attempts: 3,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("transport error"), "{error}");
    assert_eq!(counters.snapshot().service_account_token.transport, 3);
}

#[tokio::test]
async fn a_200_without_access_token_is_an_invalid_response() {
    let cloud = FakeCloud::start(Some(300), Some(900), Duration::ZERO).await;
    Mock::given(matchers::path(
        "/zrh/direct/service_provider/api/v1/user/impersonate",
    ))
    .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"impersonated_token": "x"})))
    .with_priority(1)
    .mount(&cloud.server)
    .await;
    let client = ImpersonationClient::new(cloud.config()).unwrap();
    let error = client.token(USER, "zrh").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "impersonation step 3 (impersonate) failed (HTTP 200): the 200 answer has no access_token"
    );
    assert_eq!(error.metric_label(), "invalid_response");
}

#[tokio::test]
async fn bad_input_is_refused_before_any_request() {
    let cloud = FakeCloud::start(Some(300), Some(900), Duration::ZERO).await;
    let client = ImpersonationClient::new(cloud.config()).unwrap();
    let e = client.token(USER, "ZRH").await.unwrap_err();
    assert!(
        matches!(&e, Error::InvalidRegion { region } if region == "ZRH"),
        "{e}"
    );
    let e = client.token("not-an-email", "zrh").await.unwrap_err();
    assert!(e.to_string().contains("user_email"), "{e}");
    assert!(client.provider(USER, "").is_err());
    assert!(cloud.requests().await.is_empty());

    let bad = ImpersonationConfig {
        impersonation_url: "https://direct.zrh.cloudsigma.com/".into(),
        ..cloud.config()
    };
    let e = ImpersonationClient::new(bad).unwrap_err();
    assert!(e.to_string().contains("impersonation_url"), "{e}");
    let bad = ImpersonationConfig {
        oauth_url: "not a url".into(),
        ..cloud.config()
    };
    assert!(
        ImpersonationClient::new(bad)
            .unwrap_err()
            .to_string()
            .contains("oauth_url")
    );
}

#[tokio::test]
async fn endpoints_follow_the_templates() {
    let config = ImpersonationConfig::new(CLIENT_ID, secrecy::SecretString::from(CLIENT_SECRET));
    let client = ImpersonationClient::new(config).unwrap();
    assert_eq!(
        client.token_endpoint().as_str(),
        "https://oauth.cloudsigma.com/realms/cloudsigma/protocol/openid-connect/token"
    );
    assert_eq!(
        client.impersonation_endpoint("next").unwrap().as_str(),
        "https://direct.next.cloudsigma.com/service_provider/api/v1/user/impersonate"
    );
}
