//! Node logic of the CloudSigma cloud controller manager.
//!
//! The pure decisions (node + server in, desired providerID, labels, addresses and taints out; delete or
//! keep a Node whose VM is gone) live in [`decide`] and its submodules, free of I/O and clocks so they are
//! tested table-driven. The controllers that apply them to a tenant cluster through kube-rs come on top.

pub mod cache;
pub mod cloud;
pub mod controller;
pub mod cs_cloud;
pub mod decide;
pub mod events;
pub mod lookup;
pub mod metrics;
pub mod model;
pub mod provider_id;
pub mod writes;

pub use cache::ServerCache;
pub use cloud::{Cloud, CloudError};
pub use controller::{NodeControllerConfig, NodeControllers};
pub use cs_cloud::CsCloud;
pub use metrics::Metrics;
pub use model::{NicFacts, PowerState, ServerFacts};
pub use provider_id::{PROVIDER_ID_PREFIX, ProviderIdError, parse_provider_id, provider_id_for};
