//! `POST /snapshots/{uuid}/action/?do=clone`: a new drive from a snapshot.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use cs_emulator::{DriveSeed, Emulator};
use serde_json::{Value, json};

/// Takes a snapshot of `drive` as `auth` and waits until it is `available`; returns its uuid.
async fn available_snapshot(emu: &Emulator, drive: &str, name: &str) -> String {
    let url = format!("{}snapshots/", emu.api_url("zrh"));
    let r = post(
        &url,
        &user(),
        json!({"objects": [{"drive": drive, "name": name}]}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["objects"][0]["uuid"].as_str().unwrap().to_owned();
    let item = format!("{url}{id}/");
    eventually("snapshot available", || async {
        get(&item, &user()).await.body["status"] == "available"
    })
    .await;
    id
}

fn clone_url(emu: &Emulator, snapshot: &str) -> String {
    format!("{}snapshots/{snapshot}/action/?do=clone", emu.api_url("zrh"))
}

#[tokio::test]
async fn snapshot_clone_makes_a_new_drive_in_cloning_dst_then_unmounted() {
    let emu = emulator_with(slow()).await;
    let src = emu.add_drive(
        "zrh",
        USER,
        DriveSeed {
            name: "golden".into(),
            size: 2 * GIB,
            storage_type: "nvme".into(),
            ..DriveSeed::default()
        },
    );
    let snap = available_snapshot(&emu, &src, "nightly").await;

    // Empty body: everything from the snapshot and its drive.
    let r = post(&clone_url(&emu, &snap), &user(), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let objects = r.body["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 1, "{}", r.text);
    let d = &objects[0];
    assert_eq!(d["status"], "cloning_dst");
    assert_eq!(d["size"], 2 * GIB);
    assert_eq!(d["name"], "nightly");
    assert_eq!(d["media"], "disk");
    assert_eq!(d["storage_type"], "nvme");
    assert_eq!(d["mounted_on"], json!([]));
    assert_eq!(
        d["owner"]["uuid"].as_str(),
        emu.user_uuid(USER).as_deref(),
        "owned by the caller"
    );
    let first = d["uuid"].as_str().unwrap().to_owned();
    assert_ne!(first, src);

    // Overrides: a larger size, a name, meta and another storage type.
    let r = post(
        &clone_url(&emu, &snap),
        &user(),
        json!({"name": "restored", "size": 3 * GIB, "media": "disk", "storage_type": "dssd",
               "meta": {"csi_source_snapshot": snap}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let d = &r.body["objects"][0];
    assert_eq!(d["status"], "cloning_dst");
    assert_eq!(d["name"], "restored");
    assert_eq!(d["size"], 3 * GIB);
    assert_eq!(d["storage_type"], "dssd");
    assert_eq!(d["meta"]["csi_source_snapshot"], snap.as_str());
    let second = d["uuid"].as_str().unwrap().to_owned();
    let first_url = format!("{}drives/{first}/", emu.api_url("zrh"));
    assert_eq!(get(&first_url, &user()).await.body["status"], "cloning_dst");

    // The source drive and the snapshot keep their states while the clones are made.
    assert_eq!(emu.drive_json(&src).unwrap()["status"], "unmounted");
    let snap_url = format!("{}snapshots/{snap}/", emu.api_url("zrh"));
    assert_eq!(get(&snap_url, &user()).await.body["status"], "available");

    for uuid in [&first, &second] {
        let url = format!("{}drives/{uuid}/", emu.api_url("zrh"));
        eventually("clone ready", || async {
            get(&url, &user()).await.body["status"] == "unmounted"
        })
        .await;
    }
    // The new drives are listed for the caller, not for anybody else.
    let mine = get(&format!("{}drives/?limit=0", emu.api_url("zrh")), &user()).await;
    assert_eq!(mine.body["meta"]["total_count"], 3, "{}", mine.text);
    let theirs = get(&format!("{}drives/?limit=0", emu.api_url("zrh")), &other()).await;
    assert_eq!(theirs.body["meta"]["total_count"], 0, "{}", theirs.text);
    // A bare request without a body works too.
    let r = call(reqwest::Method::POST, &clone_url(&emu, &snap), &user(), None).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["objects"][0]["size"], 2 * GIB);
}

#[tokio::test]
async fn snapshot_clone_smaller_than_the_source_drive_is_refused_naming_size() {
    let emu = emulator().await;
    let src = emu.add_drive("zrh", USER, drive_seed("big", 4 * GIB));
    let snap = available_snapshot(&emu, &src, "s").await;
    let before = get(&format!("{}drives/?limit=0", emu.api_url("zrh")), &user()).await;
    let r = post(&clone_url(&emu, &snap), &user(), json!({"size": 4 * GIB - 1})).await;
    assert_error(&r, 400, "validation", Some("size"));
    assert!(
        r.body[0]["error_message"]
            .as_str()
            .unwrap()
            .contains(&(4 * GIB).to_string()),
        "the message names the source size: {}",
        r.text
    );
    // Other bad overrides name their field as well.
    let r = post(&clone_url(&emu, &snap), &user(), json!({"media": "floppy"})).await;
    assert_error(&r, 400, "validation", Some("media"));
    let r = post(&clone_url(&emu, &snap), &user(), json!({"size": "lots"})).await;
    assert_error(&r, 400, "validation", Some("size"));
    let r = post(&clone_url(&emu, &snap), &user(), json!({"storage_type": "tape"})).await;
    assert_error(&r, 400, "validation", Some("storage_type"));
    // Nothing was created by the refused calls.
    let after = get(&format!("{}drives/?limit=0", emu.api_url("zrh")), &user()).await;
    assert_eq!(
        after.body["meta"]["total_count"],
        before.body["meta"]["total_count"]
    );
}

#[tokio::test]
async fn snapshot_clone_of_unknown_or_foreign_snapshots_and_bad_actions() {
    let emu = emulator().await;
    let unknown = "11111111-2222-4333-8444-555555555555";
    let r = post(&clone_url(&emu, unknown), &user(), json!({})).await;
    assert_error(&r, 404, "notexist", None);
    assert!(r.text.contains(unknown), "{}", r.text);

    // Another user's snapshot: 403 with the observed wording, and no drive for either user.
    let theirs = emu.add_drive("zrh", OTHER, drive_seed("t", GIB));
    let url = format!("{}snapshots/", emu.api_url("zrh"));
    let r = post(&url, &other(), json!({"objects": [{"drive": theirs}]})).await;
    let their_snap = r.body["objects"][0]["uuid"].as_str().unwrap().to_owned();
    let r = post(&clone_url(&emu, &their_snap), &user(), json!({})).await;
    assert_error(&r, 403, "permission", None);
    assert!(
        r.text.contains("does not have all of the permissions") && r.text.contains(&their_snap),
        "{}",
        r.text
    );
    let mine = get(&format!("{}drives/?limit=0", emu.api_url("zrh")), &user()).await;
    assert_eq!(mine.body["meta"]["total_count"], 0);
    // Another location does not know it (404).
    let emu2 = emulator_with(cs_emulator::Config {
        locations: vec!["zrh".into(), "fra".into()],
        ..cs_emulator::Config::default()
    })
    .await;
    let d = emu2.add_drive("zrh", USER, drive_seed("d", GIB));
    let snap = available_snapshot(&emu2, &d, "s").await;
    let r = post(
        &format!("{}snapshots/{snap}/action/?do=clone", emu2.api_url("fra")),
        &user(),
        json!({}),
    )
    .await;
    assert_error(&r, 404, "notexist", None);

    // Actions other than clone, or none: 400 naming `do`; GET on the action: 405.
    let r = post(
        &format!("{}snapshots/{snap}/action/?do=restore", emu2.api_url("zrh")),
        &user(),
        json!({}),
    )
    .await;
    assert_error(&r, 400, "validation", Some("do"));
    let r = post(
        &format!("{}snapshots/{snap}/action/", emu2.api_url("zrh")),
        &user(),
        json!({}),
    )
    .await;
    assert_error(&r, 400, "validation", Some("do"));
    let r = get(&clone_url(&emu2, &snap), &user()).await;
    assert_eq!(r.status, 405, "{}", r.text);
    assert_eq!(r.headers["allow"], "POST, OPTIONS");
}

#[tokio::test]
async fn snapshot_clone_waits_for_the_snapshot_to_be_available() {
    let emu = emulator_with(slow()).await;
    let src = emu.add_drive("zrh", USER, drive_seed("d", GIB));
    let url = format!("{}snapshots/", emu.api_url("zrh"));
    let r = post(&url, &user(), json!({"objects": [{"drive": src}]})).await;
    assert_eq!(r.body["objects"][0]["status"], "creating");
    let snap = r.body["objects"][0]["uuid"].as_str().unwrap().to_owned();
    // While `creating`: 403, as for other operations refused in the current state.
    let r = post(&clone_url(&emu, &snap), &user(), json!({})).await;
    assert_error(&r, 403, "permission", None);
    assert!(r.text.contains("creating"), "{}", r.text);
    let drives = get(&format!("{}drives/?limit=0", emu.api_url("zrh")), &user()).await;
    assert_eq!(drives.body["meta"]["total_count"], 1, "nothing was created");
    // Once available it clones.
    let item = format!("{url}{snap}/");
    eventually("snapshot available", || async {
        get(&item, &user()).await.body["status"] == "available"
    })
    .await;
    let r = post(&clone_url(&emu, &snap), &user(), Value::Null).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["objects"][0]["status"], "cloning_dst");
}
