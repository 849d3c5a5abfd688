//! The one error type of this crate.

/// Why no objects were rendered. Every variant names the cluster (as `namespace/name`, or just the
/// name when the object has no namespace) or the option at fault; nothing is rendered when any check
/// fails.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The cluster document is not YAML/JSON of a Kubernetes object.
    #[error("cannot read the cluster object: {0}")]
    ParseCluster(#[source] serde_yaml::Error),

    /// The cluster object has no `metadata.name`.
    #[error("the cluster object has no metadata.name")]
    MissingName,

    /// The cluster name cannot be used in object names and labels.
    #[error("cluster {cluster}: metadata.name {name:?} {reason}")]
    InvalidClusterName {
        /// The cluster, as far as known.
        cluster: String,
        /// The offending name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Neither the cluster object nor the options give a namespace.
    #[error(
        "cluster {cluster}: no namespace: the object has no metadata.namespace and no namespace option was \
         given (the Deployment must live in the cluster's namespace, next to its Secrets)"
    )]
    MissingNamespace {
        /// The cluster name.
        cluster: String,
    },

    /// The namespace is not a valid namespace name.
    #[error("cluster {cluster}: namespace {namespace:?} {reason}")]
    InvalidNamespace {
        /// The cluster.
        cluster: String,
        /// The offending namespace.
        namespace: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The owner-email annotation is absent or empty.
    #[error(
        "cluster {cluster}: annotation {annotation} is missing or empty; it must hold the email of the \
         CloudSigma account that owns the cluster's servers"
    )]
    MissingOwnerEmail {
        /// The cluster.
        cluster: String,
        /// The annotation looked at.
        annotation: &'static str,
    },

    /// The owner-email annotation does not hold one plausible email address.
    #[error("cluster {cluster}: annotation {annotation} = {value:?} is not a valid email address: {reason}")]
    InvalidOwnerEmail {
        /// The cluster.
        cluster: String,
        /// The annotation looked at.
        annotation: &'static str,
        /// The offending value (cut at 100 characters).
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// No region was given and none was found on the object.
    #[error(
        "cluster {cluster}: no CloudSigma region: looked at {looked_at}; set one of them or pass a region"
    )]
    MissingRegion {
        /// The cluster.
        cluster: String,
        /// Where the region was looked for, in order.
        looked_at: String,
    },

    /// The region found is not a valid location code.
    #[error("cluster {cluster}: region {value:?} (from {from}) {reason}")]
    InvalidRegion {
        /// The cluster.
        cluster: String,
        /// Where the value came from (the option, an annotation or a field path).
        from: String,
        /// The offending value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A render option is invalid.
    #[error("option {field}: {reason}")]
    InvalidOption {
        /// The option's field name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// The objects could not be written as YAML (should not happen for these types).
    #[error("cannot write the objects as YAML: {0}")]
    Serialize(#[source] serde_yaml::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
