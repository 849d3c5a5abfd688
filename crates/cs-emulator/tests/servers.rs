//! Servers: lists, get, create, PUT, DELETE, power actions, runtime, out-of-band changes.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use cs_emulator::{NicSeed, ServerSeed};
use serde_json::{Value, json};

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test]
async fn short_list_and_detail_list_carry_the_documented_fields() {
    let emu = emulator().await;
    let uuid = emu.add_server("zrh", USER, server_seed("web-1", "203.0.113.10"));
    let short = get(&format!("{}servers/", emu.api_url("zrh")), &user()).await;
    assert_eq!(short.status, 200);
    let item = &short.body["objects"][0];
    assert_eq!(
        keys(item),
        ["name", "owner", "resource_uri", "runtime", "status", "uuid"]
    );
    assert_eq!(item["uuid"], uuid.as_str());
    assert_eq!(item["resource_uri"], format!("/api/2.0/servers/{uuid}/"));
    let owner = emu.user_uuid(USER).unwrap();
    assert_eq!(
        item["owner"],
        json!({"uuid": owner, "resource_uri": format!("/api/2.0/user/{owner}/")})
    );

    let detail = get(&format!("{}servers/detail/", emu.api_url("zrh")), &user()).await;
    let full = &detail.body["objects"][0];
    for k in [
        "cpu",
        "mem",
        "smp",
        "vnc_password",
        "meta",
        "tags",
        "nics",
        "drives",
        "context",
        "cpu_type",
        "hypervisor",
    ] {
        assert!(full.get(k).is_some(), "detail lacks {k}");
    }
    assert_eq!(full["cpu"], 2000);
    assert_eq!(full["mem"], 2 * GIB);
    assert_eq!(
        detail.body["meta"],
        json!({"limit": 20, "offset": 0, "total_count": 1})
    );
}

#[tokio::test]
async fn running_server_has_runtime_with_public_ip_and_stopped_has_null() {
    let emu = emulator().await;
    let running = emu.add_server("zrh", USER, server_seed("a", "203.0.113.10"));
    let stopped = emu.add_server(
        "zrh",
        USER,
        ServerSeed {
            status: "stopped".into(),
            ..server_seed("b", "203.0.113.11")
        },
    );
    let r = get(&format!("{}servers/{running}/", emu.api_url("zrh")), &user()).await;
    assert_eq!(r.status, 200);
    let s = &r.body;
    assert_eq!(s["status"], "running");
    let mac = s["nics"][0]["mac"].as_str().unwrap();
    assert_eq!(s["nics"][0]["runtime"]["interface_type"], "public");
    assert_eq!(
        s["nics"][0]["runtime"]["ip_v4"],
        json!({"uuid": "203.0.113.10", "resource_uri": "/api/2.0/ips/203.0.113.10/"})
    );
    assert_eq!(s["nics"][0]["ip_v4_conf"], json!({"conf": "dhcp", "ip": null}));
    assert_eq!(s["runtime"]["nics"][0]["mac"], mac);
    assert_eq!(s["runtime"]["nics"][0]["ip_v4"]["uuid"], "203.0.113.10");
    let since = s["runtime"]["active_since"].as_str().unwrap();
    assert!(since.ends_with("+00:00") && since.contains('T'), "{since}");

    let r = get(&format!("{}servers/{stopped}/", emu.api_url("zrh")), &user()).await;
    assert_eq!(r.body["status"], "stopped");
    assert_eq!(r.body["runtime"], Value::Null);
    assert_eq!(r.body["nics"][0]["runtime"], Value::Null);
}

#[tokio::test]
async fn vlan_nic_is_private_without_address_when_running() {
    let emu = emulator().await;
    let uuid = emu.add_server(
        "zrh",
        USER,
        ServerSeed {
            nics: vec![
                NicSeed::Public {
                    ip_v4: Some("203.0.113.10".parse().unwrap()),
                    ip_v6: None,
                },
                NicSeed::Vlan {
                    vlan: "7a1a0000-0000-4000-8000-000000000001".into(),
                },
            ],
            ..ServerSeed::default()
        },
    );
    let s = emu.server_json(&uuid).unwrap();
    let vnic = &s["nics"][1];
    assert_eq!(vnic["vlan"]["uuid"], "7a1a0000-0000-4000-8000-000000000001");
    assert_eq!(vnic["ip_v4_conf"], Value::Null);
    assert_eq!(vnic["runtime"]["interface_type"], "private");
    assert_eq!(vnic["runtime"]["ip_v4"], Value::Null);
    let vlans = get(&format!("{}vlans/detail/", emu.api_url("zrh")), &user()).await;
    assert_eq!(vlans.body["objects"][0]["servers"][0]["uuid"], uuid.as_str());
}

#[tokio::test]
async fn create_minimal_server_fills_defaults() {
    let emu = emulator().await;
    let r = post(
        &format!("{}servers/", emu.api_url("zrh")),
        &user(),
        minimal_server("n"),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let s = &r.body["objects"][0];
    assert_eq!(s["status"], "stopped");
    assert_eq!(s["runtime"], Value::Null);
    assert_eq!(s["smp"], 1);
    assert_eq!(s["cpu_type"], "amd");
    assert_eq!(s["hypervisor"], "kvm");
    assert_eq!(s["context"], true);
    assert_eq!(s["nics"], json!([]));
    assert_eq!(s["drives"], json!([]));
    assert_eq!(s["owner"]["uuid"], emu.user_uuid(USER).unwrap().as_str());
    let uuid = s["uuid"].as_str().unwrap();
    assert_eq!(s["resource_uri"], format!("/api/2.0/servers/{uuid}/"));
    let location = r.headers.get("location").unwrap().to_str().unwrap();
    assert!(
        location.ends_with(&format!("/api/2.0/servers/{uuid}/")),
        "{location}"
    );
    // Bulk create.
    let r = post(
        &format!("{}servers/", emu.api_url("zrh")),
        &user(),
        json!({"objects": [
            {"name": "a", "cpu": 4000, "mem": 1073741824, "vnc_password": "x"},
            {"name": "b", "cpu": 1000, "mem": 1073741824, "vnc_password": "x", "smp": 2, "meta": {"k": "v"}}
        ]}),
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["objects"][0]["smp"], 2);
    assert_eq!(r.body["objects"][1]["smp"], 2);
    assert_eq!(r.body["objects"][1]["meta"], json!({"k": "v"}));
}

#[tokio::test]
async fn create_validation_errors_name_the_field() {
    let emu = emulator().await;
    let url = format!("{}servers/", emu.api_url("zrh"));
    for (body, point) in [
        (
            json!({"objects": [{"name": "n", "cpu": 1000, "mem": 536870912}]}),
            "vnc_password",
        ),
        (
            json!({"objects": [{"cpu": 1000, "mem": 536870912, "vnc_password": "p"}]}),
            "name",
        ),
        (
            json!({"objects": [{"name": "n", "mem": 536870912, "vnc_password": "p"}]}),
            "cpu",
        ),
        (
            json!({"objects": [{"name": "n", "cpu": 1000, "vnc_password": "p"}]}),
            "mem",
        ),
        (
            json!({"objects": [{"name": "n", "cpu": 10, "mem": 536870912, "vnc_password": "p"}]}),
            "cpu",
        ),
        (
            json!({"objects": [{"name": "n", "cpu": "lots", "mem": 536870912, "vnc_password": "p"}]}),
            "cpu",
        ),
        (
            json!({"objects": [{"name": "n", "cpu": 1000, "mem": 536870912, "vnc_password": "p", "cpu_type": "arm"}]}),
            "cpu_type",
        ),
        (
            json!({"name": "n", "cpu": 1000, "mem": 536870912, "vnc_password": "p"}),
            "objects",
        ),
    ] {
        let r = post(&url, &user(), body.clone()).await;
        assert_error(&r, 400, "validation", Some(point));
    }
    // Nothing was created by the failed calls.
    let list = get(&url, &user()).await;
    assert_eq!(list.body["meta"]["total_count"], 0);
}

#[tokio::test]
async fn dhcp_nic_gets_a_pool_address_visible_only_when_running() {
    let emu = emulator().await;
    let r = post(
        &format!("{}servers/", emu.api_url("zrh")),
        &user(),
        json!({"objects": [{"name": "n", "cpu": 1000, "mem": 536870912, "vnc_password": "p",
                            "nics": [{"ip_v4_conf": {"conf": "dhcp", "ip": null}, "model": "virtio"}]}]}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let s = &r.body["objects"][0];
    let uuid = s["uuid"].as_str().unwrap().to_owned();
    assert!(s["nics"][0]["mac"].as_str().unwrap().len() == 17);
    assert_eq!(s["nics"][0]["runtime"], Value::Null);
    let a = post(
        &format!("{}servers/{uuid}/action/?do=start", emu.api_url("zrh")),
        &user(),
        json!({}),
    )
    .await;
    assert_eq!(a.status, 202);
    assert_eq!(
        a.body,
        json!({"action": "start", "result": "success", "uuid": uuid})
    );
    let url = format!("{}servers/{uuid}/", emu.api_url("zrh"));
    eventually("server running", || async {
        get(&url, &user()).await.body["status"] == "running"
    })
    .await;
    let s = get(&url, &user()).await.body;
    let ip = s["nics"][0]["runtime"]["ip_v4"]["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(ip.starts_with("198.51.100."), "{ip}");
    // The address is one of the user's IPs, pointing at the server.
    let ipr = get(&format!("{}ips/{ip}/", emu.api_url("zrh")), &user()).await;
    assert_eq!(ipr.status, 200);
    assert_eq!(ipr.body["server"]["uuid"], uuid.as_str());
}

#[tokio::test]
async fn power_actions_move_through_transitional_states() {
    let emu = emulator_with(slow()).await;
    let uuid = emu.add_server(
        "zrh",
        USER,
        ServerSeed {
            status: "stopped".into(),
            ..server_seed("a", "203.0.113.10")
        },
    );
    let url = format!("{}servers/{uuid}/", emu.api_url("zrh"));
    let action = |what: &'static str| {
        let u = format!("{}servers/{uuid}/action/?do={what}", emu.api_url("zrh"));
        async move { post(&u, &user(), json!({})).await }
    };
    let r = action("start").await;
    assert_eq!(r.status, 202);
    assert_eq!(r.body["action"], "start");
    assert_eq!(get(&url, &user()).await.body["status"], "starting");
    eventually("running", || async {
        get(&url, &user()).await.body["status"] == "running"
    })
    .await;
    assert_error(&action("start").await, 403, "permission", None);
    assert_eq!(action("shutdown").await.status, 202);
    assert_eq!(get(&url, &user()).await.body["status"], "stopping");
    eventually("stopped", || async {
        get(&url, &user()).await.body["status"] == "stopped"
    })
    .await;
    assert_eq!(get(&url, &user()).await.body["runtime"], Value::Null);
    assert_error(&action("stop").await, 403, "permission", None);
    assert_eq!(action("start").await.status, 202);
    eventually("running again", || async {
        get(&url, &user()).await.body["status"] == "running"
    })
    .await;
    assert_eq!(action("stop").await.status, 202);
    eventually("stopped again", || async {
        get(&url, &user()).await.body["status"] == "stopped"
    })
    .await;
    assert_error(&action("teleport").await, 400, "validation", Some("do"));
    let r = post(
        &format!("{}servers/{uuid}/action/", emu.api_url("zrh")),
        &user(),
        json!({}),
    )
    .await;
    assert_error(&r, 400, "validation", Some("do"));
}

#[tokio::test]
async fn put_keeps_omitted_fields_and_replaces_given_ones() {
    let emu = emulator().await;
    let d = emu.add_drive("zrh", USER, drive_seed("boot", 10 * GIB));
    let uuid = emu.add_server(
        "zrh",
        USER,
        ServerSeed {
            status: "stopped".into(),
            drives: vec![d.clone()],
            meta: [("a".to_owned(), "1".to_owned())].into(),
            ..server_seed("a", "203.0.113.10")
        },
    );
    let url = format!("{}servers/{uuid}/", emu.api_url("zrh"));
    let before = get(&url, &user()).await.body;
    let mac = before["nics"][0]["mac"].as_str().unwrap().to_owned();
    // A NIC-only PUT (as CAPCS sends) keeps drives, name, cpu, meta; adds a NIC.
    let r = put(
        &url,
        &user(),
        json!({"nics": [{"mac": mac, "ip_v4_conf": {"conf": "dhcp", "ip": null}},
                        {"ip_v4_conf": {"conf": "manual"}, "model": "e1000"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["drives"], before["drives"]);
    assert_eq!(r.body["name"], "a");
    assert_eq!(r.body["meta"], json!({"a": "1"}));
    assert_eq!(r.body["nics"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["nics"][0]["mac"], mac.as_str());
    assert_eq!(r.body["nics"][1]["model"], "e1000");
    // meta replaces the whole map; cpu changes on a stopped server.
    let r = put(
        &url,
        &user(),
        json!({"meta": {"b": "2"}, "cpu": 3000, "name": "renamed"}),
    )
    .await;
    assert_eq!(r.body["meta"], json!({"b": "2"}));
    assert_eq!(r.body["cpu"], 3000);
    assert_eq!(r.body["smp"], 2);
    assert_eq!(r.body["name"], "renamed");
    // Unknown MAC.
    let r = put(
        &url,
        &user(),
        json!({"nics": [{"mac": "22:00:00:00:00:00", "ip_v4_conf": {"conf": "dhcp"}}]}),
    )
    .await;
    assert_error(&r, 400, "validation", Some("nics"));
    // VLAN and public at once.
    let r = put(
        &url,
        &user(),
        json!({"nics": [{"vlan": "v", "ip_v4_conf": {"conf": "dhcp"}}]}),
    )
    .await;
    assert_error(&r, 400, "validation", Some("nics"));
    // A static address that is not the user's.
    let r = put(
        &url,
        &user(),
        json!({"nics": [{"ip_v4_conf": {"conf": "static", "ip": {"uuid": "192.0.2.200"}}}]}),
    )
    .await;
    assert_error(&r, 400, "validation", Some("ip_v4_conf"));
}

#[tokio::test]
async fn static_ip_must_be_owned_and_is_shown_in_conf_and_runtime() {
    let emu = emulator().await;
    emu.add_ip("zrh", USER, "203.0.113.50".parse().unwrap());
    let uuid = emu.add_server("zrh", USER, ServerSeed::default());
    let url = format!("{}servers/{uuid}/", emu.api_url("zrh"));
    let r = put(
        &url,
        &user(),
        json!({"nics": [{"ip_v4_conf": {"conf": "static", "ip": "203.0.113.50"}}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let nic = &r.body["nics"][0];
    assert_eq!(nic["ip_v4_conf"]["conf"], "static");
    assert_eq!(nic["ip_v4_conf"]["ip"]["uuid"], "203.0.113.50");
    assert_eq!(nic["runtime"]["ip_v4"]["uuid"], "203.0.113.50");
    // The other user cannot use it.
    let theirs = emu.add_server("zrh", OTHER, ServerSeed::default());
    let r = put(
        &format!("{}servers/{theirs}/", emu.api_url("zrh")),
        &other(),
        json!({"nics": [{"ip_v4_conf": {"conf": "static", "ip": "203.0.113.50"}}]}),
    )
    .await;
    assert_error(&r, 403, "permission", None);
}

#[tokio::test]
async fn running_server_ignores_cpu_edits_but_accepts_name() {
    let emu = emulator().await;
    let uuid = emu.add_server("zrh", USER, ServerSeed::default());
    let url = format!("{}servers/{uuid}/", emu.api_url("zrh"));
    let r = put(
        &url,
        &user(),
        json!({"cpu": 4000, "mem": 4 * GIB, "name": "new-name"}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["cpu"], 2000);
    assert_eq!(r.body["mem"], 2 * GIB);
    assert_eq!(r.body["name"], "new-name");
}

#[tokio::test]
async fn delete_is_204_with_empty_body_and_refused_while_running() {
    let emu = emulator().await;
    let uuid = emu.add_server("zrh", USER, ServerSeed::default());
    let url = format!("{}servers/{uuid}/", emu.api_url("zrh"));
    let r = delete(&url, &user()).await;
    assert_error(&r, 403, "permission", None);
    emu.set_server_status(&uuid, "stopped");
    let r = delete(&url, &user()).await;
    assert_eq!(r.status, 204);
    assert!(r.text.is_empty());
    let r = get(&url, &user()).await;
    assert_error(&r, 404, "notexist", None);
    let r = delete(
        &format!("{}servers/{uuid}/?recurse=everything", emu.api_url("zrh")),
        &user(),
    )
    .await;
    assert_error(&r, 404, "notexist", None);
}

#[tokio::test]
async fn out_of_band_changes_are_visible_through_the_api() {
    let emu = emulator().await;
    let uuid = emu.add_server("zrh", USER, server_seed("a", "203.0.113.10"));
    let url = format!("{}servers/{uuid}/", emu.api_url("zrh"));
    emu.set_server_status(&uuid, "stopped");
    let s = get(&url, &user()).await.body;
    assert_eq!(
        (s["status"].as_str(), &s["runtime"]),
        (Some("stopped"), &Value::Null)
    );
    emu.set_server_status(&uuid, "running");
    emu.set_nic_ip(&uuid, 0, Some("203.0.113.77".parse().unwrap()));
    let s = get(&url, &user()).await.body;
    assert_eq!(s["runtime"]["nics"][0]["ip_v4"]["uuid"], "203.0.113.77");
    emu.set_nic_ip(&uuid, 0, None);
    let s = get(&url, &user()).await.body;
    assert_eq!(s["nics"][0]["runtime"]["ip_v4"], Value::Null);
    assert!(emu.try_set_server_status(&uuid, "melting").is_err());
    assert!(emu.try_set_nic_ip(&uuid, 5, None).is_err());
    emu.delete_server(&uuid);
    assert_error(&get(&url, &user()).await, 404, "notexist", None);
    assert!(emu.server_json(&uuid).is_none());
    emu.delete_server(&uuid); // idempotent
}
