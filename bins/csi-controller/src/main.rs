//! `csi-controller`: the CloudSigma CSI controller plugin.
//!
//! Wires `csi-tokenfile` and `cs-api` into the CSI Identity and Controller gRPC services.

use clap::Parser;

/// Command line of the CloudSigma CSI controller plugin.
#[derive(Debug, Parser)]
#[command(name = "csi-controller", version, about = "CloudSigma CSI controller plugin")]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    Ok(())
}
