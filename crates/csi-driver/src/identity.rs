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

/// The Identity service. Probe reports ready while credentials can be obtained.
#[derive(Debug, Clone)]
pub struct IdentityService {
    provider: Option<SharedProvider>,
    manifest: HashMap<String, String>,
}

impl IdentityService {
    /// An identity service whose Probe asks `provider` for credentials (no provider: always ready).
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

    /// Ready when the credentials provider yields credentials (e.g. the token file or the legacy
    /// fallback is usable); not ready (an OK answer with `ready: false`) otherwise, so a missing token
    /// does not make the liveness probe restart the pod in a loop before the Secret arrives.
    async fn probe(&self, _request: Request<ProbeRequest>) -> Result<Response<ProbeResponse>, Status> {
        let ready = match &self.provider {
            None => true,
            Some(provider) => match provider.credentials().await {
                Ok(_) => true,
                Err(error) => {
                    warn!(%error, "Probe: no usable CloudSigma credentials");
                    false
                }
            },
        };
        Ok(Response::new(ProbeResponse { ready: Some(ready) }))
    }
}
