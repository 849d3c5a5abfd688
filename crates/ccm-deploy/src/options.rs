//! What the caller chooses: image, replicas, region, Secrets, resources.

use crate::{Error, Result, validate};

/// Annotation holding the email of the CloudSigma account that owns the cluster's servers.
pub const OWNER_EMAIL_ANNOTATION: &str = "cloudsigma.com/owner-email";
/// Default annotation holding the cluster's CloudSigma region (location code).
pub const DEFAULT_REGION_ANNOTATION: &str = "cloudsigma.com/region";
/// Default field path (dot-separated) holding the region on a platform's own cluster kind.
pub const DEFAULT_REGION_FIELD: &str = "spec.region";
/// Default Secret (in the cluster's namespace) with the impersonation service account's credentials.
pub const DEFAULT_IMPERSONATION_SECRET: &str = "cloudsigma-impersonation";
/// Key of the Keycloak base URL in the impersonation Secret (optional: the binary's default applies).
pub const OAUTH_URL_KEY: &str = "oauth-url";
/// Key of the OAuth client id in the impersonation Secret.
pub const CLIENT_ID_KEY: &str = "client-id";
/// Key of the OAuth client secret in the impersonation Secret.
pub const CLIENT_SECRET_KEY: &str = "client-secret";
/// Key of the account email in the optional legacy-credentials Secret.
pub const LEGACY_USERNAME_KEY: &str = "username";
/// Key of the account password in the optional legacy-credentials Secret.
pub const LEGACY_PASSWORD_KEY: &str = "password";
/// Key of the kubeconfig in the CAPI `<cluster>-kubeconfig` Secret.
pub const DEFAULT_KUBECONFIG_KEY: &str = "value";
/// Directory the kubeconfig Secret is mounted at (read-only).
pub const KUBECONFIG_MOUNT_DIR: &str = "/etc/ccm/kubeconfig";
/// Image repository used when no image is given; the tag is this crate's version.
pub const DEFAULT_IMAGE_REPOSITORY: &str = "cloudsigma-ccm";
/// Default value of the `app.kubernetes.io/managed-by` label.
pub const DEFAULT_MANAGED_BY: &str = "ccm-deploy";
/// Port of `/metrics` (the binary's `--metrics-bind-address` default, 0.0.0.0:8080).
pub const METRICS_PORT: i32 = 8080;
/// Port of `/healthz` and `/readyz` (the binary's `--health-probe-bind-address` default, 0.0.0.0:8081).
pub const HEALTH_PORT: i32 = 8081;
/// UID and GID the container runs as (the distroless `nonroot` user).
pub const RUN_AS_USER: i64 = 65532;

/// Flags the renderer sets itself (as flags or through their environment variables); `extra_args` may
/// not repeat them (clap refuses a repeated flag, and a second value would silently win).
const RESERVED_FLAGS: &[&str] = &[
    "--kubeconfig",
    "--cluster-name",
    "--region",
    "--user-email",
    "--impersonation-enabled",
    "--oauth-url",
    "--client-id",
    "--client-secret",
    "--username",
    "--password",
    "--csi-token-enabled",
    "--leader-elect",
    "--leader-elect-namespace",
    "--leader-elect-lease-name",
    "--metrics-bind-address",
    "--health-probe-bind-address",
];

/// How to render the CCM of one cluster. `RenderOptions::default()` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    /// Container image reference. Default: `cloudsigma-ccm:<this crate's version>`.
    pub image: String,
    /// `imagePullPolicy`. Default `IfNotPresent`.
    pub image_pull_policy: String,
    /// Replicas. More than one turns on leader election (a Lease in the tenant cluster, named
    /// `cloudsigma-ccm-<cluster>`). 0 is allowed (a paused CCM). Default 1.
    pub replicas: u16,
    /// Namespace of the tenant-cluster Lease used for leader election. Default `kube-system`.
    pub leader_elect_namespace: String,
    /// The region, overriding what the cluster object says. Default: none (look it up).
    pub region: Option<String>,
    /// Annotation looked at for the region when [`Self::region`] is not given. Default
    /// [`DEFAULT_REGION_ANNOTATION`].
    pub region_annotation: String,
    /// Dot-separated field paths looked at (in order) after the annotation, e.g. `spec.region` of a
    /// platform's own cluster kind. Default `["spec.region"]`.
    pub region_fields: Vec<String>,
    /// Namespace of the Deployment, overriding the cluster object's. Default: the object's namespace.
    pub namespace: Option<String>,
    /// Keep the CSI token Secret in the tenant cluster fresh (`--csi-token-enabled`). Default false.
    pub csi_token: bool,
    /// Secret with the impersonation credentials (keys `oauth-url` (optional), `client-id`,
    /// `client-secret`), in the Deployment's namespace. Default `cloudsigma-impersonation`.
    pub impersonation_secret: String,
    /// Optional Secret with legacy credentials (keys `username`, `password`), used as the fallback
    /// while impersonation fails. Default: none.
    pub legacy_secret: Option<String>,
    /// Secret holding the tenant kubeconfig. Default: CAPI's `<cluster>-kubeconfig`.
    pub kubeconfig_secret: Option<String>,
    /// Key of the kubeconfig in that Secret. Default `value`.
    pub kubeconfig_key: String,
    /// `app.kubernetes.io/managed-by` label value. Default `ccm-deploy`.
    pub managed_by: String,
    /// CPU request. Default `50m`.
    pub cpu_request: String,
    /// Memory request. Default `64Mi`.
    pub memory_request: String,
    /// Memory limit. Default `256Mi`. (No CPU limit: throttling a controller only delays it.)
    pub memory_limit: String,
    /// Further `ccm` flags, e.g. `--api-url=...` for a private cloud or `--log-format=json`. Flags the
    /// renderer sets itself are refused.
    pub extra_args: Vec<String>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            image: format!("{DEFAULT_IMAGE_REPOSITORY}:{}", env!("CARGO_PKG_VERSION")),
            image_pull_policy: "IfNotPresent".into(),
            replicas: 1,
            leader_elect_namespace: "kube-system".into(),
            region: None,
            region_annotation: DEFAULT_REGION_ANNOTATION.into(),
            region_fields: vec![DEFAULT_REGION_FIELD.into()],
            namespace: None,
            csi_token: false,
            impersonation_secret: DEFAULT_IMPERSONATION_SECRET.into(),
            legacy_secret: None,
            kubeconfig_secret: None,
            kubeconfig_key: DEFAULT_KUBECONFIG_KEY.into(),
            managed_by: DEFAULT_MANAGED_BY.into(),
            cpu_request: "50m".into(),
            memory_request: "64Mi".into(),
            memory_limit: "256Mi".into(),
            extra_args: Vec::new(),
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidOption {
        field,
        reason: reason.into(),
    }
}

fn check(field: &'static str, value: &str, rule: fn(&str) -> Result<(), String>) -> Result<()> {
    rule(value).map_err(|e| invalid(field, format!("{value:?} {e}")))
}

impl RenderOptions {
    /// Checks every option on its own; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if self.image.trim().is_empty() || self.image.chars().any(char::is_whitespace) {
            return Err(invalid(
                "image",
                format!("{:?} is not an image reference", self.image),
            ));
        }
        if !matches!(
            self.image_pull_policy.as_str(),
            "Always" | "IfNotPresent" | "Never"
        ) {
            return Err(invalid(
                "image_pull_policy",
                format!(
                    "{:?} is not Always, IfNotPresent or Never",
                    self.image_pull_policy
                ),
            ));
        }
        check(
            "leader_elect_namespace",
            &self.leader_elect_namespace,
            validate::dns_label,
        )?;
        if self.region_annotation.trim().is_empty() {
            return Err(invalid("region_annotation", "must not be empty"));
        }
        if let Some(path) = self
            .region_fields
            .iter()
            .find(|p| p.split('.').any(str::is_empty))
        {
            return Err(invalid(
                "region_fields",
                format!("{path:?} is not a dot-separated field path such as spec.region"),
            ));
        }
        if let Some(ns) = &self.namespace {
            check("namespace", ns, validate::dns_label)?;
        }
        check(
            "impersonation_secret",
            &self.impersonation_secret,
            validate::dns_subdomain,
        )?;
        if let Some(s) = &self.legacy_secret {
            check("legacy_secret", s, validate::dns_subdomain)?;
        }
        if let Some(s) = &self.kubeconfig_secret {
            check("kubeconfig_secret", s, validate::dns_subdomain)?;
        }
        check("kubeconfig_key", &self.kubeconfig_key, validate::secret_key)?;
        check("managed_by", &self.managed_by, validate::label_value)?;
        for (field, q) in [
            ("cpu_request", &self.cpu_request),
            ("memory_request", &self.memory_request),
            ("memory_limit", &self.memory_limit),
        ] {
            quantity(q).map_err(|e| invalid(field, format!("{q:?} {e}")))?;
        }
        for arg in &self.extra_args {
            if !arg.starts_with("--") || arg.len() < 3 {
                return Err(invalid(
                    "extra_args",
                    format!("{arg:?} is not a --flag or --flag=value"),
                ));
            }
            let flag = arg.split('=').next().unwrap_or(arg);
            if RESERVED_FLAGS.contains(&flag) {
                return Err(invalid(
                    "extra_args",
                    format!("{flag} is set by the renderer; use the corresponding option instead"),
                ));
            }
        }
        Ok(())
    }
}

/// A Kubernetes quantity as written by people: a decimal number with an optional suffix.
fn quantity(value: &str) -> Result<(), String> {
    const SUFFIXES: &[&str] = &[
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E", "",
    ];
    let number = SUFFIXES
        .iter()
        .find_map(|s| value.strip_suffix(s).filter(|n| !n.is_empty()))
        .unwrap_or(value);
    let mut parts = number.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next();
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let ok = match frac {
        None => digits(whole),
        Some(f) => (whole.is_empty() || digits(whole)) && digits(f),
    };
    if ok {
        Ok(())
    } else {
        Err("is not a quantity (examples: 50m, 0.5, 64Mi, 1Gi)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let o = RenderOptions::default();
        o.validate().unwrap();
        assert_eq!(o.image, format!("cloudsigma-ccm:{}", env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn each_bad_option_is_named() {
        type Change = Box<dyn Fn(&mut RenderOptions)>;
        let cases: Vec<(&str, Change)> = vec![
            ("image", Box::new(|o| o.image = "a b".into())),
            ("image", Box::new(|o| o.image = String::new())),
            (
                "image_pull_policy",
                Box::new(|o| o.image_pull_policy = "Sometimes".into()),
            ),
            (
                "leader_elect_namespace",
                Box::new(|o| o.leader_elect_namespace = "Kube".into()),
            ),
            (
                "region_annotation",
                Box::new(|o| o.region_annotation = " ".into()),
            ),
            (
                "region_fields",
                Box::new(|o| o.region_fields = vec!["spec..region".into()]),
            ),
            ("namespace", Box::new(|o| o.namespace = Some("a_b".into()))),
            (
                "impersonation_secret",
                Box::new(|o| o.impersonation_secret = "A".into()),
            ),
            ("legacy_secret", Box::new(|o| o.legacy_secret = Some("".into()))),
            (
                "kubeconfig_secret",
                Box::new(|o| o.kubeconfig_secret = Some("x/y".into())),
            ),
            ("kubeconfig_key", Box::new(|o| o.kubeconfig_key = "a/b".into())),
            ("managed_by", Box::new(|o| o.managed_by = "a b".into())),
            ("cpu_request", Box::new(|o| o.cpu_request = "fast".into())),
            ("memory_request", Box::new(|o| o.memory_request = "64 Mi".into())),
            ("memory_limit", Box::new(|o| o.memory_limit = "".into())),
            ("extra_args", Box::new(|o| o.extra_args = vec!["-v".into()])),
            (
                "extra_args",
                Box::new(|o| o.extra_args = vec!["--kubeconfig=/x".into()]),
            ),
            (
                "extra_args",
                Box::new(|o| o.extra_args = vec!["--client-secret".into()]),
            ),
        ];
        for (field, change) in cases {
            let mut o = RenderOptions::default();
            change(&mut o);
            match o.validate() {
                Err(Error::InvalidOption { field: f, reason }) => {
                    assert_eq!(f, field, "{reason}");
                }
                other => panic!("{field}: expected InvalidOption, got {other:?}"),
            }
        }
        let o = RenderOptions {
            extra_args: vec![
                "--api-url=https://cloud.example/api/2.0/".into(),
                "--log-format=json".into(),
            ],
            ..RenderOptions::default()
        };
        o.validate().unwrap();
    }

    #[test]
    fn quantities() {
        for ok in ["50m", "0.5", ".5", "64Mi", "1Gi", "100", "2", "1.5Gi"] {
            assert_eq!(quantity(ok), Ok(()), "{ok}");
        }
        for bad in ["", "Mi", "fast", "1.", "-1", "64 Mi", "1.2.3"] {
            assert!(quantity(bad).is_err(), "{bad:?}");
        }
    }
}
