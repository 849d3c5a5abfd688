//! The request log, per-route counters, and keeping secrets out of logs and errors.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use cs_emulator::{Config, HostKind};
use serde_json::json;

#[tokio::test]
async fn request_log_records_method_path_query_route_user_and_status() {
    let emu = emulator_with(Config {
        locations: vec!["zrh".into(), "fra".into()],
        ..Config::default()
    })
    .await;
    let srv = emu.add_server("fra", USER, server_seed("a", "203.0.113.10"));
    get(&format!("{}servers/detail/?limit=0", emu.api_url("fra")), &user()).await;
    get(&format!("{}servers/{srv}/", emu.direct_api_url("fra")), &user()).await;
    get(&format!("{}servers/", emu.api_url("zrh")), &Auth::None).await;
    get(&format!("{}/api/2.0/servers", emu.base_url()), &user()).await;
    let recs = emu.requests();
    assert_eq!(recs.len(), 4);
    let r = &recs[0];
    assert_eq!(r.method, "GET");
    assert_eq!(r.path, "/fra/api/2.0/servers/detail/");
    assert_eq!(r.query.as_deref(), Some("limit=0"));
    assert_eq!(r.route, "GET /api/2.0/servers/detail/");
    assert_eq!(r.location.as_deref(), Some("fra"));
    assert_eq!(r.host, HostKind::Regular);
    assert_eq!(r.user.as_deref(), Some(USER));
    assert_eq!(r.status, 200);
    assert_eq!(recs[1].route, "GET /direct/api/2.0/servers/{uuid}/");
    assert_eq!(recs[1].host, HostKind::Direct);
    assert_eq!(recs[1].path, format!("/fra/direct/api/2.0/servers/{srv}/"));
    assert_eq!((recs[2].user.as_deref(), recs[2].status), (None, 401));
    assert_eq!((recs[3].route.as_str(), recs[3].status), ("GET (unmatched)", 404));

    let counts = emu.route_counts();
    assert_eq!(counts["GET /api/2.0/servers/detail/"], 1);
    assert_eq!(counts["GET /api/2.0/servers/"], 1);
    assert_eq!(emu.count("GET /direct/api/2.0/servers/{uuid}/"), 1);
    assert_eq!(emu.count("GET /nothing/"), 0);
    emu.reset_log();
    assert!(emu.requests().is_empty());
    assert!(emu.route_counts().is_empty());
}

#[tokio::test]
async fn admin_log_and_counter_endpoints() {
    let emu = emulator().await;
    get(&format!("{}servers/", emu.api_url("zrh")), &user()).await;
    let log = get(&format!("{}/_emulator/requests", emu.base_url()), &Auth::None).await;
    assert_eq!(log.body[0]["route"], "GET /api/2.0/servers/");
    assert_eq!(log.body[0]["user"], USER);
    assert_eq!(log.body[0]["host"], "regular");
    assert!(log.body[0]["duration_ms"].is_u64());
    let counters = get(&format!("{}/_emulator/counters", emu.base_url()), &Auth::None).await;
    assert_eq!(counters.body["GET /api/2.0/servers/"], 1);
    assert_eq!(
        delete(&format!("{}/_emulator/requests", emu.base_url()), &Auth::None)
            .await
            .status,
        204
    );
    assert_eq!(emu.count("GET /api/2.0/servers/"), 0);
}

#[tokio::test]
async fn admin_state_changes_seed_and_tokens() {
    let emu = emulator().await;
    let base = format!("{}/_emulator", emu.base_url());
    let r = post(
        &format!("{base}/seed"),
        &Auth::None,
        json!({"servers": [{"owner": USER, "name": "seeded", "uuid": "5e000000-0000-4000-8000-000000000001",
                            "nics": [{"type": "public", "ip_v4": "203.0.113.40"}]}]}),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let uuid = "5e000000-0000-4000-8000-000000000001";
    let r = post(
        &format!("{base}/servers/{uuid}/status"),
        &Auth::None,
        json!({"status": "stopped"}),
    )
    .await;
    assert_eq!(r.body["status"], "stopped");
    let r = post(
        &format!("{base}/servers/{uuid}/nics/0/ip"),
        &Auth::None,
        json!({"ip_v4": "203.0.113.41"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    emu.set_server_status(uuid, "running");
    assert_eq!(
        emu.server_json(uuid).unwrap()["runtime"]["nics"][0]["ip_v4"]["uuid"],
        "203.0.113.41"
    );
    let r = post(
        &format!("{base}/servers/{uuid}/status"),
        &Auth::None,
        json!({"status": "exploded"}),
    )
    .await;
    assert_eq!(r.status, 400);
    let t = post(
        &format!("{base}/tokens"),
        &Auth::None,
        json!({"user_email": USER}),
    )
    .await;
    let token = Auth::Bearer(t.body["access_token"].as_str().unwrap().to_owned());
    assert_eq!(
        get(&format!("{}servers/{uuid}/", emu.direct_api_url("zrh")), &token)
            .await
            .status,
        200
    );
    assert_eq!(
        delete(&format!("{base}/servers/{uuid}"), &Auth::None)
            .await
            .status,
        204
    );
    assert_eq!(
        delete(&format!("{base}/servers/{uuid}"), &Auth::None)
            .await
            .status,
        404
    );
    let r = post(
        &format!("{base}/seed"),
        &Auth::None,
        json!({"servers": [{"owner": "ghost@example.com"}]}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["error"].as_str().unwrap().contains("servers[0].owner"),
        "{}",
        r.text
    );
    let idx = get(&format!("{base}/"), &Auth::None).await;
    assert_eq!(idx.body["oauth"], emu.oauth_url());
}

#[tokio::test]
async fn secrets_stay_out_of_logs_errors_and_debug_output() {
    let emu = emulator().await;
    emu.add_user("secret@example.com", "hunter2-password");
    emu.add_oauth_client("client", "very-secret-client-secret", "sa@example.com");
    let (sa, rpt) = sa_and_rpt(&emu, "client", "very-secret-client-secret").await;
    let token = emu.issue_token("zrh", USER);
    get(
        &format!("{}servers/", emu.api_url("zrh")),
        &basic("secret@example.com", "hunter2-password"),
    )
    .await;
    get(
        &format!("{}servers/", emu.api_url("zrh")),
        &basic("secret@example.com", "wrong-guess"),
    )
    .await;
    let r = get(
        &format!("{}servers/", emu.direct_api_url("zrh")),
        &Auth::Bearer(format!("{token}x")),
    )
    .await;
    assert!(!r.text.contains(&token), "an invalid token is not echoed");
    get(
        &format!("{}servers/?token={}", emu.direct_api_url("zrh"), "not-a-secret"),
        &Auth::Bearer(token.clone()),
    )
    .await;
    let dumps = [
        format!("{:?}", emu.requests()),
        serde_json::to_string(&emu.requests()).unwrap(),
        format!("{emu:?}"),
        format!("{:?}", emu.config()),
        get(&format!("{}/_emulator/requests", emu.base_url()), &Auth::None)
            .await
            .text,
    ];
    for dump in &dumps {
        for secret in [
            "hunter2-password",
            "wrong-guess",
            "very-secret-client-secret",
            &sa,
            &rpt,
            &token,
        ] {
            assert!(!dump.contains(secret), "secret leaked into {dump}");
        }
    }
}
