//! Node logic of the CloudSigma cloud controller manager.
//!
//! The pure decisions (node + server in, desired providerID, labels, addresses and taints out; delete or
//! keep a Node whose VM is gone) and the controllers that apply them to a tenant cluster through kube-rs:
//! node initialization, periodic address refresh and the shutdown/deletion lifecycle.
