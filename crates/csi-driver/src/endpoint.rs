//! The gRPC endpoint: a Unix socket given as `unix:///path/to/csi.sock`.

use std::{
    fs,
    future::Future,
    os::unix::fs::{FileTypeExt, PermissionsExt},
    path::{Path, PathBuf},
};

use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tracing::info;

use crate::{
    ControllerService, Error, IdentityService, Result,
    csi::{controller_server::ControllerServer, identity_server::IdentityServer},
};

/// Permissions of the socket file: owner only (the sidecars run as the same user or as root).
pub const SOCKET_MODE: u32 = 0o600;

/// The socket path of a `unix://` endpoint (`unix:///csi/csi.sock` → `/csi/csi.sock`). Any other scheme,
/// a relative path or an empty path is an error naming `field`.
pub fn socket_path(field: &str, endpoint: &str) -> Result<PathBuf> {
    let endpoint = endpoint.trim();
    let path = endpoint.strip_prefix("unix://").or_else(|| endpoint.strip_prefix("unix:")).ok_or_else(|| {
        Error::Endpoint(format!(
            "{field} {endpoint:?} is not a unix socket endpoint; use unix:///path/to/csi.sock (CSI plugins listen \
             on Unix sockets only)"
        ))
    })?;
    let path = Path::new(path);
    if !path.is_absolute() {
        return Err(Error::Endpoint(format!(
            "{field} {endpoint:?} must name an absolute socket path"
        )));
    }
    Ok(path.to_owned())
}

/// Removes a stale socket left by an earlier run. Anything else at the path is left alone and reported.
pub fn remove_stale_socket(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => fs::remove_file(path)
            .map_err(|e| Error::Endpoint(format!("cannot remove the stale socket {}: {e}", path.display()))),
        Ok(_) => Err(Error::Endpoint(format!(
            "{} exists and is not a socket; refusing to replace it",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Endpoint(format!("cannot inspect {}: {e}", path.display()))),
    }
}

/// Binds the socket at `path` (removing a stale one first) with [`SOCKET_MODE`] permissions.
pub fn bind(path: &Path) -> Result<UnixListener> {
    remove_stale_socket(path)?;
    let listener = UnixListener::bind(path)
        .map_err(|e| Error::Endpoint(format!("cannot listen on {}: {e}", path.display())))?;
    fs::set_permissions(path, fs::Permissions::from_mode(SOCKET_MODE)).map_err(|e| {
        Error::Endpoint(format!(
            "cannot restrict the permissions of {}: {e}",
            path.display()
        ))
    })?;
    Ok(listener)
}

/// Serves the Identity and Controller services on `listener` until `shutdown` completes, then lets
/// running calls finish and removes the socket file at `path`.
pub async fn serve(
    listener: UnixListener,
    path: &Path,
    identity: IdentityService,
    controller: ControllerService,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    info!(socket = %path.display(), "serving CSI Identity and Controller");
    let result = tonic::transport::Server::builder()
        .add_service(IdentityServer::new(identity))
        .add_service(ControllerServer::new(controller))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await
        .map_err(|e| Error::Endpoint(format!("gRPC server on {} failed: {e}", path.display())));
    // Best effort: a socket that is already gone is fine.
    let _ = fs::remove_file(path);
    info!(socket = %path.display(), "CSI server stopped");
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_unix_endpoints_are_accepted() {
        assert_eq!(
            socket_path("--endpoint", "unix:///csi/csi.sock").unwrap(),
            PathBuf::from("/csi/csi.sock")
        );
        assert_eq!(
            socket_path("--endpoint", "unix:/tmp/x.sock").unwrap(),
            PathBuf::from("/tmp/x.sock")
        );
        for bad in [
            "tcp://127.0.0.1:10000",
            "/csi/csi.sock",
            "unix://relative.sock",
            "dns:///x:1",
            "",
        ] {
            let e = socket_path("--endpoint", bad).unwrap_err().to_string();
            assert!(e.contains("--endpoint"), "{bad}: {e}");
        }
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_but_a_regular_file_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("csi.sock");
        let first = bind(&sock).unwrap();
        drop(first); // the file stays behind, as after a crash
        assert!(sock.exists());
        let _second = bind(&sock).unwrap();
        let mode = fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, SOCKET_MODE);

        let file = dir.path().join("data.txt");
        fs::write(&file, "keep me").unwrap();
        let e = bind(&file).unwrap_err().to_string();
        assert!(e.contains("is not a socket"), "{e}");
        assert_eq!(fs::read_to_string(&file).unwrap(), "keep me");
    }
}
