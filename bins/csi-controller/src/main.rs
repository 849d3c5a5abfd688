//! `csi-controller`: the CloudSigma CSI controller plugin.
//!
//! Wires `csi-tokenfile` (credentials from the mounted token Secret, with optional legacy fallback) and
//! `cs-api` into the CSI Identity and Controller services of `csi-driver`, served on a Unix socket until
//! SIGTERM or SIGINT. Flags are documented in `docs/csi.md`.

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::Context;
use clap::{CommandFactory, Parser, ValueEnum};
use cs_api::{Client, ClientOptions, Endpoints};
use cs_auth::{CredentialUrl, SharedProvider, UsernamePasswordProvider, check_plain_http};
use csi_driver::{
    ControllerOptions, ControllerService, IdentityService, endpoint,
    sizes::{GIB, SizeLimits},
};
use csi_tokenfile::{DEFAULT_TOKEN_FILE, RegionSource, TokenFileConfig, TokenFileProvider, check_region};
use secrecy::SecretString;
use tracing::{info, warn};

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Command line of the CloudSigma CSI controller plugin. Every flag can also be set through the
/// environment variable named in its help.
#[derive(Debug, Parser)]
#[command(
    name = "csi-controller",
    version,
    about = "CloudSigma CSI controller plugin (Identity + Controller services)"
)]
struct Args {
    /// The CSI endpoint: a Unix socket, `unix:///path/to/csi.sock`.
    #[arg(long, env = "CSI_ENDPOINT", default_value = "unix:///csi/csi.sock")]
    endpoint: String,

    /// The impersonated-token file from the mounted `cloudsigma-token` Secret; `region` and `user_email`
    /// files are read from the same directory.
    #[arg(long, env = "CLOUDSIGMA_TOKEN_FILE", default_value = DEFAULT_TOKEN_FILE)]
    token_file: PathBuf,

    /// The CloudSigma region (location code, e.g. `zrh`); overrides the Secret's `region` file.
    #[arg(long, env = "CLOUDSIGMA_REGION")]
    region: Option<String>,

    /// Legacy fallback: the account email, used (with --password) whenever the token file has no
    /// usable token.
    #[arg(long, env = "CLOUDSIGMA_USERNAME")]
    username: Option<String>,

    /// Legacy fallback: the account password (prefer the environment variable over the flag).
    #[arg(long, env = "CLOUDSIGMA_PASSWORD", hide_env_values = true)]
    password: Option<SecretString>,

    /// Regular API base URL; may contain `{region}` (e.g. `http://127.0.0.1:8080/{region}/api/2.0/`).
    /// Default: the public host of the region.
    #[arg(long, env = "CLOUDSIGMA_API_URL")]
    api_url: Option<String>,

    /// Direct API base URL for impersonated tokens; may contain `{region}`. Default: the `direct.` host of
    /// the region, or --api-url when only that is given.
    #[arg(long, env = "CLOUDSIGMA_DIRECT_API_URL")]
    direct_api_url: Option<String>,

    /// Accept plain-http API URLs, for a local emulator only: tokens and passwords then travel
    /// unencrypted, and the plugin says so in a warning at start. Without it such URLs are refused.
    #[arg(long, env = "CLOUDSIGMA_ALLOW_INSECURE_HTTP", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    allow_insecure_http: bool,

    /// Size of a volume created without a capacity range, in GiB.
    #[arg(long, env = "CSI_DEFAULT_VOLUME_SIZE_GIB", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    default_volume_size_gib: u64,

    /// Largest volume the driver creates or expands to, in GiB.
    #[arg(long, env = "CSI_MAX_VOLUME_SIZE_GIB", default_value_t = 10240, value_parser = clap::value_parser!(u64).range(1..))]
    max_volume_size_gib: u64,

    /// Log format; the level comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        // Without signal handlers the process still stops on the default signal action.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received; finishing running calls"),
        _ = int.recv() => info!("SIGINT received; finishing running calls"),
    }
}

/// A bad command line or environment (exit code 2). The message names the flag, its environment variable
/// and the fix, and never a secret value.
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

fn usage(message: impl Into<String>) -> anyhow::Error {
    Usage(message.into()).into()
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) => return clap_exit(&error),
    };
    init_logging(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<Usage>() {
            Some(bad) => {
                eprintln!("error: {bad}");
                ExitCode::from(2)
            }
            None => {
                tracing::error!(error = format!("{e:#}"), "csi-controller stopped");
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Prints a clap error (or the help/version text) with any password value scrubbed, adds which
/// environment variable feeds the offending flag, and returns clap's exit code (2 for errors).
fn clap_exit(error: &clap::Error) -> ExitCode {
    let mut text = error.render().to_string();
    for secret in password_values() {
        text = text.replace(&secret, "[REDACTED]");
    }
    let code = error.exit_code();
    if error.use_stderr() {
        eprint!("{text}");
        if let Some(note) = env_note(error) {
            eprintln!("{note}");
        }
    } else {
        print!("{text}");
    }
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}

/// Every password value present on the command line or in the environment (never to be echoed).
fn password_values() -> Vec<String> {
    let mut values: Vec<String> = std::env::var("CLOUDSIGMA_PASSWORD").into_iter().collect();
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    for (i, arg) in args.iter().enumerate() {
        if let Some(value) = arg.strip_prefix("--password=") {
            values.push(value.to_owned());
        } else if arg == "--password"
            && let Some(value) = args.get(i + 1)
        {
            values.push(value.clone());
        }
    }
    values.retain(|v| !v.is_empty());
    values
}

/// "note: --flag can also be set through ENV …" for the flags a clap error names.
fn env_note(error: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let named: Vec<&str> = match error.get(ContextKind::InvalidArg)? {
        ContextValue::String(one) => vec![one.as_str()],
        ContextValue::Strings(many) => many.iter().map(String::as_str).collect(),
        _ => return None,
    };
    let command = Args::command();
    let notes: Vec<String> = named
        .iter()
        .filter_map(|name| {
            let long = name.split_whitespace().next()?.strip_prefix("--")?;
            let long = long.split('=').next()?;
            let arg = command.get_arguments().find(|a| a.get_long() == Some(long))?;
            let env = arg.get_env()?.to_str()?;
            Some(format!(
                "--{long} can also be set through the environment variable {env}; check both"
            ))
        })
        .collect();
    (!notes.is_empty()).then(|| format!("note: {}", notes.join("; ")))
}

/// Everything built from the flags before the socket is opened.
struct Setup {
    socket: PathBuf,
    identity: IdentityService,
    controller: ControllerService,
}

/// Checks the flags and builds the provider, client and services. Errors that the user must fix in the
/// flags or environment are [`Usage`] errors.
fn configure(args: Args) -> anyhow::Result<Setup> {
    let socket = endpoint::socket_path("--endpoint (CSI_ENDPOINT)", &args.endpoint)
        .map_err(|e| usage(e.to_string()))?;
    let legacy = match (args.username, args.password) {
        (Some(username), Some(password)) => {
            Some(UsernamePasswordProvider::new(username, password).map_err(|e| {
                usage(format!(
                    "--username/--password (CLOUDSIGMA_USERNAME/CLOUDSIGMA_PASSWORD): {e}; set both to \
                     non-empty values, or neither to rely on the token file alone"
                ))
            })?)
        }
        (None, None) => None,
        (Some(_), None) => {
            return Err(usage(
                "--username (CLOUDSIGMA_USERNAME) is set but --password (CLOUDSIGMA_PASSWORD) is not: the \
                 legacy fallback needs both; set the password too, or unset the username",
            ));
        }
        (None, Some(_)) => {
            return Err(usage(
                "--password (CLOUDSIGMA_PASSWORD) is set but --username (CLOUDSIGMA_USERNAME) is not: the \
                 legacy fallback needs both; set the username (the account email) too, or unset the password",
            ));
        }
    };
    if args.direct_api_url.is_some() && args.api_url.is_none() {
        return Err(usage(
            "--direct-api-url (CLOUDSIGMA_DIRECT_API_URL) needs --api-url (CLOUDSIGMA_API_URL): set the \
             regular API URL too, or drop --direct-api-url to use the region's public hosts",
        ));
    }
    if let Some(region) = &args.region {
        check_region("--region (CLOUDSIGMA_REGION)", region).map_err(|e| {
            usage(format!(
                "{e}; use a CloudSigma location code such as zrh (letters, digits and -)"
            ))
        })?;
    }
    let has_legacy = legacy.is_some();
    let provider = TokenFileProvider::new(TokenFileConfig {
        token_file: args.token_file.clone(),
        region_override: args.region,
        legacy,
    })
    .map_err(|e| match e {
        csi_tokenfile::Error::NoRegion { .. } => usage(format!(
            "{e}; set --region (CLOUDSIGMA_REGION) or mount the Secret with its region file"
        )),
        other => usage(format!(
            "--token-file (CLOUDSIGMA_TOKEN_FILE): {other}; give the path of the token file"
        )),
    })?;
    let region = provider.region().to_owned();
    let endpoints = match &args.api_url {
        Some(api_url) => {
            Endpoints::from_templates(api_url, None, &region).map_err(|e| {
                usage(format!(
                    "--api-url (CLOUDSIGMA_API_URL): {e}; give an http(s) base URL such as \
                     https://{{region}}.cloudsigma.com/api/2.0/"
                ))
            })?;
            Endpoints::from_templates(api_url, args.direct_api_url.as_deref(), &region).map_err(|e| {
                usage(format!(
                    "--direct-api-url (CLOUDSIGMA_DIRECT_API_URL): {e}; give an http(s) base URL such as \
                     https://direct.{{region}}.cloudsigma.com/api/2.0/"
                ))
            })?
        }
        None => Endpoints::for_location(&region).map_err(|e| {
            usage(format!(
                "--region (CLOUDSIGMA_REGION) or the Secret's region file: {e} (--api-url / CLOUDSIGMA_API_URL)"
            ))
        })?,
    };
    check_transport(&args.api_url, &args.direct_api_url, args.allow_insecure_http)?;
    let gib = |flag: &str, value: u64| {
        value.checked_mul(GIB).ok_or_else(|| {
            usage(format!(
                "{flag}: {value} GiB is more than any volume can be; give a smaller size in GiB"
            ))
        })
    };
    let sizes = SizeLimits {
        default_bytes: gib(
            "--default-volume-size-gib (CSI_DEFAULT_VOLUME_SIZE_GIB)",
            args.default_volume_size_gib,
        )?,
        max_bytes: gib(
            "--max-volume-size-gib (CSI_MAX_VOLUME_SIZE_GIB)",
            args.max_volume_size_gib,
        )?,
        ..SizeLimits::default()
    };
    let (api, direct_api) = (endpoints.regular().clone(), endpoints.direct().clone());
    let region_from = match provider.region_source() {
        RegionSource::Override => "--region",
        RegionSource::File => "region file",
    };
    let provider: SharedProvider = Arc::new(provider);
    let client = Client::new(endpoints, Arc::clone(&provider), ClientOptions::default())
        .context("cannot build the CloudSigma client")?;
    let options = ControllerOptions {
        sizes,
        ..ControllerOptions::default()
    };
    let controller = ControllerService::new(client, region.clone(), options).map_err(|e| {
        usage(format!(
            "--default-volume-size-gib (CSI_DEFAULT_VOLUME_SIZE_GIB) / --max-volume-size-gib \
             (CSI_MAX_VOLUME_SIZE_GIB): {e}; the default size must not exceed the maximum"
        ))
    })?;
    let identity = IdentityService::new(Some(provider), &region);
    info!(
        region = %region,
        region_from,
        token_file = %args.token_file.display(),
        legacy_fallback = has_legacy,
        api = %api,
        direct_api = %direct_api,
        "starting the CloudSigma CSI controller"
    );
    Ok(Setup {
        socket,
        identity,
        controller,
    })
}

/// Refuses plain-http API URLs unless `--allow-insecure-http` is set, and warns at start when it is and
/// they are used.
fn check_transport(
    api_url: &Option<String>,
    direct_api_url: &Option<String>,
    allow_insecure_http: bool,
) -> anyhow::Result<()> {
    let mut urls = Vec::new();
    if let Some(url) = api_url {
        urls.push(CredentialUrl {
            setting: "--api-url (CLOUDSIGMA_API_URL)",
            url,
        });
    }
    if let Some(url) = direct_api_url {
        urls.push(CredentialUrl {
            setting: "--direct-api-url (CLOUDSIGMA_DIRECT_API_URL)",
            url,
        });
    }
    let plain = check_plain_http(
        &urls,
        allow_insecure_http,
        "--allow-insecure-http (CLOUDSIGMA_ALLOW_INSECURE_HTTP)",
    )
    .map_err(|e| usage(e.to_string()))?;
    if !plain.is_empty() {
        warn!(
            settings = %plain.join(", "),
            "INSECURE: --allow-insecure-http is set and these CloudSigma API URLs are plain http; tokens and \
             passwords cross the network unencrypted. Use this only with a local emulator"
        );
    }
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<()> {
    let setup = configure(args)?;
    let listener = endpoint::bind(&setup.socket)?;
    endpoint::serve(
        listener,
        &setup.socket,
        setup.identity,
        setup.controller,
        shutdown_signal(),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_valid() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults_match_the_documentation() {
        let args = Args::try_parse_from(["csi-controller"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(args.token_file, PathBuf::from("/etc/cloudsigma/access_token"));
        assert_eq!(
            (args.default_volume_size_gib, args.max_volume_size_gib),
            (10, 10240)
        );
        assert_eq!(args.log_format, LogFormat::Text);
    }

    #[test]
    fn username_and_password_come_together() {
        let args = Args::try_parse_from(["csi-controller", "--region", "zrh", "--username", "a@b.c"])
            .unwrap_or_else(|e| panic!("{e}"));
        let e = configure(args).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            e.contains("--password") && e.contains("CLOUDSIGMA_PASSWORD"),
            "{e}"
        );
    }
}
