//! The CSI Identity service: plugin name, capabilities and readiness.

use std::collections::HashMap;

use cs_auth::SharedProvider;
use tonic::{Request, Response, Status};
use tracing::warn;

use crate::{
    DRIVER_NAME,
    csi::{
        GetPluginCapabilitiesRequest, GetPluginCapabilitiesResponse, GetPluginInfoRequest,
        GetPluginInfoResponse, PluginCapability, ProbeRequest, ProbeResponse,
        identity_server::Identity,
        plugin_capability::{self, service, volume_expansion},
    },
};

/// The Identity service. Probe reports ready while the process serves (see [`Identity::probe`]).
#[derive(Debug, Clone)]
pub struct IdentityService {
    provider: Option<SharedProvider>,
    manifest: HashMap<String, String>,
}

impl IdentityService {
    /// An identity service whose Probe checks (and logs) whether `provider` yields credentials.
    /// `region` is reported in the plugin manifest.
    pub fn new(provider: Option<SharedProvider>, region: &str) -> Self {
        Self {
            provider,
            manifest: HashMap::from([("region".to_owned(), region.to_owned())]),
        }
    }

    /// The plugin capabilities: the controller service, volume accessibility constraints (the region
    /// topology) and offline volume expansion.
    pub fn capabilities() -> Vec<PluginCapability> {
        let service = |t: service::Type| PluginCapability {
            r#type: Some(plugin_capability::Type::Service(plugin_capability::Service {
                r#type: t as i32,
            })),
        };
        vec![
            service(service::Type::ControllerService),
            service(service::Type::VolumeAccessibilityConstraints),
            PluginCapability {
                r#type: Some(plugin_capability::Type::VolumeExpansion(
                    plugin_capability::VolumeExpansion {
                        r#type: volume_expansion::Type::Offline as i32,
                    },
                )),
            },
        ]
    }
}

#[tonic::async_trait]
impl Identity for IdentityService {
    async fn get_plugin_info(
        &self,
        _request: Request<GetPluginInfoRequest>,
    ) -> Result<Response<GetPluginInfoResponse>, Status> {
        Ok(Response::new(GetPluginInfoResponse {
            name: DRIVER_NAME.to_owned(),
            vendor_version: env!("CARGO_PKG_VERSION").to_owned(),
            manifest: self.manifest.clone(),
        }))
    }

    async fn get_plugin_capabilities(
        &self,
        _request: Request<GetPluginCapabilitiesRequest>,
    ) -> Result<Response<GetPluginCapabilitiesResponse>, Status> {
        Ok(Response::new(GetPluginCapabilitiesResponse {
            capabilities: Self::capabilities(),
        }))
    }

    /// Always ready while the process serves: the kubelet's livenessprobe sidecar fails (and the pod
    /// restarts) on `ready: false`, and a restart cannot fix missing credentials. When the provider yields
    /// none (no token file yet, no legacy credentials), a warning is logged and every CloudSigma-backed RPC
    /// answers UNAUTHENTICATED/UNAVAILABLE with the reason.
    async fn probe(&self, _request: Request<ProbeRequest>) -> Result<Response<ProbeResponse>, Status> {
        if let Some(provider) = &self.provider
            && let Err(error) = provider.credentials().await
        {
            warn!(%error, "Probe: no usable CloudSigma credentials yet; RPCs fail until the token file is valid");
        }
        let ready = true;
        Ok(Response::new(ProbeResponse { ready: Some(ready) }))
    }
}
