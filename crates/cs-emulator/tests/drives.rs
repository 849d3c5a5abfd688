//! Drives: create/list/get/PUT/DELETE, resize, clone, attach/detach and hot-plug.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use cs_emulator::{Config, DriveSeed, ServerSeed};
use serde_json::{Value, json};

#[tokio::test]
async fn create_is_creating_then_unmounted_after_the_delay() {
    let emu = emulator_with(slow()).await;
    let r = post(
        &format!("{}drives/", emu.api_url("zrh")),
        &user(),
        json!({"objects": [{"name": "pvc-1", "size": 10737418240u64, "media": "disk", "storage_type": "dssd"}]}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let d = &r.body["objects"][0];
    assert_eq!(d["status"], "creating");
    assert_eq!(d["size"], 10737418240u64);
    assert_eq!(d["mounted_on"], json!([]));
    assert_eq!(d["allow_multimount"], false);
    assert_eq!(d["runtime"]["storage_type"], "dssd");
    let uuid = d["uuid"].as_str().unwrap().to_owned();
    let url = format!("{}drives/{uuid}/", emu.api_url("zrh"));
    eventually("unmounted", || async {
        get(&url, &user()).await.body["status"] == "unmounted"
    })
    .await;
    // A bare list and a string size are accepted too; storage_type defaults to dssd.
    let r = post(
        &format!("{}drives/", emu.api_url("zrh")),
        &user(),
        json!([{"name": "iso", "size": "1073741824", "media": "cdrom"}]),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["objects"][0]["storage_type"], "dssd");
    assert_eq!(r.body["objects"][0]["media"], "cdrom");
}

#[tokio::test]
async fn create_validation() {
    let emu = emulator().await;
    let url = format!("{}drives/", emu.api_url("zrh"));
    for (obj, point) in [
        (json!({"name": "d", "size": 1024, "media": "disk"}), "size"),
        (
            json!({"name": "d", "size": 536870911, "media": "disk", "storage_type": "dssd"}),
            "size",
        ),
        (
            json!({"name": "d", "size": 536870912, "media": "disk", "storage_type": "zadara"}),
            "size",
        ),
        (json!({"name": "d", "size": 1073741824, "media": "tape"}), "media"),
        (json!({"name": "d", "size": 1073741824}), "media"),
        (json!({"size": 1073741824, "media": "disk"}), "name"),
        (json!({"name": "d", "media": "disk"}), "size"),
        (
            json!({"name": "d", "size": 1073741824, "media": "disk", "storage_type": "floppy"}),
            "storage_type",
        ),
    ] {
        let r = post(&url, &user(), json!({"objects": [obj]})).await;
        assert_error(&r, 400, "validation", Some(point));
    }
    let ok = post(
        &url,
        &user(),
        json!({"objects": [{"name": "d", "size": 536870912, "media": "disk"}]}),
    )
    .await;
    assert_eq!(ok.status, 201);
}

#[tokio::test]
async fn list_get_put_and_delete() {
    let emu = emulator().await;
    let a = emu.add_drive("zrh", USER, drive_seed("a", GIB));
    emu.add_drive("zrh", OTHER, drive_seed("not-mine", GIB));
    let list = get(&format!("{}drives/", emu.api_url("zrh")), &user()).await;
    assert_eq!(list.body["meta"]["total_count"], 1);
    let item = &list.body["objects"][0];
    let mut keys: Vec<&String> = item.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["owner", "resource_uri", "status", "uuid"]);
    assert_eq!(item["status"], "unmounted");
    let detail = get(&format!("{}drives/detail/", emu.api_url("zrh")), &user()).await;
    assert_eq!(detail.body["objects"][0]["name"], "a");
    let url = format!("{}drives/{a}/", emu.api_url("zrh"));
    let r = put(
        &url,
        &user(),
        json!({"name": "b", "media": "disk", "size": GIB, "meta": {"pvc": "x"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], "b");
    assert_eq!(r.body["meta"], json!({"pvc": "x"}));
    let r = put(&url, &user(), json!({"size": 2 * GIB})).await;
    assert_error(&r, 400, "validation", Some("size"));
    let r = put(&url, &user(), json!({"storage_type": "nvme"})).await;
    assert_error(&r, 400, "validation", Some("storage_type"));
    let r = delete(&url, &user()).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.text, "");
    assert_error(&get(&url, &user()).await, 404, "notexist", None);
}

#[tokio::test]
async fn resize_rules() {
    let emu = emulator_with(slow()).await;
    let d = emu.add_drive("zrh", USER, drive_seed("data", 10 * GIB));
    let srv = emu.add_server(
        "zrh",
        USER,
        ServerSeed {
            drives: vec![d.clone()],
            ..ServerSeed::default()
        },
    );
    let url = format!("{}drives/{d}/action/?do=resize", emu.api_url("zrh"));
    // Full definition required.
    for (body, point) in [
        (json!({"media": "disk", "size": 20 * GIB}), "name"),
        (json!({"name": "data", "size": 20 * GIB}), "media"),
        (json!({"name": "data", "media": "disk"}), "size"),
    ] {
        assert_error(&post(&url, &user(), body).await, 400, "validation", Some(point));
    }
    let full = json!({"name": "data", "media": "disk", "size": 20 * GIB});
    let r = post(&url, &user(), full.clone()).await;
    assert_error(&r, 403, "permission", None);
    assert_eq!(
        r.body[0]["error_message"],
        "Cannot resize drive mounted on a running guest"
    );
    emu.set_server_status(&srv, "stopped");
    let r = post(
        &url,
        &user(),
        json!({"name": "data", "media": "disk", "size": 5 * GIB}),
    )
    .await;
    assert_error(&r, 400, "validation", Some("size"));
    let r = post(&url, &user(), full).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["objects"][0]["status"], "resizing");
    assert_eq!(r.body["objects"][0]["size"], 20 * GIB);
    let get_url = format!("{}drives/{d}/", emu.api_url("zrh"));
    // Back to the previous state: mounted (its server is stopped but still lists it).
    eventually("mounted again", || async {
        get(&get_url, &user()).await.body["status"] == "mounted"
    })
    .await;
}

#[tokio::test]
async fn clone_goes_through_cloning_states() {
    let emu = emulator_with(slow()).await;
    let src = emu.add_drive("zrh", USER, drive_seed("golden", 2 * GIB));
    let url = format!("{}drives/{src}/action/?do=clone", emu.api_url("zrh"));
    let r = post(&url, &user(), json!({"size": GIB})).await;
    assert_error(&r, 400, "validation", Some("size"));
    let r = post(&url, &user(), json!({"name": "copy"})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let c = &r.body["objects"][0];
    assert_eq!(c["status"], "cloning_dst");
    assert_eq!(c["name"], "copy");
    assert_eq!(c["size"], 2 * GIB);
    let cu = c["uuid"].as_str().unwrap().to_owned();
    assert_ne!(cu, src);
    let src_url = format!("{}drives/{src}/", emu.api_url("zrh"));
    assert_eq!(get(&src_url, &user()).await.body["status"], "cloning_src");
    let c_url = format!("{}drives/{cu}/", emu.api_url("zrh"));
    eventually("clone ready", || async {
        get(&c_url, &user()).await.body["status"] == "unmounted"
    })
    .await;
    assert_eq!(get(&src_url, &user()).await.body["status"], "unmounted");
    let r = post(
        &format!("{}drives/{src}/action/?do=explode", emu.api_url("zrh")),
        &user(),
        json!({}),
    )
    .await;
    assert_error(&r, 400, "validation", Some("do"));
}

#[tokio::test]
async fn drive_is_mounted_even_on_a_stopped_server() {
    let emu = emulator().await;
    let d = emu.add_drive("zrh", USER, drive_seed("boot", GIB));
    let r = post(
        &format!("{}servers/", emu.api_url("zrh")),
        &user(),
        json!({"objects": [{"name": "n", "cpu": 1000, "mem": 536870912, "vnc_password": "p",
                            "drives": [attach(&d, "0:0")]}]}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let srv = r.body["objects"][0]["uuid"].as_str().unwrap().to_owned();
    assert_eq!(r.body["objects"][0]["status"], "stopped");
    let dj = emu.drive_json(&d).unwrap();
    assert_eq!(dj["status"], "mounted");
    assert_eq!(
        dj["mounted_on"],
        json!([{"uuid": srv, "resource_uri": format!("/api/2.0/servers/{srv}/")}])
    );
}

#[tokio::test]
async fn hot_plug_attach_and_asynchronous_detach_on_a_running_server() {
    let emu = emulator_with(slow()).await;
    let boot = emu.add_drive("zrh", USER, drive_seed("boot", GIB));
    let vol = emu.add_drive("zrh", USER, drive_seed("pvc", GIB));
    let srv = emu.add_server(
        "zrh",
        USER,
        ServerSeed {
            drives: vec![boot.clone()],
            ..ServerSeed::default()
        },
    );
    let url = format!("{}servers/{srv}/", emu.api_url("zrh"));
    let s = get(&url, &user()).await.body;
    let mut drives = s["drives"].as_array().unwrap().clone();
    drives.push(attach(&vol, "0:2"));
    let r = put(&url, &user(), json!({"drives": drives})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["drives"][1]["drive"]["uuid"], vol.as_str());
    assert_eq!(r.body["drives"][1]["dev_channel"], "0:2");
    assert_eq!(emu.drive_json(&vol).unwrap()["status"], "mounted");
    // Detach: the drive leaves the definition now but turns unmounted only later.
    let r = put(&url, &user(), json!({"drives": [s["drives"][0].clone()]})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["drives"].as_array().unwrap().len(), 1);
    let dj = emu.drive_json(&vol).unwrap();
    assert_eq!(dj["status"], "mounted");
    assert_eq!(dj["mounted_on"][0]["uuid"], srv.as_str());
    let vurl = format!("{}drives/{vol}/", emu.api_url("zrh"));
    eventually("detached", || async {
        let d = get(&vurl, &user()).await.body;
        d["status"] == "unmounted" && d["mounted_on"] == json!([])
    })
    .await;
}

#[tokio::test]
async fn strict_hotplug_refuses_drive_changes_on_running_servers() {
    let emu = emulator_with(Config {
        strict_hotplug: true,
        ..Config::default()
    })
    .await;
    let vol = emu.add_drive("zrh", USER, drive_seed("pvc", GIB));
    let boot = emu.add_drive("zrh", USER, drive_seed("boot", GIB));
    let srv = emu.add_server(
        "zrh",
        USER,
        ServerSeed {
            drives: vec![boot],
            nics: vec![
                cs_emulator::NicSeed::Public {
                    ip_v4: Some("203.0.113.10".parse().unwrap()),
                    ip_v6: None,
                },
                cs_emulator::NicSeed::Vlan { vlan: "v-1".into() },
            ],
            ..ServerSeed::default()
        },
    );
    let url = format!("{}servers/{srv}/", emu.api_url("zrh"));
    let r = put(&url, &user(), json!({"drives": [attach(&vol, "0:1")]})).await;
    assert_error(&r, 403, "permission", None);
    let r = put(&url, &user(), json!({"nics": []})).await;
    assert_error(&r, 403, "permission", None);
    assert_eq!(emu.drive_json(&vol).unwrap()["status"], "unmounted");
    // Name changes still pass, and so does sending back the full definition unchanged (what a CSI
    // driver does after re-reading the server).
    assert_eq!(put(&url, &user(), json!({"name": "x"})).await.status, 200);
    let full = get(&url, &user()).await.body;
    let r = put(&url, &user(), full.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["nics"], full["nics"]);
    // Drive changes pass once stopped.
    emu.set_server_status(&srv, "stopped");
    assert_eq!(
        put(&url, &user(), json!({"drives": [attach(&vol, "0:1")]}))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn attach_validation() {
    let emu = emulator().await;
    let a = emu.add_drive("zrh", USER, drive_seed("a", GIB));
    let b = emu.add_drive("zrh", USER, drive_seed("b", GIB));
    let theirs = emu.add_drive("zrh", OTHER, drive_seed("theirs", GIB));
    let creating = emu.add_drive(
        "zrh",
        USER,
        DriveSeed {
            status: Some("unavailable".into()),
            ..drive_seed("broken", GIB)
        },
    );
    let s1 = emu.add_server(
        "zrh",
        USER,
        ServerSeed {
            drives: vec![a.clone()],
            ..ServerSeed::default()
        },
    );
    let s2 = emu.add_server("zrh", USER, ServerSeed::default());
    let url = format!("{}servers/{s2}/", emu.api_url("zrh"));
    for (drives, status, etype, point) in [
        (
            json!([attach(&b, "0:1"), attach(&b, "0:2")]),
            400,
            "validation",
            Some("drives"),
        ),
        (
            json!([attach(&b, "0:1"), {"dev_channel": "0:1", "device": "virtio", "drive": {"uuid": a}}]),
            400,
            "validation",
            Some("dev_channel"),
        ),
        (json!([attach(&b, "0:6")]), 400, "validation", Some("dev_channel")),
        (
            json!([{"dev_channel": "0:2", "device": "ide", "drive": b}]),
            400,
            "validation",
            Some("dev_channel"),
        ),
        (
            json!([{"dev_channel": "0:1", "device": "virtio"}]),
            400,
            "validation",
            Some("drive"),
        ),
        (
            json!([{"dev_channel": "0:1", "drive": b}]),
            400,
            "validation",
            Some("device"),
        ),
        (
            json!([attach("11111111-2222-4333-8444-555555555555", "0:1")]),
            400,
            "validation",
            Some("drives"),
        ),
        (json!([attach(&theirs, "0:1")]), 403, "permission", None),
        (json!([attach(&a, "0:1")]), 403, "permission", None),
        (json!([attach(&creating, "0:1")]), 403, "permission", None),
    ] {
        let r = put(&url, &user(), json!({"drives": drives})).await;
        assert_error(&r, status, etype, point);
    }
    // With allow_multimount the shared drive can join a second server.
    let r = put(
        &format!("{}drives/{a}/", emu.api_url("zrh")),
        &user(),
        json!({"allow_multimount": true}),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = put(&url, &user(), json!({"drives": [attach(&a, "0:1")]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mounted: Vec<Value> = emu.drive_json(&a).unwrap()["mounted_on"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(mounted.len(), 2);
    assert_eq!(mounted[0]["uuid"], s1.as_str());
}

#[tokio::test]
async fn server_delete_recurse_and_plain_delete() {
    let emu = emulator().await;
    let keep = emu.add_drive("zrh", USER, drive_seed("keep", GIB));
    let gone = emu.add_drive("zrh", USER, drive_seed("gone", GIB));
    let s1 = emu.add_server(
        "zrh",
        USER,
        ServerSeed {
            status: "stopped".into(),
            drives: vec![keep.clone()],
            ..ServerSeed::default()
        },
    );
    let s2 = emu.add_server(
        "zrh",
        USER,
        ServerSeed {
            status: "stopped".into(),
            drives: vec![gone.clone()],
            ..ServerSeed::default()
        },
    );
    assert_eq!(
        delete(&format!("{}servers/{s1}/", emu.api_url("zrh")), &user())
            .await
            .status,
        204
    );
    let kurl = format!("{}drives/{keep}/", emu.api_url("zrh"));
    eventually("kept drive unmounted", || async {
        get(&kurl, &user()).await.body["status"] == "unmounted"
    })
    .await;
    let r = delete(
        &format!("{}servers/{s2}/?recurse=all_drives", emu.api_url("zrh")),
        &user(),
    )
    .await;
    assert_eq!(r.status, 204);
    assert_error(
        &get(&format!("{}drives/{gone}/", emu.api_url("zrh")), &user()).await,
        404,
        "notexist",
        None,
    );
}

#[tokio::test]
async fn deleting_a_mounted_drive_removes_it_from_the_server() {
    let emu = emulator().await;
    let d = emu.add_drive("zrh", USER, drive_seed("d", GIB));
    let s = emu.add_server(
        "zrh",
        USER,
        ServerSeed {
            drives: vec![d.clone()],
            ..ServerSeed::default()
        },
    );
    assert_eq!(
        delete(&format!("{}drives/{d}/", emu.api_url("zrh")), &user())
            .await
            .status,
        204
    );
    assert_eq!(emu.server_json(&s).unwrap()["drives"], json!([]));
}
