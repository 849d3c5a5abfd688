//! Helpers shared by the integration tests: plain reqwest calls, no cs-api.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use cs_emulator::{Config, DriveSeed, Emulator, NicSeed, ServerSeed};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const USER: &str = "user@example.com";
pub const PASS: &str = "pass";
pub const OTHER: &str = "other@example.com";
pub const OTHER_PASS: &str = "other-pass";
pub const GIB: u64 = 1024 * 1024 * 1024;

/// An emulator with two users.
pub async fn emulator() -> Emulator {
    emulator_with(Config::default()).await
}

pub async fn emulator_with(cfg: Config) -> Emulator {
    let emu = Emulator::start_with(cfg).await.unwrap();
    emu.add_user(USER, PASS);
    emu.add_user(OTHER, OTHER_PASS);
    emu
}

/// Delays long enough to observe intermediate states reliably on a busy machine.
pub fn slow() -> Config {
    let d = Duration::from_millis(300);
    Config {
        drive_create_delay: d,
        detach_delay: d,
        resize_delay: d,
        clone_delay: d,
        snapshot_delay: d,
        server_transition_delay: d,
        ..Config::default()
    }
}

/// Credentials for one call.
#[derive(Clone)]
pub enum Auth {
    None,
    Basic(String, String),
    Bearer(String),
}

pub fn basic(user: &str, pass: &str) -> Auth {
    Auth::Basic(user.into(), pass.into())
}

pub fn user() -> Auth {
    basic(USER, PASS)
}

pub fn other() -> Auth {
    basic(OTHER, OTHER_PASS)
}

/// A response: status, headers and the body as JSON (`Value::Null` when empty, `Value::String` when not
/// JSON).
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

thread_local! {
    /// One client per test thread: building a reqwest client costs tens of milliseconds.
    static CLIENT: reqwest::Client = reqwest::Client::new();
}

/// The test thread's client.
pub fn client() -> reqwest::Client {
    CLIENT.with(|c| c.clone())
}

pub async fn call(method: Method, url: &str, auth: &Auth, body: Option<Value>) -> Resp {
    let client = client();
    let mut rb = client.request(method, url);
    rb = match auth {
        Auth::None => rb,
        Auth::Basic(u, p) => rb.basic_auth(u, Some(p)),
        Auth::Bearer(t) => rb.bearer_auth(t),
    };
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()))
    };
    Resp {
        status,
        headers,
        text,
        body,
    }
}

pub async fn get(url: &str, auth: &Auth) -> Resp {
    call(Method::GET, url, auth, None).await
}

pub async fn post(url: &str, auth: &Auth, body: Value) -> Resp {
    call(Method::POST, url, auth, Some(body)).await
}

pub async fn put(url: &str, auth: &Auth, body: Value) -> Resp {
    call(Method::PUT, url, auth, Some(body)).await
}

pub async fn delete(url: &str, auth: &Auth) -> Resp {
    call(Method::DELETE, url, auth, None).await
}

/// Asserts a CloudSigma error array with one entry of this type and point.
pub fn assert_error(r: &Resp, status: u16, error_type: &str, point: Option<&str>) {
    assert_eq!(r.status.as_u16(), status, "body: {}", r.text);
    let arr = r
        .body
        .as_array()
        .unwrap_or_else(|| panic!("error body is not an array: {}", r.text));
    assert_eq!(arr.len(), 1, "{}", r.text);
    let e = &arr[0];
    assert_eq!(e["error_type"], error_type, "{}", r.text);
    assert!(
        e["error_message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        r.text
    );
    let obj = e.as_object().unwrap();
    assert!(
        obj.contains_key("error_point"),
        "error_point key must always be present: {}",
        r.text
    );
    assert_eq!(e["error_point"].as_str(), point, "{}", r.text);
}

/// Polls `f` every 10 ms until it holds (at most 3 s).
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// A drive seeded ready.
pub fn drive_seed(name: &str, size: u64) -> DriveSeed {
    DriveSeed {
        name: name.into(),
        size,
        ..DriveSeed::default()
    }
}

/// A running server with one public NIC.
pub fn server_seed(name: &str, ip: &str) -> ServerSeed {
    ServerSeed {
        name: name.into(),
        nics: vec![NicSeed::Public {
            ip_v4: Some(ip.parse().unwrap()),
            ip_v6: None,
        }],
        ..ServerSeed::default()
    }
}

/// The minimal create body of the fact sheet.
pub fn minimal_server(name: &str) -> Value {
    json!({"objects": [{"name": name, "cpu": 1000, "mem": 536870912, "vnc_password": "p"}]})
}

/// A server-drive entry for a PUT.
pub fn attach(drive: &str, channel: &str) -> Value {
    json!({"boot_order": null, "dev_channel": channel, "device": "virtio", "drive": drive})
}

/// OAuth: client credentials -> SA token, UMA -> RPT.
pub async fn sa_and_rpt(emu: &Emulator, id: &str, secret: &str) -> (String, String) {
    let c = client();
    let r = c
        .post(emu.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let sa: Value = r.json().await.unwrap();
    let sa = sa["access_token"].as_str().unwrap().to_owned();
    let r = c
        .post(emu.token_url())
        .bearer_auth(&sa)
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:uma-ticket"),
            ("audience", "service_provider_api"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rpt: Value = r.json().await.unwrap();
    (sa, rpt["access_token"].as_str().unwrap().to_owned())
}

/// Full flow: impersonated token for `email` in `loc`.
pub async fn impersonate(emu: &Emulator, loc: &str, id: &str, secret: &str, email: &str) -> Resp {
    let (sa, rpt) = sa_and_rpt(emu, id, secret).await;
    post(
        &emu.impersonate_url(loc),
        &Auth::Bearer(rpt),
        json!({"user_email": email, "subject_token": sa}),
    )
    .await
}
