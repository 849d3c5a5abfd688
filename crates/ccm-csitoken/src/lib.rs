//! Keeps a fresh impersonated CloudSigma token in the tenant cluster for the CSI driver.
//!
//! Holds the refresh schedule as a pure function of issue time, lifetime, margin and interval, and the
//! controller that writes Secret `cloudsigma-csi/cloudsigma-token` only when its content must change.
