//! The real `csi-controller` binary against the CloudSigma emulator: flags, socket handling, the
//! CreateVolume -> Publish -> Unpublish -> DeleteVolume round trip over its Unix socket, and SIGTERM.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::{
    os::unix::net::UnixListener as StdUnixListener,
    path::Path,
    process::{Output, Stdio},
    time::Duration,
};

use cs_emulator::{DriveSeed, Emulator, ServerSeed};
use csi_driver::csi::{
    CapacityRange, ControllerPublishVolumeRequest, ControllerUnpublishVolumeRequest, CreateVolumeRequest,
    DeleteVolumeRequest, GetPluginInfoRequest, ProbeRequest, VolumeCapability,
    controller_client::ControllerClient,
    identity_client::IdentityClient,
    volume_capability::{AccessMode, AccessType, MountVolume, access_mode::Mode},
};
use tempfile::TempDir;
use tokio::process::{Child, Command};
use tonic::transport::Channel;

const BIN: &str = env!("CARGO_BIN_EXE_csi-controller");
const EMAIL: &str = "tenant@example.com";

fn command() -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    c
}

async fn run_to_end(mut c: Command) -> Output {
    tokio::time::timeout(Duration::from_secs(20), c.output())
        .await
        .expect("the binary did not exit")
        .unwrap()
}

async fn connect(socket: &Path, child: &mut Child) -> Channel {
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("csi-controller exited early with {status}");
        }
        if let Ok(channel) = tonic::transport::Endpoint::from_shared(format!("unix://{}", socket.display()))
            .unwrap()
            .connect()
            .await
        {
            return channel;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("csi-controller did not start listening on {}", socket.display());
}

fn mount_capability() -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume::default())),
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
    }
}

#[tokio::test]
async fn csi_controller_binary_round_trip_over_its_socket_and_sigterm() {
    let emulator = Emulator::start().await.unwrap();
    emulator.add_user(EMAIL, "pw-Secret-1");
    let boot = emulator.add_drive("zrh", EMAIL, DriveSeed::default());
    let node = emulator.add_server(
        "zrh",
        EMAIL,
        ServerSeed {
            drives: vec![boot],
            ..ServerSeed::default()
        },
    );
    let dir = TempDir::new().unwrap();
    let secret = dir.path().join("secret");
    std::fs::create_dir(&secret).unwrap();
    let token = emulator.issue_token("zrh", EMAIL);
    std::fs::write(secret.join("access_token"), format!("{token}\n")).unwrap();
    std::fs::write(secret.join("region"), "zrh\n").unwrap();
    std::fs::write(secret.join("user_email"), EMAIL).unwrap();
    // A socket left behind by a crashed run is replaced.
    let socket = dir.path().join("csi.sock");
    drop(StdUnixListener::bind(&socket).unwrap());
    assert!(socket.exists());

    let mut c = command();
    c.arg("--endpoint")
        .arg(format!("unix://{}", socket.display()))
        .arg("--token-file")
        .arg(secret.join("access_token"))
        .arg("--api-url")
        .arg(emulator.api_url_template())
        .arg("--direct-api-url")
        .arg(emulator.direct_api_url_template())
        .arg("--allow-insecure-http")
        .env("CLOUDSIGMA_PASSWORD", "legacy-pw-Must-Not-Leak")
        .env("CLOUDSIGMA_USERNAME", EMAIL)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let channel = connect(&socket, &mut child).await;
    let mut identity = IdentityClient::new(channel.clone());
    let mut controller = ControllerClient::new(channel);

    let info = identity
        .get_plugin_info(GetPluginInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.name, "csi.cloudsigma.com");
    assert_eq!(
        identity.probe(ProbeRequest {}).await.unwrap().into_inner().ready,
        Some(true)
    );

    let volume = controller
        .create_volume(CreateVolumeRequest {
            name: "pvc-binary-e2e".into(),
            capacity_range: Some(CapacityRange {
                required_bytes: 5 << 30,
                limit_bytes: 0,
            }),
            volume_capabilities: vec![mount_capability()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert_eq!(volume.capacity_bytes, 5 << 30);
    let context = controller
        .controller_publish_volume(ControllerPublishVolumeRequest {
            volume_id: volume.volume_id.clone(),
            node_id: node.clone(),
            volume_capability: Some(mount_capability()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .publish_context;
    assert_eq!(context["devChannel"], "0:1");
    let server = emulator.server_json(&node).unwrap();
    assert!(
        server["drives"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["drive"]["uuid"] == volume.volume_id.as_str())
    );
    controller
        .controller_unpublish_volume(ControllerUnpublishVolumeRequest {
            volume_id: volume.volume_id.clone(),
            node_id: node.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        emulator.drive_json(&volume.volume_id).unwrap()["status"],
        "unmounted"
    );
    controller
        .delete_volume(DeleteVolumeRequest {
            volume_id: volume.volume_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(emulator.drive_json(&volume.volume_id).is_none());
    // Every API call went to the direct host (the impersonated token's host), none to the regular one.
    let requests = emulator.requests();
    assert!(
        !requests.is_empty() && requests.iter().all(|r| r.path.contains("/direct/")),
        "{requests:?}"
    );

    // SIGTERM: graceful stop, exit 0, socket removed.
    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}; logs:\n{logs}", output.status);
    assert!(!socket.exists(), "the socket is removed on shutdown");
    assert!(logs.contains("SIGTERM received"), "{logs}");
    assert!(
        !logs.contains("legacy-pw-Must-Not-Leak") && !logs.contains(&token),
        "secrets in the logs:\n{logs}"
    );
}

#[tokio::test]
async fn csi_controller_binary_rejects_bad_configuration_naming_the_setting() {
    let dir = TempDir::new().unwrap();
    let token_file = dir.path().join("access_token");
    // A non-unix endpoint.
    let mut c = command();
    c.args(["--endpoint", "tcp://127.0.0.1:10000", "--region", "zrh"])
        .arg("--token-file")
        .arg(&token_file);
    let out = run_to_end(c).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--endpoint") && err.contains("unix://"),
        "{err}"
    );
    // No region anywhere.
    let mut c = command();
    c.arg("--endpoint")
        .arg(format!("unix://{}/csi.sock", dir.path().display()))
        .arg("--token-file")
        .arg(&token_file);
    let out = run_to_end(c).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--region") && err.contains("region file"),
        "{err}"
    );
    // A username without a password.
    let mut c = command();
    c.args(["--region", "zrh", "--username", "a@b.c"]);
    let out = run_to_end(c).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--password"), "{err}");
    // A path that is not a socket is never removed.
    let not_socket = dir.path().join("data.sock");
    std::fs::write(&not_socket, "keep").unwrap();
    let mut c = command();
    c.arg("--endpoint")
        .arg(format!("unix://{}", not_socket.display()))
        .args([
            "--region",
            "zrh",
            "--api-url",
            "http://127.0.0.1:9/{region}/api/2.0/",
            "--allow-insecure-http",
        ])
        .arg("--token-file")
        .arg(&token_file);
    let out = run_to_end(c).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&not_socket).unwrap(), "keep");
}

#[tokio::test]
async fn csi_controller_binary_help_never_shows_secret_env_values() {
    let mut c = command();
    c.arg("--help")
        .env("CLOUDSIGMA_PASSWORD", "pw-Hidden-42")
        .env("CLOUDSIGMA_USERNAME", "user@x.io");
    let out = run_to_end(c).await;
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for flag in [
        "--endpoint",
        "CSI_ENDPOINT",
        "--token-file",
        "--region",
        "--password",
        "--api-url",
        "--log-format",
    ] {
        assert!(help.contains(flag), "help lacks {flag}:\n{help}");
    }
    assert!(!help.contains("pw-Hidden-42"), "{help}");
}

#[tokio::test]
async fn csi_controller_binary_socket_is_owner_only_even_with_a_permissive_umask() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dir = TempDir::new().unwrap();
    let socket = dir.path().join("csi.sock");
    // With umask 000 a freshly bound socket would be rw for everyone: only the binary's chmod makes it
    // 0600 (docs/csi.md, "Socket").
    let mut c = Command::new("sh");
    c.env_clear()
        .env("RUST_LOG", "info")
        .args(["-c", "umask 000; exec \"$0\" \"$@\"", BIN])
        .arg("--endpoint")
        .arg(format!("unix://{}", socket.display()))
        .args([
            "--region",
            "zrh",
            "--api-url",
            "http://127.0.0.1:9/{region}/api/2.0/",
            "--allow-insecure-http",
        ])
        .arg("--token-file")
        .arg(dir.path().join("access_token"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = c.spawn().unwrap();
    let _channel = connect(&socket, &mut child).await;
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o600,
        "socket mode {:o}",
        meta.permissions().mode()
    );
    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!socket.exists());
}
