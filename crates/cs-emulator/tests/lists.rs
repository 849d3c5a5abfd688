//! List envelopes: default limit, limit=0, offset, filters, fields, ordering.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use cs_emulator::Emulator;
use serde_json::{Value, json};

async fn with_drives(n: usize) -> (Emulator, Vec<String>) {
    let emu = emulator().await;
    let uuids = (0..n)
        .map(|i| emu.add_drive("zrh", USER, drive_seed(&format!("pvc-{i:02}"), GIB)))
        .collect();
    (emu, uuids)
}

fn uuids(v: &Value) -> Vec<String> {
    v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["uuid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn default_limit_is_20_and_limit_0_means_all() {
    let (emu, all) = with_drives(25).await;
    let base = format!("{}drives/", emu.api_url("zrh"));
    let r = get(&base, &user()).await;
    assert_eq!(
        r.body["meta"],
        json!({"limit": 20, "offset": 0, "total_count": 25})
    );
    assert_eq!(uuids(&r.body), all[..20]);
    let r = get(&format!("{base}?limit=0"), &user()).await;
    assert_eq!(
        r.body["meta"],
        json!({"limit": 0, "offset": 0, "total_count": 25})
    );
    assert_eq!(uuids(&r.body), all);
    let r = get(&format!("{base}?limit=10&offset=20"), &user()).await;
    assert_eq!(
        r.body["meta"],
        json!({"limit": 10, "offset": 20, "total_count": 25})
    );
    assert_eq!(uuids(&r.body), all[20..]);
    let r = get(
        &format!("{}drives/detail/?offset=24", emu.api_url("zrh")),
        &user(),
    )
    .await;
    assert_eq!(uuids(&r.body), all[24..]);
    assert_error(
        &get(&format!("{base}?limit=-1"), &user()).await,
        400,
        "validation",
        Some("limit"),
    );
    assert_error(
        &get(&format!("{base}?offset=x"), &user()).await,
        400,
        "validation",
        Some("offset"),
    );
}

#[tokio::test]
async fn filters_uuid_or_name_contains_and_tag() {
    let (emu, all) = with_drives(5).await;
    let base = format!("{}drives/detail/", emu.api_url("zrh"));
    let r = get(&format!("{base}?uuid={},{}", all[1], all[3]), &user()).await;
    assert_eq!(r.body["meta"]["total_count"], 2);
    assert_eq!(uuids(&r.body), [all[1].clone(), all[3].clone()]);
    let r = get(&format!("{base}?name=pvc-02"), &user()).await;
    assert_eq!(uuids(&r.body), [all[2].clone()]);
    let r = get(&format!("{base}?name__contains=vc-0"), &user()).await;
    assert_eq!(r.body["meta"]["total_count"], 5);
    let r = get(&format!("{base}?name__contains=-04"), &user()).await;
    assert_eq!(uuids(&r.body), [all[4].clone()]);
    // Different params AND together.
    let r = get(&format!("{base}?name=pvc-02&uuid={}", all[3]), &user()).await;
    assert_eq!(r.body["meta"]["total_count"], 0);
    // Tags.
    let url = format!("{}drives/{}/", emu.api_url("zrh"), all[0]);
    assert_eq!(put(&url, &user(), json!({"tags": ["t-1"]})).await.status, 200);
    let r = get(&format!("{base}?tag=t-1"), &user()).await;
    assert_eq!(uuids(&r.body), [all[0].clone()]);
    // A field that exists but is not filterable, and a filter type that is not allowed.
    assert_error(
        &get(&format!("{base}?status=mounted"), &user()).await,
        400,
        "validation",
        Some("status"),
    );
    assert_error(
        &get(&format!("{base}?name__startswith=p"), &user()).await,
        400,
        "validation",
        Some("name__startswith"),
    );
    // Unknown parameters are ignored.
    assert_eq!(
        get(&format!("{base}?whatever=1"), &user()).await.body["meta"]["total_count"],
        5
    );
}

#[tokio::test]
async fn comma_in_a_name_is_escaped_with_a_backslash() {
    let emu = emulator().await;
    let a = emu.add_drive("zrh", USER, drive_seed("a,b", GIB));
    emu.add_drive("zrh", USER, drive_seed("a", GIB));
    let r = get(&format!("{}drives/?name=a%5C,b", emu.api_url("zrh")), &user()).await;
    assert_eq!(uuids(&r.body), [a]);
}

#[tokio::test]
async fn server_list_filters_and_fields() {
    let emu = emulator().await;
    let a = emu.add_server("zrh", USER, server_seed("alpha", "203.0.113.1"));
    let b = emu.add_server("zrh", USER, server_seed("beta", "203.0.113.2"));
    let base = format!("{}servers/", emu.api_url("zrh"));
    let r = get(&format!("{base}?uuid={a},{b}&limit=0"), &user()).await;
    assert_eq!(r.body["meta"]["total_count"], 2);
    let r = get(&format!("{base}?fields=uuid,status"), &user()).await;
    assert_eq!(r.body["objects"][0], json!({"uuid": a, "status": "running"}));
    let r = get(&format!("{base}detail/?order_by=-name"), &user()).await;
    assert_eq!(uuids(&r.body), [b.clone(), a.clone()]);
    assert_error(
        &get(&format!("{base}?order_by=cpu"), &user()).await,
        400,
        "validation",
        Some("order_by"),
    );
}

#[tokio::test]
async fn lists_hold_only_the_callers_resources_of_that_location() {
    let emu = emulator_with(cs_emulator::Config {
        locations: vec!["zrh".into(), "fra".into()],
        ..cs_emulator::Config::default()
    })
    .await;
    emu.add_server("zrh", USER, server_seed("mine", "203.0.113.1"));
    emu.add_server("fra", USER, server_seed("mine-in-fra", "203.0.113.2"));
    emu.add_server("zrh", OTHER, server_seed("theirs", "203.0.113.3"));
    let r = get(&format!("{}servers/", emu.api_url("zrh")), &user()).await;
    let names: Vec<&str> = r.body["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mine"]);
    let r = get(&format!("{}servers/", emu.api_url("fra")), &user()).await;
    assert_eq!(r.body["objects"][0]["name"], "mine-in-fra");
    assert_eq!(r.body["meta"]["total_count"], 1);
}
