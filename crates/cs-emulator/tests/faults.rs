//! Fault injection: statuses, delays, fail-next-N, closed connections, clearing, OAuth and
//! impersonation routes, and the admin endpoint.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use cs_emulator::{Fault, FaultAction, RouteMatch};
use serde_json::json;

#[tokio::test]
async fn status_fault_on_a_route_for_the_next_n_requests() {
    let emu = emulator().await;
    let list = format!("{}servers/detail/", emu.api_url("zrh"));
    emu.inject(Fault::status(RouteMatch::route("GET /api/2.0/servers/detail/"), 503).times(2));
    assert_error(&get(&list, &user()).await, 503, "concurrency", None);
    // Another route is unaffected.
    assert_eq!(
        get(&format!("{}drives/", emu.api_url("zrh")), &user())
            .await
            .status,
        200
    );
    assert_error(&get(&list, &user()).await, 503, "concurrency", None);
    assert_eq!(get(&list, &user()).await.status, 200);
    assert!(emu.faults().is_empty(), "used-up faults disappear");
    let recs = emu.requests();
    let faulted: Vec<_> = recs.iter().filter(|r| r.fault.is_some()).collect();
    assert_eq!(faulted.len(), 2);
    assert!(
        faulted
            .iter()
            .all(|r| r.status == 503 && r.route == "GET /api/2.0/servers/detail/")
    );
}

#[tokio::test]
async fn delayed_504_and_added_latency() {
    let emu = emulator().await;
    let url = format!("{}servers/", emu.api_url("zrh"));
    let id = emu.inject(Fault::new(
        RouteMatch::All,
        FaultAction::Status {
            status: 504,
            error_type: None,
            delay: Duration::from_millis(200),
        },
    ));
    let t = Instant::now();
    let r = get(&url, &user()).await;
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert_error(&r, 504, "backend", None);
    emu.clear_fault(id);
    emu.inject(Fault::new(
        RouteMatch::path_contains("/servers/"),
        FaultAction::Delay(Duration::from_millis(150)),
    ));
    let t = Instant::now();
    let r = get(&url, &user()).await;
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(r.status, 200);
    let rec = emu.requests().into_iter().last().unwrap();
    assert!(rec.duration >= Duration::from_millis(150));
    emu.clear_faults();
    let t = Instant::now();
    assert_eq!(get(&url, &user()).await.status, 200);
    assert!(t.elapsed() < Duration::from_millis(150));
}

#[tokio::test]
async fn method_filter_and_custom_error_type() {
    let emu = emulator().await;
    emu.inject(
        Fault::new(
            RouteMatch::path_contains("/drives/"),
            FaultAction::Status {
                status: 500,
                error_type: Some("database".into()),
                delay: Duration::ZERO,
            },
        )
        .method("POST"),
    );
    let url = format!("{}drives/", emu.api_url("zrh"));
    assert_eq!(get(&url, &user()).await.status, 200);
    let r = post(
        &url,
        &user(),
        json!({"objects": [{"name": "d", "size": 1073741824, "media": "disk"}]}),
    )
    .await;
    assert_error(&r, 500, "database", None);
    assert_eq!(
        get(&url, &user()).await.body["meta"]["total_count"],
        0,
        "the faulted create did nothing"
    );
}

#[tokio::test]
async fn close_connection_is_a_transport_error() {
    let emu = emulator().await;
    let url = format!("{}servers/", emu.api_url("zrh"));
    emu.inject(
        Fault::new(
            RouteMatch::route("GET /api/2.0/servers/"),
            FaultAction::CloseConnection,
        )
        .times(1),
    );
    let err = client()
        .get(&url)
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap_err();
    assert!(err.status().is_none(), "no HTTP status: {err:?}");
    assert!(err.is_request() || err.is_connect() || err.is_body(), "{err:?}");
    // The next request is served.
    assert_eq!(get(&url, &user()).await.status, 200);
    let recs = emu.requests();
    let closed = recs.iter().find(|r| r.fault.is_some()).unwrap();
    assert_eq!(closed.status, 0);
    assert_eq!(emu.count("GET /api/2.0/servers/"), 2);
}

#[tokio::test]
async fn faults_apply_to_the_token_and_impersonation_endpoints() {
    let emu = emulator().await;
    emu.add_oauth_client("c", "s", "sa@example.com");
    emu.inject(Fault::status(RouteMatch::route("POST /oauth/token"), 503).times(1));
    let r = client()
        .post(emu.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "c"),
            ("client_secret", "s"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["error"], "server_error",
        "OAuth-shaped error on the token endpoint"
    );
    emu.inject(
        Fault::new(
            RouteMatch::route("POST /direct/service_provider/api/v1/user/impersonate"),
            FaultAction::Status {
                status: 504,
                error_type: None,
                delay: Duration::from_millis(50),
            },
        )
        .times(1),
    );
    let r = impersonate(&emu, "zrh", "c", "s", USER).await;
    assert_error(&r, 504, "backend", None);
    let r = impersonate(&emu, "zrh", "c", "s", USER).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        emu.count("POST /direct/service_provider/api/v1/user/impersonate"),
        2
    );
    assert_eq!(emu.count("POST /oauth/token"), 5);
}

#[tokio::test]
async fn admin_endpoint_injects_lists_and_clears_faults() {
    let emu = emulator().await;
    let admin = format!("{}/_emulator/faults", emu.base_url());
    let r = post(
        &admin,
        &Auth::None,
        json!({"route": {"route": "GET /api/2.0/servers/"}, "action": {"status": {"status": 500}}, "times": 3}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_u64().unwrap();
    let listed = get(&admin, &Auth::None).await;
    assert_eq!(listed.body[0]["id"], id);
    assert_eq!(listed.body[0]["remaining"], 3);
    let url = format!("{}servers/", emu.api_url("zrh"));
    assert_error(&get(&url, &user()).await, 500, "backend", None);
    assert_eq!(get(&admin, &Auth::None).await.body[0]["remaining"], 2);
    assert_eq!(delete(&format!("{admin}/{id}"), &Auth::None).await.status, 204);
    assert_eq!(delete(&format!("{admin}/{id}"), &Auth::None).await.status, 404);
    assert_eq!(get(&url, &user()).await.status, 200);
    // Close-connection via admin, then clear all.
    let r = post(
        &admin,
        &Auth::None,
        json!({"route": "all", "action": "close_connection"}),
    )
    .await;
    assert_eq!(r.status, 201);
    assert!(
        client()
            .get(&url)
            .basic_auth(USER, Some(PASS))
            .send()
            .await
            .is_err()
    );
    // Admin routes are never faulted, so the fault can be cleared.
    assert_eq!(delete(&admin, &Auth::None).await.status, 204);
    assert_eq!(get(&url, &user()).await.status, 200);
    // Bad fault specs are refused with the field named.
    let r = post(
        &admin,
        &Auth::None,
        json!({"route": "all", "action": {"status": {"status": 42}}}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"].as_str().unwrap().contains("status"), "{}", r.text);
    let r = post(
        &admin,
        &Auth::None,
        json!({"route": "everything", "action": "close_connection"}),
    )
    .await;
    assert_eq!(r.status, 400);
}
