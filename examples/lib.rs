//! Runnable examples of the CloudSigma crates; see the `[[example]]` targets of this package and run
//! them with `cargo run --example NAME -- --help`.
