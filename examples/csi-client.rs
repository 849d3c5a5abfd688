//! A minimal CSI client: drives a CSI controller plugin through CreateVolume → ControllerPublishVolume →
//! ControllerUnpublishVolume → DeleteVolume over its Unix socket and prints each answer.
//!
//! ```text
//! target/debug/cs-emulator --listen 127.0.0.1:18080 --seed examples/seed.yaml &
//! # /tmp/csi-demo/secret/{access_token,region,user_email}: see docs/csi.md, "Example session"
//! target/debug/csi-controller --endpoint unix:///tmp/csi.sock --token-file /tmp/csi-demo/secret/access_token \
//!   --api-url 'http://127.0.0.1:18080/{region}/api/2.0/' \
//!   --direct-api-url 'http://127.0.0.1:18080/{region}/direct/api/2.0/' --allow-insecure-http &
//! cargo run --example csi-client -- --endpoint unix:///tmp/csi.sock --node-id <server uuid>
//! ```
//!
//! `docs/csi.md` shows a full session with the token file set up from the emulator.

use anyhow::Context as _;
use clap::Parser;
use csi_driver::csi::{
    CapacityRange, ControllerPublishVolumeRequest, ControllerUnpublishVolumeRequest, CreateVolumeRequest,
    DeleteVolumeRequest, GetPluginInfoRequest, VolumeCapability,
    controller_client::ControllerClient,
    identity_client::IdentityClient,
    volume_capability::{AccessMode, AccessType, MountVolume, access_mode::Mode},
};

/// Create, publish, unpublish and delete one volume through a CSI controller plugin.
#[derive(Debug, Parser)]
#[command(name = "csi-client", version)]
struct Args {
    /// The plugin's endpoint, `unix:///path/to/csi.sock`.
    #[arg(long, env = "CSI_ENDPOINT", default_value = "unix:///tmp/csi.sock")]
    endpoint: String,
    /// The node (CloudSigma server uuid) to publish the volume to.
    #[arg(long)]
    node_id: String,
    /// The volume's CSI name.
    #[arg(long, default_value = "pvc-csi-client-example")]
    name: String,
    /// The requested size in GiB.
    #[arg(long, default_value_t = 10)]
    size_gib: i64,
}

fn capability() -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume {
            fs_type: "ext4".into(),
            ..Default::default()
        })),
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
    }
}

/// The endpoint as tonic takes it; only `unix://` is accepted.
fn channel_uri(endpoint: &str) -> anyhow::Result<String> {
    let path = endpoint
        .strip_prefix("unix://")
        .filter(|p| p.starts_with('/'))
        .with_context(|| format!("--endpoint {endpoint:?} must be unix:///absolute/path.sock"))?;
    Ok(format!("unix://{path}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let channel = tonic::transport::Endpoint::from_shared(channel_uri(&args.endpoint)?)?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}", args.endpoint))?;
    let mut identity = IdentityClient::new(channel.clone());
    let mut controller = ControllerClient::new(channel);

    let info = identity
        .get_plugin_info(GetPluginInfoRequest {})
        .await?
        .into_inner();
    println!("plugin: {} {}", info.name, info.vendor_version);

    let volume = controller
        .create_volume(CreateVolumeRequest {
            name: args.name.clone(),
            capacity_range: Some(CapacityRange {
                required_bytes: args.size_gib << 30,
                limit_bytes: 0,
            }),
            volume_capabilities: vec![capability()],
            ..Default::default()
        })
        .await
        .context("CreateVolume")?
        .into_inner()
        .volume
        .context("CreateVolume answered without a volume")?;
    let topology: Vec<String> = volume
        .accessible_topology
        .iter()
        .flat_map(|t| t.segments.iter().map(|(k, v)| format!("{k}={v}")))
        .collect();
    println!(
        "CreateVolume: volume_id={} capacity_bytes={} topology=[{}]",
        volume.volume_id,
        volume.capacity_bytes,
        topology.join(", ")
    );

    let published = controller
        .controller_publish_volume(ControllerPublishVolumeRequest {
            volume_id: volume.volume_id.clone(),
            node_id: args.node_id.clone(),
            volume_capability: Some(capability()),
            ..Default::default()
        })
        .await
        .context("ControllerPublishVolume")?
        .into_inner();
    let mut context: Vec<String> = published
        .publish_context
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    context.sort();
    println!(
        "ControllerPublishVolume: node_id={} publish_context={{{}}}",
        args.node_id,
        context.join(", ")
    );

    controller
        .controller_unpublish_volume(ControllerUnpublishVolumeRequest {
            volume_id: volume.volume_id.clone(),
            node_id: args.node_id.clone(),
            ..Default::default()
        })
        .await
        .context("ControllerUnpublishVolume")?;
    println!("ControllerUnpublishVolume: OK (detached)");

    controller
        .delete_volume(DeleteVolumeRequest {
            volume_id: volume.volume_id.clone(),
            ..Default::default()
        })
        .await
        .context("DeleteVolume")?;
    println!("DeleteVolume: OK ({} deleted)", volume.volume_id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_valid_and_only_unix_endpoints_are_accepted() {
        Args::command().debug_assert();
        assert_eq!(
            channel_uri("unix:///tmp/csi.sock").unwrap(),
            "unix:///tmp/csi.sock"
        );
        for bad in ["tcp://127.0.0.1:1", "unix://relative.sock", "/tmp/csi.sock"] {
            assert!(
                channel_uri(bad).unwrap_err().to_string().contains("--endpoint"),
                "{bad}"
            );
        }
    }
}
