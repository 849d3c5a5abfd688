//! Secret hygiene over the whole flow against the wiremock fake: success, failures whose bodies echo
//! the secrets, and the fallback path. Every provider, grant, token and error is formatted with `{:?}`
//! and `{}`, and all `tracing` output (every crate, TRACE) is captured; no secret may appear.
#![allow(clippy::unwrap_used)]

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use cs_auth::{
    CredentialsProvider, FallbackProvider, ImpersonationClient, SharedProvider, UsernamePasswordProvider,
};
use secrecy::{ExposeSecret, SecretString};
use wiremock::{Mock, Request, Respond, ResponseTemplate, matchers};

const PASSWORD: &str = "legacy-password-5be2d7";

/// Fails with a body that echoes the request's Authorization header and body back.
struct Echo(u16);

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let auth = header(request, "authorization").unwrap_or("-").to_owned();
        let body = String::from_utf8_lossy(&request.body).into_owned();
        ResponseTemplate::new(self.0).set_body_json(serde_json::json!({
            "error": "server_error",
            "error_description": format!("auth={auth} body={body}"),
        }))
    }
}

/// A provider that always fails.
#[derive(Debug)]
struct Broken;

#[async_trait::async_trait]
impl CredentialsProvider for Broken {
    async fn credentials(&self) -> cs_auth::Result<cs_auth::Grant> {
        Err(cs_auth::Error::Unavailable {
            provider: "broken",
            reason: "always fails".into(),
        })
    }
    async fn invalidate(&self) {}
    fn name(&self) -> &'static str {
        "broken"
    }
}

#[tokio::test]
async fn no_secret_in_any_output_across_the_flow() {
    let (logs, _guard) = capture_logs();
    let cloud = FakeCloud::start(Some(300), Some(900), Duration::ZERO).await;
    let client = ImpersonationClient::new(cloud.config()).unwrap();
    let mut outputs: Vec<String> = Vec::new();
    fn debug(out: &mut Vec<String>, v: &dyn std::fmt::Debug) {
        out.push(format!("{v:?} {v:#?}"));
    }

    // Success: tokens of all three steps are issued.
    let token = client.token("tenant@example.com", "zrh").await.unwrap();
    let impersonated = token.token.expose_secret().to_owned();
    let provider = client.provider("tenant@example.com", "zrh").unwrap();
    let grant = provider.credentials().await.unwrap();
    debug(&mut outputs, &client);
    debug(&mut outputs, &cloud.config());
    debug(&mut outputs, &token);
    debug(&mut outputs, &provider);
    debug(&mut outputs, &grant);

    // Step 3 fails with a body echoing the RPT and the SA token: retried, then an error.
    Mock::given(matchers::path(
        "/zrh/direct/service_provider/api/v1/user/impersonate",
    ))
    .respond_with(Echo(502))
    .with_priority(1)
    .mount(&cloud.server)
    .await;
    let e3 = client.token("second@example.com", "zrh").await.unwrap_err();
    outputs.push(e3.to_string());
    debug(&mut outputs, &e3);

    // Fallback: impersonation fails, legacy credentials are served.
    let legacy = UsernamePasswordProvider::new("tenant@example.com", SecretString::from(PASSWORD)).unwrap();
    let primary: SharedProvider = Arc::new(client.provider("second@example.com", "zrh").unwrap());
    let secondary: SharedProvider = Arc::new(legacy.clone());
    let fallback = FallbackProvider::new(primary, secondary, Duration::from_secs(30));
    let served = fallback.credentials().await.unwrap();
    debug(&mut outputs, &served);
    debug(&mut outputs, &fallback);
    debug(&mut outputs, &legacy);

    // Step 1 refused with a body echoing the client secret; both fallback paths failing.
    cloud.server.reset().await;
    Mock::given(matchers::path(TOKEN_PATH))
        .respond_with(Echo(401))
        .mount(&cloud.server)
        .await;
    client.clear().await;
    let e1 = client.token("tenant@example.com", "zrh").await.unwrap_err();
    outputs.push(e1.to_string());
    debug(&mut outputs, &e1);
    let both = FallbackProvider::new(
        Arc::new(client.provider("third@example.com", "zrh").unwrap()),
        Arc::new(Broken),
        Duration::ZERO,
    );
    let all_failed = both.credentials().await.unwrap_err();
    assert!(
        matches!(all_failed, cs_auth::Error::AllFailed { .. }),
        "{all_failed:?}"
    );
    outputs.push(all_failed.to_string());
    debug(&mut outputs, &all_failed);
    let static_token =
        cs_auth::StaticTokenProvider::new(SecretString::from("static-token-31c9"), cs_auth::ApiHost::Direct)
            .unwrap();
    debug(&mut outputs, &static_token);
    debug(&mut outputs, &static_token.credentials().await.unwrap());

    let secrets = [
        CLIENT_SECRET,
        PASSWORD,
        "sa-token-1",
        "sa-token-2",
        "rpt-token-1",
        "rpt-token-2",
        impersonated.as_str(),
        "static-token-31c9",
    ];
    let text = outputs.join("\n");
    assert!(
        text.contains("[REDACTED]"),
        "the echoed secrets were scrubbed, not dropped silently: {text}"
    );
    assert_free_of("formatted values", &text, &secrets);
    let log = logs.text();
    assert!(
        log.contains("obtained an impersonated token"),
        "the capture works: {log}"
    );
    assert!(log.contains("primary credentials failed"), "{log}");
    assert_free_of("tracing output", &log, &secrets);
    // The secrets really were on the wire, so the checks above are meaningful.
    let sent = cloud.requests().await;
    assert!(
        sent.iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains(CLIENT_SECRET))
    );
}
