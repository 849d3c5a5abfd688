//! Finding a Node's server: by providerID, else by exact name.

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;

use crate::{
    ServerFacts,
    cache::ServerCache,
    cloud::CloudError,
    provider_id::{ProviderIdError, parse_provider_id},
};

/// Why a Node's server was not found (or could not be looked for).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The Node's providerID is not `cloudsigma://<uuid>`.
    #[error(transparent)]
    ProviderId(#[from] ProviderIdError),
    /// The providerID names a server that does not exist.
    #[error("providerID names server {uuid}, which does not exist in this account")]
    NotFound {
        /// The server UUID.
        uuid: String,
    },
    /// No providerID, and no server has the Node's name.
    #[error("no server is named {name:?} in this account and the node has no providerID")]
    NoServerNamed {
        /// The Node name.
        name: String,
    },
    /// No providerID, and several servers have the Node's name.
    #[error("{} servers are named {name:?} ({}); set spec.providerID to cloudsigma://<uuid> to choose", uuids.len(), uuids.join(", "))]
    DuplicateName {
        /// The Node name.
        name: String,
        /// The UUIDs of the servers with that name.
        uuids: Vec<String>,
    },
    /// CloudSigma could not be asked.
    #[error(transparent)]
    Cloud(CloudError),
}

impl LookupError {
    /// The Event reason for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ProviderId(_) => "MalformedProviderID",
            Self::NotFound { .. } => "ServerNotFound",
            Self::NoServerNamed { .. } => "ServerNameNotFound",
            Self::DuplicateName { .. } => "DuplicateServerName",
            Self::Cloud(_) => "CloudSigmaUnavailable",
        }
    }
}

/// The Node's providerID, if it has a non-empty one.
pub fn provider_id(node: &Node) -> Option<&str> {
    node.spec
        .as_ref()
        .and_then(|s| s.provider_id.as_deref())
        .filter(|p| !p.is_empty())
}

/// How old a cached server list may be when it contains the server a lookup is for. A burst of joining
/// Nodes thus shares one listing even when it lasts longer than the cache TTL; a lookup that does not
/// find its server in such a list asks for a fresh one (at most one per TTL).
pub const FOUND_MAX_AGE: Duration = Duration::from_secs(60);

/// Finds the server of `node`: through its providerID (listed snapshot first, then a direct GET, since
/// the snapshot may predate the server) or, without a providerID, the one server with the Node's name.
pub async fn find_server(cache: &ServerCache, node: &Node) -> Result<ServerFacts, LookupError> {
    if let Some(recent) = cache.recent(FOUND_MAX_AGE).await {
        let found = match provider_id(node) {
            Some(pid) => recent.by_uuid(&parse_provider_id(pid)?).cloned(),
            None => match recent
                .by_name(&node.metadata.name.clone().unwrap_or_default())
                .as_slice()
            {
                [one] => Some((*one).clone()),
                _ => None,
            },
        };
        if let Some(server) = found {
            return Ok(server);
        }
    }
    let snapshot = cache.snapshot().await.map_err(LookupError::Cloud)?;
    if let Some(pid) = provider_id(node) {
        let uuid = parse_provider_id(pid)?;
        if let Some(server) = snapshot.by_uuid(&uuid) {
            return Ok(server.clone());
        }
        return match cache.cloud().get_server(&uuid).await {
            Ok(server) => Ok(server),
            Err(CloudError::NotFound { uuid }) => Err(LookupError::NotFound { uuid }),
            Err(e) => Err(LookupError::Cloud(e)),
        };
    }
    let name = node.metadata.name.clone().unwrap_or_default();
    match snapshot.by_name(&name).as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(LookupError::NoServerNamed { name }),
        many => Err(LookupError::DuplicateName {
            name,
            uuids: many.iter().map(|s| s.uuid.clone()).collect(),
        }),
    }
}
