//! The real `csi-controller` binary at debug log level, with a token file holding a known token and
//! legacy credentials with a known password, driven through every kind of call (successful ones, a
//! refused token, refused credentials, wrong volumes and nodes, bad arguments): no secret appears in its
//! stdout, its stderr or any gRPC error the sidecars would see.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::{
    path::Path,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use cs_emulator::{DriveSeed, Emulator, Fault, RouteMatch, ServerSeed};
use csi_driver::csi::{
    CapacityRange, ControllerPublishVolumeRequest, ControllerUnpublishVolumeRequest, CreateVolumeRequest,
    DeleteVolumeRequest, ListVolumesRequest, ProbeRequest, ValidateVolumeCapabilitiesRequest,
    VolumeCapability,
    controller_client::ControllerClient,
    identity_client::IdentityClient,
    volume_capability::{AccessMode, AccessType, MountVolume, access_mode::Mode},
};
use tempfile::TempDir;
use tokio::{
    io::{AsyncRead, AsyncReadExt},
    process::{Child, Command},
};
use tonic::transport::Channel;

const BIN: &str = env!("CARGO_BIN_EXE_csi-controller");
const EMAIL: &str = "secret-scan@example.com";
const PASSWORD: &str = "Legacy-Pw-Known-3b9f0c71";
const GIB: i64 = 1 << 30;

fn mount_capability() -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume::default())),
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
    }
}

fn create_request(name: &str) -> CreateVolumeRequest {
    CreateVolumeRequest {
        name: name.into(),
        capacity_range: Some(CapacityRange {
            required_bytes: GIB,
            limit_bytes: 0,
        }),
        volume_capabilities: vec![mount_capability()],
        ..Default::default()
    }
}

/// Collects everything a pipe carries until it closes.
fn drain(mut pipe: impl AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let sink = Arc::new(Mutex::new(Vec::new()));
    let out = sink.clone();
    tokio::spawn(async move {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            out.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    sink
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

/// Records every gRPC error in full (`Debug` shows code, message, details and metadata).
#[derive(Default)]
struct Errors(Vec<String>);

impl Errors {
    fn expect<T: std::fmt::Debug>(
        &mut self,
        what: &str,
        result: Result<tonic::Response<T>, tonic::Status>,
        code: tonic::Code,
    ) {
        let status = match result {
            Ok(r) => panic!("{what}: expected {code:?}, got {r:?}"),
            Err(status) => status,
        };
        assert_eq!(status.code(), code, "{what}: {status:?}");
        self.0.push(format!("{what}: {status:?}"));
    }
}

#[tokio::test]
async fn csi_controller_binary_at_debug_level_never_shows_a_secret_in_logs_or_grpc_errors() {
    for log_format in ["text", "json"] {
        scenario(log_format).await;
    }
}

/// One run of the binary with `--log-format log_format`; panics on the first secret found.
async fn scenario(log_format: &str) {
    let emulator = Emulator::start().await.unwrap();
    emulator.add_user(EMAIL, PASSWORD);
    let boot = emulator.add_drive("zrh", EMAIL, DriveSeed::default());
    let node = emulator.add_server(
        "zrh",
        EMAIL,
        ServerSeed {
            drives: vec![boot],
            ..ServerSeed::default()
        },
    );
    let token = emulator.issue_token("zrh", EMAIL);
    let dir = TempDir::new().unwrap();
    let secret_dir = dir.path().join("secret");
    std::fs::create_dir(&secret_dir).unwrap();
    let token_path = secret_dir.join("access_token");
    std::fs::write(&token_path, format!("{token}\r\n")).unwrap();
    std::fs::write(secret_dir.join("region"), "zrh\n").unwrap();
    std::fs::write(secret_dir.join("user_email"), EMAIL).unwrap();
    let socket = dir.path().join("csi.sock");

    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("RUST_LOG", "debug")
        .env("LOG_FORMAT", log_format)
        .env("CLOUDSIGMA_USERNAME", EMAIL)
        .env("CLOUDSIGMA_PASSWORD", PASSWORD)
        .arg("--endpoint")
        .arg(format!("unix://{}", socket.display()))
        .arg("--token-file")
        .arg(&token_path)
        .arg("--api-url")
        .arg(emulator.api_url_template())
        .arg("--direct-api-url")
        .arg(emulator.direct_api_url_template())
        .arg("--allow-insecure-http")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let channel = connect(&socket, &mut child).await;
    let mut identity = IdentityClient::new(channel.clone());
    let mut controller = ControllerClient::new(channel);
    let mut errors = Errors::default();

    // The happy path with the file token: create, publish, unpublish.
    assert_eq!(
        identity.probe(ProbeRequest {}).await.unwrap().into_inner().ready,
        Some(true)
    );
    let volume = controller
        .create_volume(create_request("pvc-secret-scan-1"))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    controller
        .controller_publish_volume(ControllerPublishVolumeRequest {
            volume_id: volume.volume_id.clone(),
            node_id: node.clone(),
            volume_capability: Some(mount_capability()),
            ..Default::default()
        })
        .await
        .unwrap();

    // Failing calls: wrong volume and node, an attached volume, bad arguments.
    let missing = "0bad0000-0000-4000-8000-000000000001".to_owned();
    errors.expect(
        "publish of a volume that does not exist",
        controller
            .controller_publish_volume(ControllerPublishVolumeRequest {
                volume_id: missing.clone(),
                node_id: node.clone(),
                volume_capability: Some(mount_capability()),
                ..Default::default()
            })
            .await,
        tonic::Code::NotFound,
    );
    errors.expect(
        "publish to a node that does not exist",
        controller
            .controller_publish_volume(ControllerPublishVolumeRequest {
                volume_id: volume.volume_id.clone(),
                node_id: missing.clone(),
                volume_capability: Some(mount_capability()),
                ..Default::default()
            })
            .await,
        tonic::Code::NotFound,
    );
    errors.expect(
        "delete of an attached volume",
        controller
            .delete_volume(DeleteVolumeRequest {
                volume_id: volume.volume_id.clone(),
                ..Default::default()
            })
            .await,
        tonic::Code::FailedPrecondition,
    );
    errors.expect(
        "validate of a volume that does not exist",
        controller
            .validate_volume_capabilities(ValidateVolumeCapabilitiesRequest {
                volume_id: missing.clone(),
                volume_capabilities: vec![mount_capability()],
                ..Default::default()
            })
            .await,
        tonic::Code::NotFound,
    );
    let mut bad_parameter = create_request("pvc-secret-scan-bad");
    bad_parameter
        .parameters
        .insert("password".into(), PASSWORD.into());
    errors.expect(
        "create with an unknown parameter whose value is the password",
        controller.create_volume(bad_parameter).await,
        tonic::Code::InvalidArgument,
    );
    errors.expect(
        "list with a paging token that is no volume id",
        controller
            .list_volumes(ListVolumesRequest {
                max_entries: 1,
                starting_token: "not-a-uuid".into(),
            })
            .await,
        tonic::Code::Aborted,
    );
    controller
        .controller_unpublish_volume(ControllerUnpublishVolumeRequest {
            volume_id: volume.volume_id.clone(),
            node_id: node.clone(),
            ..Default::default()
        })
        .await
        .unwrap();

    // Every credential refused (401 on both hosts): the file token is invalidated and marked, the retry
    // with the legacy password is refused too, the caller sees UNAUTHENTICATED.
    emulator.reset_log();
    let refuse_all = emulator.inject(Fault::status(RouteMatch::All, 401));
    errors.expect(
        "create while CloudSigma refuses every credential",
        controller
            .create_volume(create_request("pvc-secret-scan-2"))
            .await,
        tonic::Code::Unauthenticated,
    );
    emulator.clear_fault(refuse_all);
    let refused = emulator.requests();
    assert!(
        refused
            .iter()
            .any(|r| r.status == 401 && r.path.contains("/direct/"))
            && refused
                .iter()
                .any(|r| r.status == 401 && !r.path.contains("/direct/")),
        "the file token and the legacy password were both tried: {refused:?}"
    );

    // The refused file token is skipped for a while: the legacy password serves (regular host).
    emulator.reset_log();
    let second = controller
        .create_volume(create_request("pvc-secret-scan-3"))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    let legacy = emulator.requests();
    assert!(
        !legacy.is_empty()
            && legacy
                .iter()
                .all(|r| !r.path.contains("/direct/") && r.status < 400),
        "served with the legacy password: {legacy:?}"
    );
    // A token file that is unusable (two values, a half-written file) is reported without its content.
    std::fs::write(&token_path, format!("{token}\n{token}\n")).unwrap();
    controller
        .delete_volume(DeleteVolumeRequest {
            volume_id: second.volume_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    controller
        .delete_volume(DeleteVolumeRequest {
            volume_id: volume.volume_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(emulator.drive_json(&volume.volume_id).is_none());

    // Stop it and collect everything it printed.
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    // Let the drain tasks see the end of the pipes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout.lock().unwrap()),
        String::from_utf8_lossy(&stderr.lock().unwrap())
    );
    assert!(status.success(), "exit {status:?}; logs:\n{logs}");

    // The scan is only meaningful if debug output and the failure paths were really logged.
    assert!(
        logs.contains("DEBUG") && logs.contains("cloudsigma_request"),
        "debug level was not on"
    );
    assert!(
        logs.contains("refused the token") && logs.contains("legacy username/password"),
        "the fallback was not logged:\n{logs}"
    );
    assert!(
        logs.contains("INSECURE") && logs.contains("--api-url (CLOUDSIGMA_API_URL)"),
        "the plain-http emulator URLs were not warned about:\n{logs}"
    );
    assert_eq!(errors.0.len(), 7, "{:?}", errors.0);

    let basic = STANDARD.encode(format!("{EMAIL}:{PASSWORD}"));
    let secrets = [
        ("the file token", token.as_str()),
        ("the legacy password", PASSWORD),
        ("the Basic authorization value", basic.as_str()),
        // A cut or partly masked copy would still be a leak.
        ("the start of the file token", &token[..token.len().min(12)]),
        ("the middle of the password", &PASSWORD[4..20]),
    ];
    for (what, value) in secrets {
        assert!(
            !logs.contains(value),
            "{what} appears in the {log_format} output ({} bytes scanned)",
            logs.len()
        );
        for error in &errors.0 {
            assert!(!error.contains(value), "{what} appears in a gRPC error: {error}");
        }
    }
}
