//! The `cs-emulator` binary with the demo seed: the "Done when" check, plus the admin fault endpoint.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::*;
use serde_json::json;

/// Kills the child when the test ends, pass or fail.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary on an ephemeral port with the given extra arguments; returns it and its base URL.
fn start(args: &[&str]) -> (Running, String) {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/seed.yaml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cs-emulator"))
        .args(["--listen", "127.0.0.1:0", "--seed", seed])
        .args(args)
        // At info the request log is written too: it goes to stderr, so the banner stays first on stdout.
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first
        .strip_prefix("cs-emulator listening on ")
        .unwrap_or_else(|| panic!("unexpected: {first}"));
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (running, base.to_owned())
}

#[tokio::test]
async fn seeded_binary_serves_the_demo_servers() {
    let (_child, base) = start(&[]);
    let r = get(
        &format!("{base}/api/2.0/servers/detail/"),
        &basic("user@example.com", "pass"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let objs = r.body["objects"].as_array().unwrap();
    let names: Vec<&str> = objs.iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["web-1", "db-1", "batch-1"]);
    assert_eq!(objs[0]["runtime"]["nics"][0]["ip_v4"]["uuid"], "203.0.113.10");
    assert_eq!(objs[1]["nics"][1]["runtime"]["interface_type"], "private");
    assert_eq!(objs[2]["status"], "stopped");
    assert!(objs[2]["runtime"].is_null());
    // The other account's server is not visible, and its uuid is refused.
    let r = get(
        &format!("{base}/zrh/api/2.0/servers/5e7e7000-0000-4000-8000-0000000000ff/"),
        &basic("user@example.com", "pass"),
    )
    .await;
    assert_error(&r, 403, "permission", None);
    let drives = get(
        &format!("{base}/zrh/api/2.0/drives/detail/"),
        &basic("user@example.com", "pass"),
    )
    .await;
    let statuses: Vec<&str> = drives.body["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["mounted", "mounted", "unmounted"]);
}

#[tokio::test]
async fn seeded_binary_supports_the_impersonation_flow() {
    let (_child, base) = start(&["--token-lifetime", "15m"]);
    let token_url = format!("{base}/oauth/realms/cloudsigma/protocol/openid-connect/token");
    let c = client();
    let sa: serde_json::Value = c
        .post(&token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret-not-for-production"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sa = sa["access_token"].as_str().unwrap();
    let rpt: serde_json::Value = c
        .post(&token_url)
        .bearer_auth(sa)
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:uma-ticket"),
            ("audience", "service_provider_api"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = post(
        &format!("{base}/zrh/direct/service_provider/api/v1/user/impersonate"),
        &Auth::Bearer(rpt["access_token"].as_str().unwrap().to_owned()),
        json!({"user_email": "user@example.com", "subject_token": sa}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["expires_in"], 900);
    let token = Auth::Bearer(r.body["access_token"].as_str().unwrap().to_owned());
    let list = get(&format!("{base}/zrh/direct/api/2.0/servers/"), &token).await;
    assert_eq!(list.body["meta"]["total_count"], 3);
}

#[tokio::test]
async fn binary_admin_endpoint_injects_and_clears_faults() {
    let (_child, base) = start(&[]);
    let url = format!("{base}/api/2.0/servers/");
    let r = post(
        &format!("{base}/_emulator/faults"),
        &Auth::None,
        json!({"route": {"path_contains": "/servers/"}, "action": {"status": {"status": 503}}}),
    )
    .await;
    assert_eq!(r.status, 201);
    assert_error(
        &get(&url, &basic("user@example.com", "pass")).await,
        503,
        "concurrency",
        None,
    );
    assert_eq!(
        delete(&format!("{base}/_emulator/faults"), &Auth::None)
            .await
            .status,
        204
    );
    assert_eq!(get(&url, &basic("user@example.com", "pass")).await.status, 200);
}

#[test]
fn bad_seed_file_fails_with_the_field_named() {
    let dir = std::env::temp_dir().join(format!("cs-emulator-bad-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("seed.yaml");
    std::fs::write(&path, "servers:\n  - owner: user@example.com\n    nmae: typo\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cs-emulator"))
        .args(["--listen", "127.0.0.1:0", "--seed", path.to_str().unwrap()])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("servers[0]") && err.contains("nmae"), "{err}");
}
