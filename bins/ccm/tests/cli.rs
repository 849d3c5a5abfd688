//! Bad command lines: exit code 2, a message naming the flag (and its environment variable) and the fix,
//! and never a secret value echoed back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

const SECRET: &str = "s3cr3t-client-value-91d2";
const PASSWORD: &str = "p4ssw0rd-value-77ab";

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccm"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn assert_usage_error(args: &[&str], env: &[(&str, &str)], must_name: &[&str]) {
    let (code, text) = run(args, env);
    assert_eq!(code, 2, "exit code for {args:?}: {text}");
    for name in must_name {
        assert!(
            text.contains(name),
            "message for {args:?} must name {name}: {text}"
        );
    }
    assert!(
        !text.contains(SECRET) && !text.contains(PASSWORD),
        "a secret was echoed for {args:?}: {text}"
    );
}

#[test]
fn missing_region_names_flag_and_env() {
    assert_usage_error(
        &["--username", "a@example.com", "--password", PASSWORD],
        &[],
        &["--region", "CLOUDSIGMA_REGION"],
    );
}

#[test]
fn no_credentials_names_both_ways() {
    assert_usage_error(
        &["--region", "zrh"],
        &[],
        &["--impersonation-enabled", "--username", "--password"],
    );
}

#[test]
fn incomplete_impersonation_names_each_missing_setting() {
    assert_usage_error(
        &[
            "--region",
            "zrh",
            "--impersonation-enabled",
            "--client-secret",
            SECRET,
        ],
        &[],
        &[
            "--client-id",
            "CLOUDSIGMA_CLIENT_ID",
            "--user-email",
            "CLOUDSIGMA_USER_EMAIL",
        ],
    );
    assert_usage_error(
        &[
            "--region",
            "zrh",
            "--impersonation-enabled",
            "--client-id",
            "c",
            "--user-email",
            "u@example.com",
        ],
        &[],
        &["--client-secret", "CLOUDSIGMA_CLIENT_SECRET"],
    );
}

#[test]
fn half_legacy_credentials_are_refused() {
    assert_usage_error(
        &["--region", "zrh", "--password", PASSWORD],
        &[],
        &["--username", "CLOUDSIGMA_USERNAME"],
    );
    assert_usage_error(
        &["--region", "zrh"],
        &[("CLOUDSIGMA_USERNAME", "a@example.com")],
        &["--password"],
    );
}

#[test]
fn csi_token_without_impersonation_is_refused() {
    assert_usage_error(
        &[
            "--region",
            "zrh",
            "--username",
            "a@example.com",
            "--csi-token-enabled",
        ],
        &[("CLOUDSIGMA_PASSWORD", PASSWORD)],
        &["--csi-token-enabled", "--impersonation-enabled"],
    );
}

#[test]
fn bad_values_name_the_flag() {
    let creds = ["--username", "a@example.com", "--password", PASSWORD];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = vec!["--region", "zrh"];
        v.extend_from_slice(&creds);
        v.extend_from_slice(extra);
        v
    };
    assert_usage_error(
        &with(&["--node-monitor-period", "soon"]),
        &[],
        &["--node-monitor-period", "30s"],
    );
    assert_usage_error(
        &with(&["--node-delete-grace", "0s"]),
        &[],
        &["--node-delete-grace"],
    );
    // A bare zero (seconds) is refused like `0s`: a zero period would panic the periodic timers.
    for flag in [
        "--node-monitor-period",
        "--node-status-update-frequency",
        "--server-cache-ttl",
    ] {
        assert_usage_error(&with(&[flag, "0"]), &[], &[flag, "greater than zero"]);
    }
    assert_usage_error(
        &with(&[]),
        &[("CCM_NODE_STATUS_UPDATE_FREQUENCY", "0")],
        &["--node-status-update-frequency"],
    );
    assert_usage_error(&with(&["--log-format", "xml"]), &[], &["--log-format"]);
    assert_usage_error(
        &with(&["--metrics-bind-address", "everywhere"]),
        &[],
        &["--metrics-bind-address"],
    );
    assert_usage_error(
        &with(&["--concurrent-node-syncs", "0"]),
        &[],
        &["--concurrent-node-syncs"],
    );
    assert_usage_error(&with(&["--api-url", "ftp://example.com/"]), &[], &["--api-url"]);
    assert_usage_error(
        &with(&["--direct-api-url", "http://127.0.0.1:1/"]),
        &[],
        &["--direct-api-url", "--api-url"],
    );
    assert_usage_error(
        &[
            "--region",
            "atlantis",
            "--username",
            "a@example.com",
            "--password",
            PASSWORD,
        ],
        &[],
        &["--region", "atlantis"],
    );
    assert_usage_error(
        &[
            "--region",
            "zr h",
            "--username",
            "a@example.com",
            "--password",
            PASSWORD,
        ],
        &[],
        &["--region"],
    );
    assert_usage_error(&with(&["--log-level", "info,[bad"]), &[], &["--log-level"]);
    assert_usage_error(
        &with(&["--kubeconfig", "/nonexistent/kubeconfig"]),
        &[],
        &["--kubeconfig"],
    );
}

#[test]
fn help_never_shows_secret_values_from_the_environment() {
    let (code, text) = run(
        &["--help"],
        &[
            ("CLOUDSIGMA_CLIENT_SECRET", SECRET),
            ("CLOUDSIGMA_PASSWORD", PASSWORD),
            ("CLOUDSIGMA_USER_EMAIL", "shown@example.com"),
        ],
    );
    assert_eq!(code, 0);
    assert!(text.contains("--client-secret") && text.contains("CLOUDSIGMA_CLIENT_SECRET"));
    assert!(!text.contains(SECRET) && !text.contains(PASSWORD), "{text}");
    // Non-secret values are shown, so the hiding above is not an accident of the help format.
    assert!(text.contains("shown@example.com"));
}

#[test]
fn version_prints() {
    let (code, text) = run(&["--version"], &[]);
    assert_eq!(code, 0);
    assert!(text.starts_with("ccm "), "{text}");
}

#[test]
fn render_prints_the_deployment_of_a_cluster() {
    let cluster = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/cluster.yaml");
    let (code, text) = run(&["render", "--cluster", cluster, "--csi-token"], &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("kind: Deployment") && text.contains("name: csccm-example"),
        "{text}"
    );
    assert!(text.contains("--csi-token-enabled"), "{text}");
}

#[test]
fn render_errors_exit_2_naming_the_input() {
    let (code, text) = run(&["render", "--cluster", "/nonexistent/cluster.yaml"], &[]);
    assert_eq!(code, 2);
    assert!(text.contains("--cluster /nonexistent/cluster.yaml"), "{text}");
    let dir = std::env::temp_dir().join(format!("ccm-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("cluster.yaml");
    std::fs::write(
        &bad,
        "apiVersion: cluster.x-k8s.io/v1beta1\nkind: Cluster\nmetadata:\n  name: no-owner\n  namespace: t\n  annotations:\n    cloudsigma.com/owner-email: not-an-email\n    cloudsigma.com/region: zrh\n",
    )
    .unwrap();
    let (code, text) = run(&["render", "--cluster", bad.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("no-owner") && text.contains("owner-email"),
        "{text}"
    );
    // Controller flags do not mix with the subcommand.
    let (code, _) = run(
        &["--region", "zrh", "render", "--cluster", bad.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 2);
}

#[test]
fn plain_http_urls_are_refused_without_the_insecure_flag() {
    let impersonation = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = vec![
            "--region",
            "zrh",
            "--impersonation-enabled",
            "--client-id",
            "c",
            "--user-email",
            "u@example.com",
        ];
        v.extend_from_slice(extra);
        v
    };
    let secret = [("CLOUDSIGMA_CLIENT_SECRET", SECRET)];
    assert_usage_error(
        &impersonation(&["--oauth-url", "http://127.0.0.1:1/oauth"]),
        &secret,
        &["--oauth-url", "--allow-insecure-http", "https"],
    );
    assert_usage_error(
        &impersonation(&["--api-url", "http://127.0.0.1:1/{region}/api/2.0/"]),
        &secret,
        &["--api-url", "CLOUDSIGMA_ALLOW_INSECURE_HTTP"],
    );
    assert_usage_error(
        &impersonation(&[
            "--api-url",
            "http://127.0.0.1:1/{region}/api/2.0/",
            "--allow-insecure-http=false",
        ]),
        &secret,
        &["--api-url", "--allow-insecure-http"],
    );
    // Forms the URL parser turns into `http://` are plain http too.
    for url in [
        "http:127.0.0.1:1/oauth",
        "ht\ttp://127.0.0.1:1/oauth",
        "HTTP:/127.0.0.1:1/",
    ] {
        assert_usage_error(
            &impersonation(&["--oauth-url", url]),
            &secret,
            &["--oauth-url", "--allow-insecure-http"],
        );
    }
    // Legacy credentials are checked too: the password would cross in the clear.
    assert_usage_error(
        &[
            "--region",
            "zrh",
            "--username",
            "a@example.com",
            "--api-url",
            "HTTP://127.0.0.1:1/{region}/api/2.0/",
        ],
        &[("CLOUDSIGMA_PASSWORD", PASSWORD)],
        &["--api-url", "--allow-insecure-http"],
    );
}

#[test]
fn insecure_flag_lets_plain_http_through_with_a_warning() {
    for (args, env) in [
        (vec!["--allow-insecure-http"], vec![]),
        (vec![], vec![("CLOUDSIGMA_ALLOW_INSECURE_HTTP", "true")]),
    ] {
        let mut all = vec![
            "--region",
            "zrh",
            "--username",
            "a@example.com",
            "--api-url",
            "http://127.0.0.1:1/{region}/api/2.0/",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
        ];
        all.extend(args);
        let mut env = env;
        env.push(("CLOUDSIGMA_PASSWORD", PASSWORD));
        let (code, text) = run(&all, &env);
        assert!(
            text.contains("INSECURE") && text.contains("--api-url"),
            "the ccm must warn that --api-url is plain http: {text}"
        );
        assert!(
            !text.contains("is a plain http URL"),
            "the URL was refused despite the flag: {text}"
        );
        // It went on to the next step, which fails on the missing kubeconfig.
        assert_ne!(code, 0, "{text}");
        assert!(text.contains("kubeconfig"), "{text}");
        assert!(!text.contains(PASSWORD), "{text}");
    }
}

#[test]
fn kubeconfig_that_is_no_regular_file_is_refused_before_reading() {
    let base = [
        "--region",
        "zrh",
        "--username",
        "a@example.com",
        "--api-url",
        "https://127.0.0.1:1/{region}/api/2.0/",
    ];
    for (path, why) in [
        ("/dev/zero", "not a regular file"),
        ("/", "not a regular file"),
        ("/nonexistent/kubeconfig", "No such file"),
    ] {
        let mut args = base.to_vec();
        args.extend(["--kubeconfig", path]);
        let started = std::time::Instant::now();
        assert_usage_error(
            &args,
            &[("CLOUDSIGMA_PASSWORD", PASSWORD)],
            &["--kubeconfig", "CCM_KUBECONFIG", path, why],
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}

#[test]
fn empty_or_broken_log_level_is_refused_not_silent() {
    let args = ["--region", "zrh", "--username", "a@example.com"];
    for level in ["", "  ", "info,=="] {
        assert_usage_error(
            &args,
            &[("CLOUDSIGMA_PASSWORD", PASSWORD), ("CCM_LOG_LEVEL", level)],
            &["--log-level", "CCM_LOG_LEVEL", "info"],
        );
    }
}
