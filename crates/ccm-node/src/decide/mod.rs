//! Pure node decisions: no I/O, no clock reads. Each function takes a Node (and what is known about its
//! server) and returns what the Node should look like, or why it cannot be decided.

pub mod addresses;
pub mod init;
pub mod labels;
pub mod lifecycle;
pub mod taints;

pub use addresses::{AddressError, desired_addresses, refreshed_addresses};
pub use init::{InitBlocked, InitPlan, plan_initialization};
pub use labels::{LabelError, desired_labels, instance_type};
pub use lifecycle::{GoneState, LifecycleDecision, Lookup, decide_lifecycle};
pub use taints::{SHUTDOWN_TAINT, UNINITIALIZED_TAINT, has_taint};
