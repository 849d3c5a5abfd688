//! TLS certificate verification is always on for the OAuth and impersonation endpoints: an https
//! endpoint with a certificate no trusted authority issued fails step 1 with a transport error naming the
//! certificate, before the client secret is sent.
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "../../cs-api/tests/support/tls_server.rs"]
mod tls_server;

use std::time::Duration;

use cs_auth::{Error, ImpersonationClient, ImpersonationConfig, RetryPolicy, Step};
use secrecy::SecretString;

const SECRET: &str = "tls-client-secret-5e2a77";

#[tokio::test]
async fn an_https_oauth_endpoint_with_a_self_signed_certificate_is_refused_before_any_request() {
    let (url, seen) = tls_server::start();
    let client = ImpersonationClient::new(ImpersonationConfig {
        oauth_url: url.clone(),
        impersonation_url: format!("{url}/{{region}}/"),
        timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            attempts: 1,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        },
        ..ImpersonationConfig::new("kubernetes_cluster_service", SecretString::from(SECRET))
    })
    .unwrap();
    let error = client.token("tenant@example.com", "zrh").await.unwrap_err();
    let Error::Transport { step, message, .. } = &error else {
        panic!("expected a transport error, got {error:?}");
    };
    assert_eq!(*step, Step::ServiceAccountToken);
    assert!(
        message.to_ascii_lowercase().contains("certificate"),
        "the error names the certificate problem: {message}"
    );
    assert!(!format!("{error} {error:?}").contains(SECRET));
    let seen = tls_server::after_failed_handshake(&seen);
    assert!(seen.requests.is_empty(), "nothing was sent: {seen:?}");
    assert!(!seen.failed_handshakes.is_empty(), "{seen:?}");
}
