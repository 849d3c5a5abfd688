//! Error shapes and status codes: 400, 401, 403, 404, 405, 406, strict trailing slash, request ids.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn unknown_uuid_is_404_notexist_array() {
    let emu = emulator().await;
    let id = "11111111-2222-4333-8444-555555555555";
    for res in ["servers", "drives", "snapshots", "vlans"] {
        let r = get(&format!("{}{res}/{id}/", emu.api_url("zrh")), &user()).await;
        assert_error(&r, 404, "notexist", None);
        assert!(r.body[0]["error_message"].as_str().unwrap().contains(id));
    }
    assert_error(
        &get(&format!("{}ips/192.0.2.1/", emu.api_url("zrh")), &user()).await,
        404,
        "notexist",
        None,
    );
    assert_error(
        &get(&format!("{}ips/not-an-ip/", emu.api_url("zrh")), &user()).await,
        404,
        "notexist",
        None,
    );
}

#[tokio::test]
async fn missing_or_wrong_credentials_are_401() {
    let emu = emulator().await;
    let url = format!("{}servers/", emu.api_url("zrh"));
    let r = get(&url, &Auth::None).await;
    assert_error(&r, 401, "permission", None);
    assert!(r.headers.get("www-authenticate").is_some());
    assert_error(&get(&url, &basic(USER, "wrong")).await, 401, "permission", None);
    assert_error(
        &get(&url, &basic("nobody@example.com", "pass")).await,
        401,
        "permission",
        None,
    );
    assert_error(
        &get(&url, &Auth::Bearer("not-a-token".into())).await,
        401,
        "permission",
        None,
    );
    let r = client()
        .get(&url)
        .header("authorization", "Digest xyz")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn another_users_resource_is_403_permission() {
    let emu = emulator().await;
    let theirs = emu.add_server("zrh", OTHER, server_seed("theirs", "203.0.113.9"));
    let drive = emu.add_drive("zrh", OTHER, drive_seed("theirs", GIB));
    let me = emu.user_uuid(USER).unwrap();
    let r = get(&format!("{}servers/{theirs}/", emu.api_url("zrh")), &user()).await;
    assert_error(&r, 403, "permission", None);
    let msg = r.body[0]["error_message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!("User {me} does not have all of the permissions")),
        "{msg}"
    );
    assert!(msg.ends_with(&format!("resources [{theirs}]")), "{msg}");
    let api = emu.api_url("zrh");
    assert_error(
        &put(&format!("{api}servers/{theirs}/"), &user(), json!({"name": "x"})).await,
        403,
        "permission",
        None,
    );
    assert_error(
        &delete(&format!("{api}servers/{theirs}/"), &user()).await,
        403,
        "permission",
        None,
    );
    assert_error(
        &post(
            &format!("{api}servers/{theirs}/action/?do=stop"),
            &user(),
            json!({}),
        )
        .await,
        403,
        "permission",
        None,
    );
    assert_error(
        &get(&format!("{api}drives/{drive}/"), &user()).await,
        403,
        "permission",
        None,
    );
    assert_error(
        &get(&format!("{api}ips/203.0.113.9/"), &user()).await,
        403,
        "permission",
        None,
    );
    // Nothing changed.
    assert_eq!(emu.server_json(&theirs).unwrap()["status"], "running");
}

#[tokio::test]
async fn paths_without_trailing_slash_and_unknown_paths_are_404() {
    let emu = emulator().await;
    let base = emu.base_url();
    for path in [
        "/zrh/api/2.0/servers",
        "/zrh/api/2.0/servers/detail",
        "/zrh/api/2.0/tags/",
        "/lon/api/2.0/servers/",
        "/nope",
    ] {
        let r = get(&format!("{base}{path}"), &user()).await;
        assert_error(&r, 404, "notexist", None);
    }
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let emu = emulator().await;
    let r = call(
        Method::DELETE,
        &format!("{}servers/", emu.api_url("zrh")),
        &user(),
        None,
    )
    .await;
    assert_error(&r, 405, "validation", None);
    assert_eq!(r.headers["allow"], "GET, POST, OPTIONS");
    let r = call(
        Method::POST,
        &format!("{}capabilities/", emu.api_url("zrh")),
        &user(),
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, 405);
    let r = call(
        Method::OPTIONS,
        &format!("{}servers/x/", emu.api_url("zrh")),
        &Auth::None,
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["allow"], "GET, PUT, DELETE, OPTIONS");
}

#[tokio::test]
async fn accept_header_other_than_json_is_406() {
    let emu = emulator().await;
    let url = format!("{}servers/", emu.api_url("zrh"));
    let r = client()
        .get(&url)
        .basic_auth(USER, Some(PASS))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 406);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body[0]["error_type"], "validation");
    for ok in ["application/json", "*/*", "text/html, application/json;q=0.9"] {
        let r = client()
            .get(&url)
            .basic_auth(USER, Some(PASS))
            .header("accept", ok)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{ok}");
    }
    let r = client()
        .get(format!("{url}?format=json"))
        .basic_auth(USER, Some(PASS))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn malformed_json_is_400_and_responses_carry_a_request_id() {
    let emu = emulator().await;
    let r = client()
        .post(format!("{}servers/", emu.api_url("zrh")))
        .basic_auth(USER, Some(PASS))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let id = r
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 36);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body[0]["error_type"], "validation");
    assert_eq!(body[0]["error_point"], serde_json::Value::Null);
    let r = get(&format!("{}servers/", emu.api_url("zrh")), &user()).await;
    assert_eq!(r.headers["content-type"], "application/json; charset=utf-8");
    assert_ne!(r.headers["x-request-id"].to_str().unwrap(), id);
}
