//! Bad input for the impersonation flow's decoders: arbitrary error bodies (OAuth and CloudSigma shapes
//! with the client secret echoed in every encoding, control characters, very long text, wrong types,
//! HTML, arbitrary bytes) and arbitrary 200 bodies (missing, empty or mistyped `access_token`,
//! `expires_in` of any type and size). The flow never panics; error messages are built from the known
//! fields only, scrubbed of the secret, free of control characters and at most 300 characters (+ `…`);
//! lifetimes follow docs/auth.md.
//!
//! Proptest runs 64 cases per property with a fixed seed (each case is a few local HTTP requests);
//! `PROPTEST_CASES` and `PROPTEST_RNG_SEED` override both.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::{sync::Arc, time::Duration};

use cs_auth::{Error, ImpersonationClient, ImpersonationConfig, RetryPolicy, Step};
use proptest::{
    prelude::*,
    test_runner::{Config as ProptestConfig, RngSeed},
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers};

/// A client secret with characters that differ in raw, form-urlencoded and JSON-escaped form.
const SECRET: &str = "cs+Sec/ret=\"9f\\3a 61&c2";
/// Stands for anything else a body may hold: never shown.
const MARKER: &str = "Body-Marker-77d1e0";
const TOKEN_PATH: &str = "/auth/realms/cloudsigma/protocol/openid-connect/token";
const IMPERSONATE_PATH: &str = "/zrh/service_provider/api/v1/user/impersonate";
const EMAIL: &str = "tenant@example.com";

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 64;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0x00a0_7415_eed0);
    }
    config.failure_persistence = None;
    config
}

/// Every encoding in which a request's secret could be echoed back.
fn secret_forms() -> Vec<String> {
    let form: String = url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
    let json = serde_json::to_string(SECRET).unwrap();
    vec![SECRET.to_owned(), form, json.trim_matches('"').to_owned()]
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    server: MockServer,
}

impl Harness {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime.block_on(MockServer::start());
        Self { runtime, server }
    }

    /// A fresh client (empty caches), one request per step, short timeouts.
    fn client(&self) -> ImpersonationClient {
        let uri = self.server.uri();
        ImpersonationClient::new(ImpersonationConfig {
            oauth_url: format!("{uri}/auth"),
            impersonation_url: format!("{uri}/{{region}}/"),
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            retry: RetryPolicy {
                attempts: 1,
                min_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(2),
            },
            ..ImpersonationConfig::new("kubernetes_cluster_service", SecretString::from(SECRET))
        })
        .unwrap()
    }

    /// Serves `token` on the Keycloak token URL (steps 1 and 2) and `impersonate` on step 3, then runs
    /// the flow once.
    fn flow(
        &self,
        token: ResponseTemplate,
        impersonate: ResponseTemplate,
    ) -> Result<cs_auth::ImpersonatedToken, Error> {
        self.runtime.block_on(async {
            self.server.reset().await;
            Mock::given(matchers::method("POST"))
                .and(matchers::path(TOKEN_PATH))
                .respond_with(token)
                .mount(&self.server)
                .await;
            Mock::given(matchers::method("POST"))
                .and(matchers::path(IMPERSONATE_PATH))
                .respond_with(impersonate)
                .mount(&self.server)
                .await;
            self.client().token(EMAIL, "zrh").await
        })
    }
}

thread_local! {
    static HARNESS: Arc<Harness> = Arc::new(Harness::new());
}

/// Text for a known field: plain words, arbitrary Unicode, the secret (alone or inside a sentence),
/// control characters, very long text, or a value of the wrong type.
fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-z_ ]{1,30}".prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        Just(json!(SECRET)),
        prop::sample::select(secret_forms()).prop_map(|s| json!(format!("client secret {s} is invalid"))),
        Just(json!("line one\nforged: line\r\n\u{1b}[31mred\u{7}")),
        (280usize..5000).prop_map(|n| json!(format!("{}{SECRET}", "é".repeat(n)))),
        Just(json!(42)),
        Just(json!(null)),
        Just(json!({"nested": MARKER})),
        Just(json!([MARKER])),
    ]
}

fn object_with(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(prop::option::of(field_value()), keys.len()),
        any::<bool>(),
    )
        .prop_map(move |(values, extra)| {
            let mut o = serde_json::Map::new();
            for (k, v) in keys.iter().zip(values) {
                if let Some(v) = v {
                    o.insert((*k).to_owned(), v);
                }
            }
            if extra {
                o.insert("detail".into(), json!(MARKER));
                o.insert("access_token".into(), json!(MARKER));
            }
            Value::Object(o)
        })
}

/// Error bodies in every shape the endpoints (or a proxy in front of them) might send.
fn error_body() -> impl Strategy<Value = Vec<u8>> {
    const OAUTH: &[&str] = &["error", "error_description"];
    const CLOUDSIGMA: &[&str] = &["error_type", "error_message", "error_point"];
    prop_oneof![
        3 => object_with(OAUTH).prop_map(|v| serde_json::to_vec(&v).unwrap()),
        2 => object_with(CLOUDSIGMA).prop_map(|v| serde_json::to_vec(&v).unwrap()),
        2 => prop::collection::vec(object_with(CLOUDSIGMA), 0..4).prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => Just(format!("<html><title>502</title>{MARKER} {SECRET}</html>").into_bytes()),
        1 => Just(Vec::new()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
}

/// `expires_in` of every type and size.
fn expires_in() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(prop_oneof![
        (0u64..100_000).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        Just(json!(1e300)),
        Just(json!(-1e300)),
        Just(json!("900")),
        Just(json!(" 60 ")),
        Just(json!("soon")),
        Just(json!(null)),
        Just(json!([900])),
        Just(json!({"s": 900})),
    ])
}

/// Documented lifetime for an `expires_in` (docs/auth.md): a positive number of seconds (a string
/// holding one counts; fractions are cut), anything else 900 s.
fn documented_lifetime_secs(value: &Option<Value>) -> Option<f64> {
    let secs = match value.as_ref()? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<u64>().ok()? as f64,
        _ => return None,
    };
    (secs >= 1.0).then_some(secs.floor())
}

fn assert_clean(text: &str) {
    for form in secret_forms() {
        assert!(!text.contains(&form), "the secret ({form}) is shown: {text}");
    }
    assert!(!text.contains(MARKER), "an unknown field is shown: {text}");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn error_bodies_give_short_scrubbed_messages_from_known_fields_only(
        status in prop::sample::select(vec![400u16, 401, 403, 404, 429, 500, 502, 503, 504]),
        body in error_body(),
    ) {
        let h = HARNESS.with(Arc::clone);
        let error = h
            .flow(
                ResponseTemplate::new(status).set_body_raw(body.clone(), "application/json"),
                ResponseTemplate::new(500),
            )
            .unwrap_err();
        let Error::Impersonation { step, status: got, message, .. } = &error else {
            panic!("expected an impersonation error, got {error:?}");
        };
        prop_assert_eq!(*step, Step::ServiceAccountToken);
        prop_assert_eq!(*got, Some(status));
        prop_assert!(message.chars().count() <= 301, "{} chars", message.chars().count());
        prop_assert!(!message.chars().any(char::is_control), "{:?}", message);
        assert_clean(message);
        assert_clean(&error.to_string());
        assert_clean(&format!("{error:?}"));
        if !body.is_empty() && serde_json::from_slice::<Value>(&body).is_err() {
            prop_assert!(message.contains(&format!("body of {} bytes not shown", body.len())), "{}", message);
        }
    }

    #[test]
    fn any_200_body_gives_a_token_or_a_clear_error_and_lifetimes_follow_expires_in(
        token in prop_oneof![
            3 => Just(json!("sa-token-ok")),
            1 => Just(json!("")),
            1 => Just(json!("   ")),
            1 => Just(json!(null)),
            1 => Just(json!(17)),
            1 => Just(json!({"value": MARKER})),
        ],
        sa_expires in expires_in(),
        user_expires in expires_in(),
        garbage in prop::option::of(prop_oneof![
            Just(b"not json".to_vec()),
            Just(b"{\"access_token\":\"tru".to_vec()),
            Just(b"[]".to_vec()),
            prop::collection::vec(any::<u8>(), 0..64),
        ]),
    ) {
        let h = HARNESS.with(Arc::clone);
        let mut body = json!({"access_token": token, "token_type": "Bearer"});
        if let Some(e) = &sa_expires {
            body["expires_in"] = e.clone();
        }
        let body = match &garbage {
            Some(bytes) => bytes.clone(),
            None => serde_json::to_vec(&body).unwrap(),
        };
        let mut user = json!({"access_token": "user-token-1"});
        if let Some(e) = &user_expires {
            user["expires_in"] = e.clone();
        }
        let result = h.flow(
            ResponseTemplate::new(200).set_body_raw(body.clone(), "application/json"),
            ResponseTemplate::new(200).set_body_json(user),
        );
        let usable = garbage.is_none() && token.as_str().is_some_and(|t| !t.trim().is_empty());
        match result {
            Ok(issued) => {
                prop_assert!(usable, "a token from {:?}", String::from_utf8_lossy(&body));
                prop_assert_eq!(issued.token.expose_secret(), "user-token-1");
                // Even an absurd lifetime is kept as reported (capped at u64 seconds), without overflow.
                match documented_lifetime_secs(&user_expires) {
                    Some(secs) => prop_assert_eq!(issued.lifetime.as_secs() as f64, secs.min(u64::MAX as f64)),
                    None => prop_assert_eq!(issued.lifetime, Duration::from_secs(900)),
                }
                prop_assert!(issued.issued_at < issued.refresh_at && issued.refresh_at <= issued.expires_at);
            }
            Err(error) => {
                prop_assert!(!usable, "{:?}", error);
                let Error::Impersonation { step, status, message, .. } = &error else {
                    panic!("expected an impersonation error, got {error:?}");
                };
                prop_assert_eq!(*step, Step::ServiceAccountToken);
                prop_assert_eq!(*status, Some(200));
                prop_assert!(
                    message.contains("no access_token") || message.contains("not a JSON token response"),
                    "{}", message
                );
                assert_clean(&format!("{error} {error:?}"));
            }
        }
    }
}
