//! Compiles the vendored CSI v1.9.0 `csi.proto` (see `proto/README.md`) into Rust messages, servers and
//! clients. `protoc` and the well-known-type includes (`google/protobuf/*.proto`) come from the
//! `protoc-bin-vendored` crate unless `PROTOC` is set, so no system package is needed.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/csi.proto");
    println!("cargo:rerun-if-env-changed=PROTOC");
    let proto = PathBuf::from("proto/csi.proto");
    let mut includes = vec![PathBuf::from("proto")];
    let mut config = tonic_prost_build::Config::new();
    match env::var_os("PROTOC") {
        Some(protoc) => {
            config.protoc_executable(protoc);
        }
        None => {
            config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
            includes.push(protoc_bin_vendored::include_path()?);
        }
    }
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_with_config(config, &[proto], &includes)?;
    Ok(())
}
