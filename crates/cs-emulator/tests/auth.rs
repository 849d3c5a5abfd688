//! Authentication: Basic, Bearer, Keycloak client credentials and UMA, impersonation, the direct-host
//! rule and token expiry.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use cs_emulator::{Config, Emulator};
use serde_json::{Value, json};

const CLIENT_ID: &str = "kubernetes_cluster_service";
const SECRET: &str = "client-secret-for-tests";
const SA: &str = "sa@example.com";

async fn with_client(cfg: Config) -> Emulator {
    let emu = emulator_with(cfg).await;
    emu.add_oauth_client(CLIENT_ID, SECRET, SA);
    emu
}

async fn token_call(emu: &Emulator, form: &[(&str, &str)], bearer: Option<&str>) -> (u16, Value) {
    let mut rb = client().post(emu.token_url()).form(form);
    if let Some(b) = bearer {
        rb = rb.bearer_auth(b);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn client_credentials_then_uma_ticket() {
    let emu = with_client(Config {
        sa_token_lifetime: Duration::from_secs(120),
        ..Config::default()
    })
    .await;
    let (status, sa) = token_call(
        &emu,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(sa["token_type"], "Bearer");
    assert_eq!(sa["expires_in"], 120);
    let sa_token = sa["access_token"].as_str().unwrap();
    assert!(sa_token.len() >= 32);
    let (status, rpt) = token_call(
        &emu,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:uma-ticket"),
            ("audience", "service_provider_api"),
        ],
        Some(sa_token),
    )
    .await;
    assert_eq!(status, 200, "{rpt}");
    assert_eq!(rpt["expires_in"], 300);
    assert_ne!(rpt["access_token"], sa["access_token"]);
    // Client secret in a Basic header (client_secret_basic) works too.
    let r = client()
        .post(emu.token_url())
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn token_endpoint_errors_are_oauth_shaped() {
    let emu = with_client(Config::default()).await;
    let (status, body) = token_call(
        &emu,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", "wrong"),
        ],
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "unauthorized_client");
    assert!(body["error_description"].is_string());
    assert!(
        !body.to_string().contains("wrong"),
        "the secret must not be echoed"
    );
    let (status, body) = token_call(
        &emu,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "nope"),
            ("client_secret", SECRET),
        ],
        None,
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    let (status, body) = token_call(&emu, &[("client_id", CLIENT_ID)], None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")));
    let (status, body) = token_call(&emu, &[("grant_type", "password")], None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    // UMA without a (valid) SA bearer, or with the wrong audience.
    let uma = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:uma-ticket"),
        ("audience", "service_provider_api"),
    ];
    assert_eq!(token_call(&emu, &uma, None).await.0, 401);
    assert_eq!(token_call(&emu, &uma, Some("forged")).await.0, 401);
    let (sa, rpt) = sa_and_rpt(&emu, CLIENT_ID, SECRET).await;
    assert_eq!(
        token_call(&emu, &uma, Some(&rpt)).await.0,
        401,
        "an RPT is not an SA token"
    );
    let (status, body) = token_call(
        &emu,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:uma-ticket"),
            ("audience", "x"),
        ],
        Some(&sa),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")));
    // JSON instead of a form.
    let r = client()
        .post(emu.token_url())
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn impersonated_token_acts_as_the_user_on_the_direct_host() {
    let emu = with_client(Config::default()).await;
    let mine = emu.add_server("zrh", USER, server_seed("tenant-vm", "203.0.113.5"));
    let r = impersonate(&emu, "zrh", CLIENT_ID, SECRET, USER).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 900);
    let token = Auth::Bearer(r.body["access_token"].as_str().unwrap().to_owned());
    let list = get(&format!("{}servers/", emu.direct_api_url("zrh")), &token).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["objects"][0]["uuid"], mine.as_str());
    let prof = get(&format!("{}profile/", emu.direct_api_url("zrh")), &token).await;
    assert_eq!(prof.body["email"], USER);
    // Created on the direct host -> owned by the user.
    let r = post(
        &format!("{}servers/", emu.direct_api_url("zrh")),
        &token,
        minimal_server("by-impersonation"),
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.body["objects"][0]["owner"]["uuid"],
        emu.user_uuid(USER).unwrap().as_str()
    );
}

#[tokio::test]
async fn impersonated_token_on_the_regular_host_acts_as_the_service_account() {
    let emu = with_client(Config::default()).await;
    emu.add_server("zrh", USER, server_seed("tenant-vm", "203.0.113.5"));
    let r = impersonate(&emu, "zrh", CLIENT_ID, SECRET, USER).await;
    let token = Auth::Bearer(r.body["access_token"].as_str().unwrap().to_owned());
    // The wrong host: the tenant's server is invisible and a create lands in the SA's account.
    let list = get(&format!("{}servers/", emu.api_url("zrh")), &token).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["meta"]["total_count"], 0);
    assert_eq!(
        get(&format!("{}profile/", emu.api_url("zrh")), &token).await.body["email"],
        SA
    );
    let r = post(
        &format!("{}servers/", emu.api_url("zrh")),
        &token,
        minimal_server("wrong-account"),
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.body["objects"][0]["owner"]["uuid"],
        emu.user_uuid(SA).unwrap().as_str()
    );
    let tenant = get(&format!("{}servers/", emu.api_url("zrh")), &user()).await;
    assert_eq!(
        tenant.body["meta"]["total_count"], 1,
        "the tenant did not get the server"
    );
    let log = emu.requests();
    let last = log
        .iter()
        .rev()
        .find(|r| r.method == "POST" && r.route == "POST /api/2.0/servers/")
        .unwrap();
    assert_eq!(last.user.as_deref(), Some(SA));
}

#[tokio::test]
async fn impersonated_tokens_are_per_location() {
    let emu = with_client(Config {
        locations: vec!["zrh".into(), "fra".into()],
        ..Config::default()
    })
    .await;
    let r = impersonate(&emu, "zrh", CLIENT_ID, SECRET, USER).await;
    let token = Auth::Bearer(r.body["access_token"].as_str().unwrap().to_owned());
    assert_eq!(
        get(&format!("{}servers/", emu.direct_api_url("zrh")), &token)
            .await
            .status,
        200
    );
    assert_error(
        &get(&format!("{}servers/", emu.direct_api_url("fra")), &token).await,
        401,
        "permission",
        None,
    );
    assert_error(
        &get(&format!("{}servers/", emu.api_url("fra")), &token).await,
        401,
        "permission",
        None,
    );
}

#[tokio::test]
async fn impersonation_errors() {
    let emu = with_client(Config::default()).await;
    let url = emu.impersonate_url("zrh");
    let (sa, rpt) = sa_and_rpt(&emu, CLIENT_ID, SECRET).await;
    // Unknown user.
    let r = post(
        &url,
        &Auth::Bearer(rpt.clone()),
        json!({"user_email": "ghost@example.com", "subject_token": sa}),
    )
    .await;
    assert_error(&r, 404, "notexist", Some("user_email"));
    // Missing fields.
    let r = post(&url, &Auth::Bearer(rpt.clone()), json!({"subject_token": sa})).await;
    assert_error(&r, 400, "validation", Some("user_email"));
    let r = post(&url, &Auth::Bearer(rpt.clone()), json!({"user_email": USER})).await;
    assert_error(&r, 400, "validation", Some("subject_token"));
    // The SA token is not an RPT, and the RPT is not a subject token.
    let r = post(
        &url,
        &Auth::Bearer(sa.clone()),
        json!({"user_email": USER, "subject_token": sa}),
    )
    .await;
    assert_error(&r, 401, "permission", None);
    let r = post(
        &url,
        &Auth::Bearer(rpt.clone()),
        json!({"user_email": USER, "subject_token": rpt}),
    )
    .await;
    assert_error(&r, 401, "permission", None);
    let r = post(
        &url,
        &Auth::None,
        json!({"user_email": USER, "subject_token": sa}),
    )
    .await;
    assert_error(&r, 401, "permission", None);
    // Only on the direct host.
    let plain = format!("{}/zrh/service_provider/api/v1/user/impersonate", emu.base_url());
    assert_eq!(
        post(
            &plain,
            &Auth::Bearer(rpt),
            json!({"user_email": USER, "subject_token": sa})
        )
        .await
        .status,
        404
    );
    // SA tokens are not API tokens.
    assert_error(
        &get(
            &format!("{}servers/", emu.direct_api_url("zrh")),
            &Auth::Bearer(sa),
        )
        .await,
        401,
        "permission",
        None,
    );
}

#[tokio::test]
async fn expired_tokens_are_refused_with_401() {
    let emu = with_client(Config {
        token_lifetime: Duration::from_millis(300),
        ..Config::default()
    })
    .await;
    let r = impersonate(&emu, "zrh", CLIENT_ID, SECRET, USER).await;
    assert_eq!(r.body["expires_in"], 1, "sub-second lifetimes round up");
    let token = Auth::Bearer(r.body["access_token"].as_str().unwrap().to_owned());
    let url = format!("{}servers/", emu.direct_api_url("zrh"));
    assert_eq!(get(&url, &token).await.status, 200);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_error(&get(&url, &token).await, 401, "permission", None);
    // Expired SA tokens no longer buy RPTs either.
    let emu = with_client(Config {
        sa_token_lifetime: Duration::from_millis(100),
        ..Config::default()
    })
    .await;
    let (sa, _) = sa_and_rpt(&emu, CLIENT_ID, SECRET).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (status, _) = token_call(
        &emu,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:uma-ticket"),
            ("audience", "service_provider_api"),
        ],
        Some(&sa),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn basic_auth_works_on_both_hosts_and_issue_token_on_the_direct_host_only() {
    let emu = emulator().await;
    assert_eq!(
        get(&format!("{}servers/", emu.api_url("zrh")), &user())
            .await
            .status,
        200
    );
    assert_eq!(
        get(&format!("{}servers/", emu.direct_api_url("zrh")), &user())
            .await
            .status,
        200
    );
    assert_eq!(
        get(&format!("{}/api/2.0/servers/", emu.base_url()), &user())
            .await
            .status,
        200
    );
    let t = Auth::Bearer(emu.issue_token("zrh", USER));
    assert_eq!(
        get(&format!("{}profile/", emu.direct_api_url("zrh")), &t)
            .await
            .body["email"],
        USER
    );
    assert_error(
        &get(&format!("{}profile/", emu.api_url("zrh")), &t).await,
        401,
        "permission",
        None,
    );
}
