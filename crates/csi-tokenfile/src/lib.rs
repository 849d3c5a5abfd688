//! A credentials provider that reads the CloudSigma token from a mounted Secret file.
//!
//! The CSI controller mounts the Secret written by `ccm-csitoken`; this provider re-reads the token file
//! (and its `region`/`user_email` neighbours) on every call, rejects empty or expired tokens, and falls
//! back to legacy credentials when no usable token is present.
