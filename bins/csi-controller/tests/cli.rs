//! Bad command lines and environments of the real `csi-controller` binary: exit code 2, a message that
//! names the flag, its environment variable and the fix, and never a secret value echoed back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_csi-controller");
const PASSWORD: &str = "cli-Pw-Known-7f3e91";
const URL_PASSWORD: &str = "url-Pw-Known-55c2d0";

/// Runs the binary with exactly `args` and `env` (nothing inherited); returns the exit code and
/// stdout + stderr. A binary that does not exit within 10 s (it started serving) fails the test.
fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            panic!("csi-controller {args:?} did not exit: it accepted the configuration");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A scratch directory: a socket path and a token-file path that are fine by themselves, so each case
/// fails only on the setting it is about.
struct Scratch {
    dir: TempDir,
}

impl Scratch {
    fn new() -> Self {
        Self {
            dir: TempDir::new().unwrap(),
        }
    }
    fn endpoint(&self) -> String {
        format!("unix://{}", self.dir.path().join("csi.sock").display())
    }
    fn token_file(&self) -> String {
        self.dir.path().join("access_token").display().to_string()
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn assert_usage_error(case: &str, args: &[&str], env: &[(&str, &str)], must_name: &[&str]) {
    let (code, text) = run(args, env);
    assert_eq!(code, 2, "{case}: exit code for {args:?} {env:?}:\n{text}");
    for name in must_name {
        assert!(
            text.contains(name),
            "{case}: the message must name {name:?}:\n{text}"
        );
    }
    for secret in [PASSWORD, URL_PASSWORD] {
        assert!(!text.contains(secret), "{case}: a secret was echoed:\n{text}");
    }
    assert!(
        text.lines().count() <= 12,
        "{case}: one clear message, not a dump:\n{text}"
    );
}

/// One bad configuration: name, arguments, environment, what the message must name.
type Case<'a> = (&'a str, Vec<String>, Vec<(&'a str, &'a str)>, Vec<&'a str>);

#[test]
fn csi_controller_cli_bad_settings_exit_2_naming_the_flag_its_env_var_and_the_fix() {
    let s = Scratch::new();
    let (endpoint, token_file) = (s.endpoint(), s.token_file());
    // The legacy credentials are present (and must never be echoed) in every case that is not about them.
    let creds = [
        ("CLOUDSIGMA_USERNAME", "owner@example.com"),
        ("CLOUDSIGMA_PASSWORD", PASSWORD),
    ];
    let base = |extra: &[&'static str]| -> Vec<String> {
        let mut v = vec![
            "--endpoint".to_owned(),
            endpoint.clone(),
            "--token-file".to_owned(),
            token_file.clone(),
        ];
        v.extend(extra.iter().map(|s| (*s).to_owned()));
        v
    };
    let cases: Vec<Case<'_>> = vec![
        (
            "tcp endpoint",
            vec![
                "--endpoint".into(),
                "tcp://127.0.0.1:10000".into(),
                "--region".into(),
                "zrh".into(),
            ],
            creds.to_vec(),
            vec!["--endpoint", "CSI_ENDPOINT", "unix:///path/to/csi.sock"],
        ),
        (
            "tcp endpoint from the environment",
            vec!["--region".into(), "zrh".into()],
            [creds.as_slice(), &[("CSI_ENDPOINT", "tcp://127.0.0.1:10000")]].concat(),
            vec!["--endpoint", "CSI_ENDPOINT", "unix:///path/to/csi.sock"],
        ),
        (
            "empty endpoint",
            vec![
                "--endpoint".into(),
                String::new(),
                "--region".into(),
                "zrh".into(),
            ],
            creds.to_vec(),
            vec!["--endpoint", "CSI_ENDPOINT", "unix:///path/to/csi.sock"],
        ),
        (
            "endpoint flag without a value",
            vec!["--region".into(), "zrh".into(), "--endpoint".into()],
            creds.to_vec(),
            vec!["--endpoint", "CSI_ENDPOINT", "a value is required"],
        ),
        (
            "relative socket path",
            vec![
                "--endpoint".into(),
                "unix://csi.sock".into(),
                "--region".into(),
                "zrh".into(),
            ],
            creds.to_vec(),
            vec!["--endpoint", "CSI_ENDPOINT", "absolute"],
        ),
        (
            "password without username",
            base(&["--region", "zrh"]),
            vec![("CLOUDSIGMA_PASSWORD", PASSWORD)],
            vec![
                "--username",
                "CLOUDSIGMA_USERNAME",
                "--password",
                "set the username",
            ],
        ),
        (
            "password flag without username",
            base(&["--region", "zrh", "--password", PASSWORD]),
            vec![],
            vec!["--username", "CLOUDSIGMA_USERNAME", "set the username"],
        ),
        (
            "username without password",
            base(&["--region", "zrh", "--username", "owner@example.com"]),
            vec![],
            vec!["--password", "CLOUDSIGMA_PASSWORD", "set the password"],
        ),
        (
            "empty username",
            base(&["--region", "zrh", "--username", " ", "--password", PASSWORD]),
            vec![],
            vec!["--username", "CLOUDSIGMA_USERNAME", "empty", "non-empty"],
        ),
        (
            "api url with another scheme",
            base(&["--region", "zrh", "--api-url", "ftp://files.example.com/"]),
            creds.to_vec(),
            vec![
                "--api-url",
                "CLOUDSIGMA_API_URL",
                "http or https",
                "https://{region}.cloudsigma.com/api/2.0/",
            ],
        ),
        (
            "api url that is no URL",
            base(&["--region", "zrh", "--api-url", "not a url"]),
            creds.to_vec(),
            vec!["--api-url", "CLOUDSIGMA_API_URL", "not a URL"],
        ),
        (
            "api url with credentials",
            base(&["--region", "zrh", "--api-url"])
                .into_iter()
                .chain([format!("https://owner:{URL_PASSWORD}@api.example.com/api/2.0/")])
                .collect(),
            creds.to_vec(),
            vec!["--api-url", "CLOUDSIGMA_API_URL", "must not contain credentials"],
        ),
        (
            "api url with credentials and a broken port",
            base(&["--region", "zrh", "--api-url"])
                .into_iter()
                .chain([format!("https://owner:{URL_PASSWORD}@:99999/")])
                .collect(),
            creds.to_vec(),
            vec!["--api-url", "CLOUDSIGMA_API_URL", "not a URL"],
        ),
        (
            "api url without a host from the environment",
            base(&["--region", "zrh"]),
            [creds.as_slice(), &[("CLOUDSIGMA_API_URL", "http://")]].concat(),
            vec!["--api-url", "CLOUDSIGMA_API_URL", "host"],
        ),
        (
            "direct api url without api url",
            base(&[
                "--region",
                "zrh",
                "--direct-api-url",
                "https://direct.example.com/api/2.0/",
            ]),
            creds.to_vec(),
            vec![
                "--direct-api-url",
                "CLOUDSIGMA_DIRECT_API_URL",
                "--api-url",
                "CLOUDSIGMA_API_URL",
            ],
        ),
        (
            "bad direct api url",
            base(&[
                "--region",
                "zrh",
                "--api-url",
                "http://127.0.0.1:1/api/2.0/",
                "--direct-api-url",
                "gopher://x/",
            ]),
            creds.to_vec(),
            vec!["--direct-api-url", "CLOUDSIGMA_DIRECT_API_URL", "http or https"],
        ),
        (
            "malformed region",
            base(&["--region", "zz!"]),
            creds.to_vec(),
            vec!["--region", "CLOUDSIGMA_REGION", "zrh"],
        ),
        (
            "unknown region without an api url",
            base(&["--region", "xyz"]),
            creds.to_vec(),
            vec!["--region", "CLOUDSIGMA_REGION", "--api-url", "known: "],
        ),
        (
            "no region at all",
            base(&[]),
            creds.to_vec(),
            vec!["--region", "CLOUDSIGMA_REGION", "region file"],
        ),
        (
            "bad log format",
            base(&["--region", "zrh", "--log-format", "xml"]),
            creds.to_vec(),
            vec!["--log-format", "LOG_FORMAT", "text", "json"],
        ),
        (
            "bad log format from the environment",
            base(&["--region", "zrh"]),
            [creds.as_slice(), &[("LOG_FORMAT", "yaml")]].concat(),
            vec!["--log-format", "LOG_FORMAT", "text", "json"],
        ),
        (
            "zero default size",
            base(&["--region", "zrh", "--default-volume-size-gib", "0"]),
            creds.to_vec(),
            vec!["--default-volume-size-gib", "CSI_DEFAULT_VOLUME_SIZE_GIB", "1.."],
        ),
        (
            "default size above the maximum",
            base(&[
                "--region",
                "zrh",
                "--default-volume-size-gib",
                "20",
                "--max-volume-size-gib",
                "10",
            ]),
            creds.to_vec(),
            vec![
                "--default-volume-size-gib",
                "CSI_DEFAULT_VOLUME_SIZE_GIB",
                "--max-volume-size-gib",
                "must not exceed",
            ],
        ),
        (
            "maximum size beyond bytes",
            base(&["--region", "zrh", "--max-volume-size-gib", "99999999999999"]),
            creds.to_vec(),
            vec!["--max-volume-size-gib", "CSI_MAX_VOLUME_SIZE_GIB", "smaller"],
        ),
        (
            "token file path naming no file",
            vec![
                "--endpoint".into(),
                endpoint.clone(),
                "--region".into(),
                "zrh".into(),
                "--token-file".into(),
                "/".into(),
            ],
            creds.to_vec(),
            vec!["--token-file", "CLOUDSIGMA_TOKEN_FILE", "does not name a file"],
        ),
        (
            "plain http api url without the insecure flag",
            base(&[
                "--region",
                "zrh",
                "--api-url",
                "http://127.0.0.1:1/{region}/api/2.0/",
            ]),
            creds.to_vec(),
            vec!["--api-url", "https URL", "--allow-insecure-http"],
        ),
        (
            "plain http api url in a form the URL parser completes",
            base(&[
                "--region",
                "zrh",
                "--api-url",
                "http:127.0.0.1:1/{region}/api/2.0/",
            ]),
            creds.to_vec(),
            vec!["--api-url", "--allow-insecure-http"],
        ),
        (
            "plain http direct api url with the insecure flag switched off",
            base(&[
                "--region",
                "zrh",
                "--api-url",
                "https://api.example.com/{region}/api/2.0/",
                "--direct-api-url",
                "http://127.0.0.1:1/{region}/direct/api/2.0/",
            ]),
            [creds.as_slice(), &[("CLOUDSIGMA_ALLOW_INSECURE_HTTP", "false")]].concat(),
            vec![
                "--direct-api-url",
                "CLOUDSIGMA_DIRECT_API_URL",
                "CLOUDSIGMA_ALLOW_INSECURE_HTTP",
            ],
        ),
        (
            "unknown flag",
            base(&["--region", "zrh", "--tls-insecure"]),
            creds.to_vec(),
            vec!["--tls-insecure", "unexpected argument"],
        ),
    ];
    for (case, args, env, must_name) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_usage_error(case, &args, env, must_name);
    }
    // Nothing was created by any of them.
    let left: Vec<_> = std::fs::read_dir(s.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn csi_controller_cli_never_echoes_a_password_given_on_the_command_line() {
    let s = Scratch::new();
    // A misspelt flag next to the password, the password given twice, and a password in `--flag=value`
    // form with another error: clap's messages would quote what they could not use.
    let cases: Vec<Vec<String>> = vec![
        vec![
            "--region".into(),
            "zrh".into(),
            "--pasword".into(),
            PASSWORD.into(),
        ],
        vec![
            "--region".into(),
            "zrh".into(),
            format!("--password={PASSWORD}"),
            format!("--password={PASSWORD}"),
        ],
        vec![
            "--log-format".into(),
            "xml".into(),
            format!("--password={PASSWORD}"),
            "--username".into(),
            "owner@example.com".into(),
        ],
        vec![
            "--region".into(),
            "zrh".into(),
            "--password".into(),
            PASSWORD.into(),
            "surplus".into(),
        ],
    ];
    for args in cases {
        let mut all = vec![
            "--endpoint".to_owned(),
            s.endpoint(),
            "--token-file".to_owned(),
            s.token_file(),
        ];
        all.extend(args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let (code, text) = run(&all, &[("CLOUDSIGMA_PASSWORD", PASSWORD)]);
        assert_eq!(code, 2, "{all:?}:\n{text}");
        assert!(!text.contains(PASSWORD), "{all:?} echoed the password:\n{text}");
        assert!(text.contains("error:"), "{text}");
    }
}
