//! `ccm`: the CloudSigma cloud controller manager for tenant clusters.
//!
//! Wires `cs-auth`, `cs-api`, `ccm-node` and `ccm-csitoken` together; no business rule lives here.

use clap::Parser;

/// Command line of the CloudSigma cloud controller manager.
#[derive(Debug, Parser)]
#[command(name = "ccm", version, about = "CloudSigma cloud controller manager for tenant clusters")]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    Ok(())
}
