//! `ccm-bench`: runs the node-controller benchmark for each N and prints (and optionally writes) the
//! tables. Normally started by `make bench` (hack/bench.sh), which builds the optimized ccm and runs a
//! control plane of its own.

use std::{path::PathBuf, process::ExitCode, time::Duration, time::Instant};

use anyhow::Context as _;
use ccm_bench::{
    report::{self, Machine, RunInfo},
    scenario::{self, Settings},
};
use clap::Parser;

/// Benchmark of the ccm's node controllers against the genuine kube-apiserver and the emulator.
#[derive(Debug, Parser)]
#[command(name = "ccm-bench", version)]
struct Args {
    /// The tenant cluster (a control plane used only by the benchmark: every Node on it is the
    /// benchmark's).
    #[arg(long, env = "BENCH_KUBECONFIG")]
    kubeconfig: PathBuf,

    /// The ccm binary to measure (an optimized build).
    #[arg(long, env = "BENCH_CCM_BIN")]
    ccm_bin: PathBuf,

    /// Numbers of servers and Nodes, one run each.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    nodes: Vec<usize>,

    /// The ccm's --node-status-update-frequency during the run (longer than its 10 s server-cache TTL).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    period: Duration,

    /// --concurrent-node-syncs of the ccm and concurrency of the floor client and the registration.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,

    /// How many times the ccm initializes the Nodes from scratch (wall time: the median; each run is
    /// followed by a floor run).
    #[arg(long, default_value_t = 3)]
    init_runs: usize,

    /// Share of servers whose address changes in the last period, percent.
    #[arg(long, default_value_t = 1.0)]
    change_percent: f64,

    /// Longest wait for all Nodes to be initialized.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    init_timeout: Duration,

    /// Directory for the ccm logs.
    #[arg(long, default_value = "target/bench")]
    log_dir: PathBuf,

    /// Extra environment for the ccm, KEY=VALUE (repeatable; diagnostics such as MALLOC_ARENA_MAX=2,
    /// recorded in the report).
    #[arg(long = "ccm-env", value_parser = parse_env)]
    ccm_env: Vec<(String, String)>,

    /// A file to hold the ccm's pid while it runs (for the wrapper script's clean-up).
    #[arg(long)]
    pid_file: Option<PathBuf>,

    /// Markdown file whose generated section (between the `make bench` markers) is replaced.
    #[arg(long)]
    update_doc: Option<PathBuf>,

    /// The command recorded in the report.
    #[arg(long, default_value = "make bench")]
    command: String,

    /// Seconds the build took (recorded in the report).
    #[arg(long)]
    build_seconds: Option<f64>,

    /// The cargo profile of --ccm-bin (recorded in the report).
    #[arg(long, default_value = "bench-release")]
    profile: String,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, unit) = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((t, "s"), |i| (&t[..i], &t[i..]));
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (examples: 20s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s or m)")),
    };
    if secs <= 0.0 || !secs.is_finite() {
        return Err(format!("{s:?} must be greater than zero"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains(char::is_whitespace) => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ccm-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ccm-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.nodes.is_empty() || args.nodes.contains(&0) {
        anyhow::bail!("--nodes: give one or more positive numbers, e.g. 100,1000");
    }
    if args.init_runs == 0 {
        anyhow::bail!("--init-runs must be at least 1");
    }
    if args.concurrency == 0 {
        anyhow::bail!("--concurrency must be at least 1");
    }
    if !(0.0..=100.0).contains(&args.change_percent) {
        anyhow::bail!("--change-percent must be between 0 and 100");
    }
    if !args.ccm_bin.is_file() {
        anyhow::bail!(
            "--ccm-bin {}: no such file (build it: cargo build --profile {} -p ccm)",
            args.ccm_bin.display(),
            args.profile
        );
    }
    std::fs::create_dir_all(&args.log_dir)
        .with_context(|| format!("--log-dir {}", args.log_dir.display()))?;
    let machine = Machine::detect();
    let client = scenario::kube_client(&args.kubeconfig).await?;
    client.apiserver_version().await.with_context(|| {
        format!(
            "--kubeconfig {}: the apiserver does not answer",
            args.kubeconfig.display()
        )
    })?;

    let started = Instant::now();
    let mut figures = Vec::new();
    for &n in &args.nodes {
        let settings = Settings {
            nodes: n,
            period: args.period,
            concurrency: args.concurrency,
            page_size: 100,
            change_percent: args.change_percent,
            ccm_bin: args.ccm_bin.clone(),
            kubeconfig: args.kubeconfig.clone(),
            log_dir: args.log_dir.clone(),
            init_timeout: args.init_timeout,
            pid_file: args.pid_file.clone(),
            ccm_env: args.ccm_env.clone(),
            init_runs: args.init_runs,
        };
        let f = scenario::run(&settings, &client)
            .await
            .with_context(|| format!("benchmark with N = {n}"))?;
        println!("{}", report::render_figures(&f));
        figures.push(f);
    }
    let info = RunInfo {
        command: args.command.clone(),
        date: jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC").to_string(),
        machine,
        build_seconds: args.build_seconds,
        run_seconds: started.elapsed().as_secs_f64(),
        profile: args.profile.clone(),
    };
    let text = report::render(&info, &figures);
    println!(
        "\n==== summary ====\n\n{}",
        text.split("\n### ").next().unwrap_or_default()
    );
    let latest = args.log_dir.join("latest.md");
    std::fs::write(&latest, &text).with_context(|| format!("write {}", latest.display()))?;
    if let Some(doc) = &args.update_doc {
        let old = std::fs::read_to_string(doc).with_context(|| format!("--update-doc {}", doc.display()))?;
        let new = report::splice(&old, &text).with_context(|| {
            format!(
                "--update-doc {}: the markers {} and {} are missing",
                doc.display(),
                report::BEGIN_MARKER,
                report::END_MARKER
            )
        })?;
        std::fs::write(doc, new).with_context(|| format!("write {}", doc.display()))?;
        eprintln!("ccm-bench: wrote the figures into {}", doc.display());
    }
    eprintln!("ccm-bench: full tables also in {}", latest.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        assert!(parse_duration("0s").unwrap_err().contains("greater than zero"));
        assert!(parse_duration("5h").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("abc").unwrap_err().contains("not a duration"));
    }

    #[test]
    fn environment_pairs() {
        assert_eq!(
            parse_env("MALLOC_ARENA_MAX=2"),
            Ok(("MALLOC_ARENA_MAX".into(), "2".into()))
        );
        assert_eq!(parse_env("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(parse_env("novalue").is_err());
        assert!(parse_env("=x").is_err());
    }
}
