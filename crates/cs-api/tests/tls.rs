//! TLS certificate verification is always on: an https API URL served with a certificate no trusted
//! authority issued fails with a transport error naming the certificate, and no request (so no
//! credential) is ever sent over that connection. Nothing in this client can switch verification off.
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "support/tls_server.rs"]
mod tls_server;

use std::{path::Path, sync::Arc, time::Duration};

use cs_api::{Client, ClientOptions, Endpoints, Error};
use cs_auth::UsernamePasswordProvider;
use secrecy::SecretString;

const PASSWORD: &str = "tls-Pw-Known-0c41b9";

#[tokio::test]
async fn an_https_api_with_a_self_signed_certificate_is_refused_before_any_request() {
    let (url, seen) = tls_server::start();
    // Control: a client that trusts this very certificate gets the server's answer, so the server works
    // and the refusal below is the certificate check and nothing else.
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(tls_server::CERT_PEM).unwrap())
        .build()
        .unwrap();
    let answer = trusting.get(format!("{url}/api/2.0/")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(seen.lock().unwrap().requests.len(), 1);

    let provider = UsernamePasswordProvider::new("a@example.com", SecretString::from(PASSWORD)).unwrap();
    let options = ClientOptions {
        max_attempts: 1,
        timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    };
    let client = Client::new(
        Endpoints::single(&format!("{url}/api/2.0/")).unwrap(),
        Arc::new(provider),
        options,
    )
    .unwrap();
    let error = client.get_server("s1").await.unwrap_err();
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    let text = tls_server::chain(&error);
    assert!(
        text.to_ascii_lowercase().contains("certificate"),
        "the error names the certificate problem: {text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");
    let seen = tls_server::after_failed_handshake(&seen);
    assert_eq!(
        seen.requests.len(),
        1,
        "no request after the refused handshake: {seen:?}"
    );
    assert!(!seen.failed_handshakes.is_empty(), "{seen:?}");
}

/// Source patterns that would weaken certificate checks (reqwest's and rustls's escape hatches).
const WEAKENING: &[&str] = &[
    "danger_accept_invalid_certs",
    "danger_accept_invalid_hostnames",
    "tls_built_in_root_certs(false)",
    "tls_danger",
    "dangerous()",
    "with_custom_certificate_verifier",
    "ServerCertVerifier",
    "NoCertificateVerification",
];

#[test]
fn no_crate_of_the_csi_and_api_path_can_switch_certificate_checks_off() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut scanned = 0;
    for dir in [
        "crates/cs-api/src",
        "crates/cs-auth/src",
        "crates/csi-tokenfile/src",
        "crates/csi-driver/src",
        "bins/csi-controller/src",
        "bins/ccm/src",
    ] {
        let mut stack = vec![root.join(dir)];
        while let Some(path) = stack.pop() {
            for entry in std::fs::read_dir(&path).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    scanned += 1;
                    for pattern in WEAKENING {
                        assert!(
                            !text.contains(pattern),
                            "{} contains {pattern}: certificate checks must stay on",
                            path.display()
                        );
                    }
                }
            }
        }
    }
    assert!(scanned > 20, "only {scanned} files scanned");
}
