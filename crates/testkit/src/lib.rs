//! Test support: a genuine local kube-apiserver for integration tests.
//!
//! Starts (or attaches to) the control plane run by `hack/local-kube.sh` and hands tests a
//! `kube::Client`. Used only as a dev-dependency.
