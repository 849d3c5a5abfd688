//! Snapshots, IPs, locations, capabilities and profile.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use cs_emulator::{Config, ServerSeed};
use serde_json::{Value, json};

#[tokio::test]
async fn snapshots_create_list_filter_get_delete() {
    let emu = emulator_with(slow()).await;
    let d1 = emu.add_drive("zrh", USER, drive_seed("d1", GIB));
    let d2 = emu.add_drive("zrh", USER, drive_seed("d2", GIB));
    let url = format!("{}snapshots/", emu.api_url("zrh"));
    let r = post(
        &url,
        &user(),
        json!({"objects": [{"drive": d1, "name": "s1", "meta": {"k": "v"}}, {"drive": d2}]}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let s1 = &r.body["objects"][0];
    assert_eq!(s1["status"], "creating");
    assert_eq!(s1["drive"]["uuid"], d1.as_str());
    assert_eq!(s1["meta"], json!({"k": "v"}));
    let ts = s1["timestamp"].as_str().unwrap();
    assert!(
        ts.ends_with("+00:00") && ts.len() == "2025-01-01 10:00:00.123456+00:00".len(),
        "{ts}"
    );
    let id = s1["uuid"].as_str().unwrap().to_owned();
    let item = format!("{url}{id}/");
    eventually("available", || async {
        get(&item, &user()).await.body["status"] == "available"
    })
    .await;
    let r = get(&format!("{url}detail/?drive={d1}"), &user()).await;
    assert_eq!(r.body["meta"]["total_count"], 1);
    assert_eq!(r.body["objects"][0]["uuid"], id.as_str());
    assert_eq!(get(&url, &user()).await.body["meta"]["total_count"], 2);
    // The drive lists its snapshots.
    assert_eq!(emu.drive_json(&d1).unwrap()["snapshots"][0]["uuid"], id.as_str());
    let r = put(&item, &user(), json!({"name": "renamed"})).await;
    assert_eq!(r.body["name"], "renamed");
    assert_eq!(delete(&item, &user()).await.status, 204);
    assert_error(&get(&item, &user()).await, 404, "notexist", None);
    // Validation and ownership.
    assert_error(
        &post(&url, &user(), json!({"objects": [{"name": "x"}]})).await,
        400,
        "validation",
        Some("drive"),
    );
    let theirs = emu.add_drive("zrh", OTHER, drive_seed("t", GIB));
    assert_error(
        &post(&url, &user(), json!({"objects": [{"drive": theirs}]})).await,
        403,
        "permission",
        None,
    );
    // Deleting a drive deletes its snapshots.
    assert_eq!(
        delete(&format!("{}drives/{d2}/", emu.api_url("zrh")), &user())
            .await
            .status,
        204
    );
    assert_eq!(get(&url, &user()).await.body["meta"]["total_count"], 0);
}

#[tokio::test]
async fn ips_list_the_users_addresses_with_their_server() {
    let emu = emulator().await;
    let srv = emu.add_server("zrh", USER, server_seed("a", "203.0.113.10"));
    emu.add_ip("zrh", USER, "203.0.113.20".parse().unwrap());
    emu.add_server("zrh", OTHER, server_seed("b", "203.0.113.30"));
    let r = get(&format!("{}ips/detail/", emu.api_url("zrh")), &user()).await;
    assert_eq!(r.body["meta"]["total_count"], 2);
    let ips: Vec<&Value> = r.body["objects"].as_array().unwrap().iter().collect();
    assert_eq!(ips[0]["uuid"], "203.0.113.10");
    assert_eq!(
        ips[0]["server"],
        json!({"uuid": srv, "resource_uri": format!("/api/2.0/servers/{srv}/")})
    );
    assert_eq!(ips[0]["resource_uri"], "/api/2.0/ips/203.0.113.10/");
    assert_eq!(ips[0]["netmask"], 24);
    assert_eq!(ips[0]["gateway"], "203.0.113.1");
    assert_eq!(ips[1]["uuid"], "203.0.113.20");
    assert_eq!(ips[1]["server"], Value::Null);
    let r = get(&format!("{}ips/203.0.113.10/", emu.api_url("zrh")), &user()).await;
    assert_eq!(r.body["server"]["uuid"], srv.as_str());
    // A stopped server still holds its address.
    emu.set_server_status(&srv, "stopped");
    let r = get(&format!("{}ips/203.0.113.10/", emu.api_url("zrh")), &user()).await;
    assert_eq!(r.body["server"]["uuid"], srv.as_str());
}

#[tokio::test]
async fn locations_capabilities_and_profile() {
    let emu = emulator_with(Config {
        locations: vec!["zrh".into(), "next".into()],
        ..Config::default()
    })
    .await;
    let r = get(&format!("{}locations/", emu.api_url("zrh")), &user()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["meta"]["total_count"], 2);
    let zrh = &r.body["objects"][0];
    assert_eq!(zrh["id"], "ZRH");
    assert_eq!(zrh["api_endpoint"], emu.api_url("zrh"));
    assert_eq!(zrh["upload_url"], emu.direct_api_url("zrh"));
    assert!(zrh["websocket_url"].as_str().unwrap().starts_with("ws://"));
    for k in [
        "country_code",
        "display_name",
        "default_frontend_url",
        "documentation_url",
    ] {
        assert!(zrh[k].is_string(), "{k}");
    }
    assert_eq!(r.body["objects"][1]["api_endpoint"], emu.api_url("next"));

    let caps = get(&format!("{}capabilities/", emu.api_url("zrh")), &user())
        .await
        .body;
    assert!(caps.get("objects").is_none(), "capabilities is a bare object");
    assert_eq!(caps["drives"]["dssd"]["min_size"], 536870912);
    assert!(caps["drives"]["zadara"]["min_size"].as_u64().unwrap() >= 1073741824);
    assert_eq!(caps["snapshots"]["max_per_drive"], 90);
    assert_eq!(caps["hypervisors"], json!({"kvm": ["intel", "amd"]}));
    assert!(caps["servers"]["cpu"]["min"].is_u64());

    let p = get(&format!("{}profile/", emu.api_url("next")), &user())
        .await
        .body;
    assert_eq!(p["email"], USER);
    assert_eq!(p["uuid"], emu.user_uuid(USER).unwrap().as_str());
}

#[tokio::test]
async fn seeded_stopped_server_and_defaults() {
    let emu = emulator().await;
    let uuid = emu.add_server(
        "zrh",
        USER,
        ServerSeed {
            status: "stopped".into(),
            ..ServerSeed::default()
        },
    );
    let s = emu.server_json(&uuid).unwrap();
    assert_eq!(s["status"], "stopped");
    assert_eq!(s["name"], "server");
    assert_eq!(s["runtime"], Value::Null);
    assert!(
        emu.try_add_server("zrh", "ghost@example.com", ServerSeed::default())
            .is_err()
    );
    assert!(emu.try_add_server("lon", USER, ServerSeed::default()).is_err());
    let e = emu
        .try_add_server(
            "zrh",
            USER,
            ServerSeed {
                drives: vec!["missing".into()],
                ..ServerSeed::default()
            },
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("drives[0]"), "{e}");
}
