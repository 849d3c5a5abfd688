//! One benchmark run for one N: fleet and Nodes, the write floor, the ccm through initialization, two
//! unchanged refresh periods and one period after 1% of the addresses changed.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::Node;
use kube::{Api, ResourceExt};

use crate::{
    apiserver::{self, RequestCounts},
    ccm::{Ccm, Launch, LogFollower, Timeline},
    error::{Error, Result},
    fleet::Fleet,
    floor::{self, Floor},
    nodes,
    procstat::Usage,
    prom::Samples,
    stats,
};

/// The apiserver resources whose requests are counted.
pub const COUNTED_RESOURCES: [&str; 2] = ["nodes", "events"];
/// The ccm's histogram of taint-seen to taint-removed seconds.
pub const INIT_HISTOGRAM: &str = "cloudsigma_ccm_node_initialization_seconds";

/// What to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Servers and Nodes.
    pub nodes: usize,
    /// The ccm's `--node-status-update-frequency` (shortened from the 5 min default).
    pub period: Duration,
    /// The ccm's `--concurrent-node-syncs`, also the floor client's concurrency.
    pub concurrency: usize,
    /// The ccm's CloudSigma page size (cs-api default: 100).
    pub page_size: u64,
    /// Share of servers whose address changes in the last period, percent.
    pub change_percent: f64,
    /// The ccm binary.
    pub ccm_bin: PathBuf,
    /// The tenant cluster.
    pub kubeconfig: PathBuf,
    /// Where ccm logs go.
    pub log_dir: PathBuf,
    /// Longest wait for every Node to be initialized.
    pub init_timeout: Duration,
    /// Where the ccm's pid is kept while it runs.
    pub pid_file: Option<PathBuf>,
    /// Extra environment of the ccm process (diagnostics only; recorded in the report).
    pub ccm_env: Vec<(String, String)>,
    /// How many times the ccm initializes the N Nodes from scratch (the first run continues with the
    /// refresh periods); wall times are the median, each run followed by a floor run.
    pub init_runs: usize,
}

/// The counts of one phase.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Phase {
    /// `init`, `unchanged period 1`, ...
    pub name: String,
    /// CloudSigma requests by emulator route.
    pub cloud: BTreeMap<String, u64>,
    /// Apiserver requests for [`COUNTED_RESOURCES`].
    pub kube: RequestCounts,
    /// The ccm's own write counters (`status`, `update`, `delete`).
    pub ccm_writes: BTreeMap<String, u64>,
    /// Writes the ccm must make in this phase.
    pub expected_writes: u64,
    /// The ccm's CPU seconds in the phase.
    pub cpu_seconds: f64,
    /// Length of the phase.
    pub duration: Duration,
}

/// Everything measured for one N.
#[derive(Debug, Clone)]
pub struct Figures {
    /// The settings of the run.
    pub settings: Settings,
    /// Time to register the 2N kubelet-style Nodes (setup, not measured against anything).
    pub registration: Duration,
    /// The write floor: the median of [`Figures::floor_runs`].
    pub floor: Floor,
    /// The floor client's runs: one before the first ccm run and one after each ccm run.
    pub floor_runs: Vec<Floor>,
    /// The median of [`Figures::watched_floor_runs`].
    pub watched_floor: Duration,
    /// The floor client's runs with a Node watch and store open (right after each plain run).
    pub watched_floor_runs: Vec<Floor>,
    /// Spawn to all Nodes initialized of every ccm run (the first is the run with the refresh periods).
    pub ccm_walls: Vec<Duration>,
    /// Apiserver requests of the floor client (its run before the ccm).
    pub floor_kube: RequestCounts,
    /// Spawn of the ccm to the last Node initialized: the median of [`Figures::ccm_walls`].
    pub ccm_wall: Duration,
    /// The ccm's log milestones.
    pub timeline: Timeline,
    /// Phases: init, two unchanged periods, the changed period.
    pub phases: Vec<Phase>,
    /// CloudSigma requests by route over the whole ccm run.
    pub cloud_total: BTreeMap<String, u64>,
    /// Servers whose address changed.
    pub changed: usize,
    /// p50 and p99 of the ccm's histogram (bucket-interpolated), seconds.
    pub latency_histogram: (Option<f64>, Option<f64>),
    /// Resource use when every Node was initialized.
    pub usage_init: Usage,
    /// Resource use at the end (before the ccm was stopped).
    pub usage_end: Usage,
    /// Problems found in the final state of the Nodes (empty when every Node is right).
    pub problems: Vec<String>,
    /// Use when the node controllers started (before the Node watch list).
    pub before_watch: Option<Usage>,
    /// Use when the first Node was initialized (the watch list is in the store).
    pub after_watch: Option<Usage>,
    /// A second ccm started on the initialized Nodes.
    pub restart: Restart,
}

/// A ccm started again on Nodes that are all initialized: what it costs and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Restart {
    /// Requests from its start until its memory settled.
    pub phase: Phase,
    /// Its resource use then.
    pub usage: Usage,
}

struct Snapshot {
    at: Instant,
    cloud: BTreeMap<String, u64>,
    kube: RequestCounts,
    ccm: Samples,
    usage: Usage,
}

fn diff_routes(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, &v)| {
            let d = v.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

fn ccm_writes(after: &Samples, before: &Samples) -> BTreeMap<String, u64> {
    ["status", "update", "delete"]
        .iter()
        .map(|&kind| {
            let m = [("kind", kind)];
            let d = after.sum("cloudsigma_ccm_node_writes_total", &m)
                - before.sum("cloudsigma_ccm_node_writes_total", &m);
            (kind.to_owned(), d.max(0.0) as u64)
        })
        .collect()
}

fn phase(name: &str, before: &Snapshot, after: &Snapshot, expected_writes: u64) -> Phase {
    Phase {
        name: name.to_owned(),
        cloud: diff_routes(&after.cloud, &before.cloud),
        kube: after.kube.since(&before.kube),
        ccm_writes: ccm_writes(&after.ccm, &before.ccm),
        expected_writes,
        cpu_seconds: after.usage.cpu_seconds - before.usage.cpu_seconds,
        duration: after.at - before.at,
    }
}

/// Registers the N Nodes afresh and lets a new ccm initialize them; returns the time from its spawn
/// to the last Node initialized.
async fn init_again(
    api: &Api<Node>,
    fleet: &Fleet,
    settings: &Settings,
    launch: &Launch,
    run: usize,
) -> Result<Duration> {
    let n = settings.nodes;
    nodes::delete_all(api, None, Duration::from_secs(120)).await?;
    nodes::create_all(
        api,
        &nodes::registrations(fleet.servers(), "ccm", ""),
        settings.concurrency,
    )
    .await?;
    log(format!("N={n}: ccm run {run}: initializing {n} fresh Nodes"));
    let launch = Launch {
        log: settings.log_dir.join(format!("ccm-n{n}-run{run}.log")),
        ..launch.clone()
    };
    let mut ccm = Ccm::spawn(&launch, fleet.client_secret())?;
    let init = wait_initialized(&mut ccm, n, settings.init_timeout).await?;
    ccm.stop()?;
    let wall = ccm
        .timeline()?
        .all_init
        .map_or(init.observed, Duration::from_secs_f64);
    nodes::delete_all(api, None, Duration::from_secs(120)).await?;
    Ok(wall)
}

/// Registers N fresh kubelet-style Nodes for the floor client, runs it (timed, with the apiserver's
/// request counts around it) and deletes the Nodes again; then the same with a Node watch open.
/// Returns the plain run, the watched run and the plain run's request counts.
async fn measure_floor(
    api: &Api<Node>,
    client: &kube::Client,
    servers: &[crate::fleet::Server],
    settings: &Settings,
    when: &str,
) -> Result<(Floor, Floor, RequestCounts)> {
    let n = servers.len();
    nodes::create_all(
        api,
        &nodes::registrations(servers, "floor", "floor-"),
        settings.concurrency,
    )
    .await?;
    let targets = floor_targets(api, servers).await?;
    log(format!(
        "N={n}: floor client {when}: {} writes, {} in flight; then again with a Node watch open",
        2 * n,
        settings.concurrency
    ));
    let before = apiserver::scrape(client, &COUNTED_RESOURCES).await?;
    let floor = floor::run(api, targets, settings.concurrency).await?;
    let counts = apiserver::scrape(client, &COUNTED_RESOURCES)
        .await?
        .since(&before);
    nodes::delete_all(api, Some("floor"), Duration::from_secs(120)).await?;

    // The same with a Node watch and store open, as every controller has.
    nodes::create_all(
        api,
        &nodes::registrations(servers, "floor", "floor-"),
        settings.concurrency,
    )
    .await?;
    let targets = floor_targets(api, servers).await?;
    let selector = format!("{}=floor", nodes::ROLE_LABEL);
    let watched = floor::run_watched(api, targets, settings.concurrency, &selector).await?;
    nodes::delete_all(api, Some("floor"), Duration::from_secs(120)).await?;
    Ok((floor, watched, counts))
}

/// The floor client's targets: every floor Node with the writes the ccm would make to it.
async fn floor_targets(api: &Api<Node>, servers: &[crate::fleet::Server]) -> Result<Vec<floor::Target>> {
    let n = servers.len();
    let by_name: BTreeMap<String, &crate::fleet::Server> =
        servers.iter().map(|s| (format!("floor-{}", s.name), s)).collect();
    let labels: BTreeMap<String, String> = nodes::expected_labels()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let targets = nodes::list(api, Some("floor"))
        .await?
        .into_iter()
        .filter_map(|node| {
            let s = by_name.get(&node.name_any())?;
            Some(floor::Target {
                addresses: nodes::expected_addresses(&node.name_any(), s.ip),
                labels: labels.clone(),
                provider_id: format!("cloudsigma://{}", s.uuid),
                node,
            })
        })
        .collect::<Vec<_>>();
    if targets.len() != n {
        return Err(Error::Check(format!(
            "{} floor Nodes listed, {n} registered",
            targets.len()
        )));
    }
    Ok(targets)
}

/// A Kubernetes client for `path`.
pub async fn kube_client(path: &std::path::Path) -> Result<kube::Client> {
    let err = |m: String| Error::Kubeconfig {
        path: path.to_owned(),
        message: m,
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| err(e.to_string()))?;
    kube::Client::try_from(config).map_err(|e| err(e.to_string()))
}

fn log(msg: impl AsRef<str>) {
    eprintln!("ccm-bench: {}", msg.as_ref());
}

/// Runs the scenario for `settings.nodes`.
pub async fn run(settings: &Settings, client: &kube::Client) -> Result<Figures> {
    let n = settings.nodes;
    let api: Api<Node> = Api::all(client.clone());
    let cleanup_timeout = Duration::from_secs(120);
    nodes::delete_all(&api, None, cleanup_timeout).await?;

    log(format!("N={n}: seeding {n} servers in the emulator"));
    let mut fleet = Fleet::start(n).await?;
    let servers = fleet.servers().to_vec();

    log(format!("N={n}: registering {n} Nodes for the ccm"));
    let started = Instant::now();
    let ccm_regs = nodes::registrations(&servers, "ccm", "");
    nodes::create_all(&api, &ccm_regs, settings.concurrency).await?;
    let registration = started.elapsed();

    // The floor: the same 2N writes on N Nodes of its own, before the ccm runs (and again after it).
    let (floor_before, watched_before, floor_kube) =
        measure_floor(&api, client, &servers, settings, "before the ccm").await?;

    // The ccm.
    fleet.emulator().reset_log();
    let mut args = fleet.ccm_args();
    args.extend([
        "--kubeconfig".to_owned(),
        settings.kubeconfig.display().to_string(),
        "--cluster-name".to_owned(),
        "bench".to_owned(),
        "--node-status-update-frequency".to_owned(),
        format!("{}ms", settings.period.as_millis()),
        "--concurrent-node-syncs".to_owned(),
        settings.concurrency.to_string(),
    ]);
    let launch = Launch {
        bin: settings.ccm_bin.clone(),
        args,
        log: settings.log_dir.join(format!("ccm-n{n}.log")),
        pid_file: settings.pid_file.clone(),
        env: settings.ccm_env.clone(),
    };
    let k0 = apiserver::scrape(client, &COUNTED_RESOURCES).await?;
    log(format!(
        "N={n}: starting {} (log {})",
        launch.bin.display(),
        launch.log.display()
    ));
    let mut ccm = Ccm::spawn(&launch, fleet.client_secret())?;
    let s0 = Snapshot {
        at: ccm.spawned,
        cloud: BTreeMap::new(),
        kube: k0,
        ccm: Samples::default(),
        usage: Usage::default(),
    };
    let init = wait_initialized(&mut ccm, n, settings.init_timeout).await?;
    let observed = init.observed;
    // Let passes still in flight (re-runs on Nodes already done) finish inside the init phase.
    settle(&mut ccm, Duration::from_secs(1), Duration::from_secs(30)).await?;
    let s_init = snapshot(&ccm, &fleet, client).await?;
    let usage_init = s_init.usage;
    log(format!(
        "N={n}: all Nodes initialized {:.2} s after the start; now {} refresh periods of {:?}",
        observed.as_secs_f64(),
        3,
        settings.period
    ));

    // Align the windows half a period after a refresh tick, so each window holds exactly one tick.
    let refreshes = s_init.ccm.sum(
        "cloudsigma_ccm_node_reconciles_total",
        &[("controller", "refresh")],
    );
    wait_refresh_tick(&mut ccm, refreshes, settings.period * 2 + Duration::from_secs(10)).await?;
    let t0 = tokio::time::Instant::now() + settings.period / 2;
    tokio::time::sleep_until(t0).await;
    let w0 = snapshot(&ccm, &fleet, client).await?;
    tokio::time::sleep_until(t0 + settings.period).await;
    let w1 = snapshot(&ccm, &fleet, client).await?;
    tokio::time::sleep_until(t0 + settings.period * 2).await;
    let w2 = snapshot(&ccm, &fleet, client).await?;
    let changed = change_targets(n, settings.change_percent);
    fleet.change_ips(&changed)?;
    tokio::time::sleep_until(t0 + settings.period * 3).await;
    let w3 = snapshot(&ccm, &fleet, client).await?;
    ccm.check_running()?;
    let usage_end = w3.usage;
    let status = ccm.stop()?;
    let timeline = ccm.timeline()?;
    log(format!("N={n}: ccm stopped ({status})"));

    let buckets = w3.ccm.buckets(INIT_HISTOGRAM);
    let latency_histogram = (
        stats::histogram_quantile(0.5, &buckets),
        stats::histogram_quantile(0.99, &buckets),
    );
    let ccm_wall = timeline.all_init.map_or(observed, Duration::from_secs_f64);

    // The final state: every Node initialized, with the current addresses (the changed ones too).
    let mut problems = Vec::new();
    let by_name: BTreeMap<&str, &crate::fleet::Server> =
        fleet.servers().iter().map(|s| (s.name.as_str(), s)).collect();
    let listed = nodes::list(&api, Some("ccm")).await?;
    if listed.len() != n {
        problems.push(format!("{} ccm Nodes listed, {n} registered", listed.len()));
    }
    for node in &listed {
        let name = node.name_any();
        match by_name.get(name.as_str()) {
            Some(s) => problems.extend(nodes::initialization_problem(node, &name, s)),
            None => problems.push(format!("unexpected Node {name}")),
        }
    }
    let cloud_total = fleet.route_counts();

    // A second ccm on the initialized Nodes: what a restart costs and what the steady state holds.
    log(format!("N={n}: starting the ccm again on the initialized Nodes"));
    let again = Launch {
        log: settings.log_dir.join(format!("ccm-n{n}-restart.log")),
        ..launch.clone()
    };
    let r0 = Snapshot {
        at: Instant::now(),
        cloud: fleet.route_counts(),
        kube: apiserver::scrape(client, &COUNTED_RESOURCES).await?,
        ccm: Samples::default(),
        usage: Usage::default(),
    };
    let mut second = Ccm::spawn(&again, fleet.client_secret())?;
    wait_settled_memory(&mut second, Duration::from_secs(2), Duration::from_secs(60)).await?;
    let r1 = snapshot(&second, &fleet, client).await?;
    second.stop()?;
    let restart = Restart {
        phase: phase("restart on initialized Nodes", &r0, &r1, 0),
        usage: r1.usage,
    };

    nodes::delete_all(&api, None, cleanup_timeout).await?;
    let (floor_after, watched_after, floor_kube_after) =
        measure_floor(&api, client, &servers, settings, "after the ccm").await?;
    if floor_kube_after.writes("nodes") != 2 * n as u64 {
        problems.push(format!(
            "the floor client after the ccm made {} writes: {}",
            floor_kube_after.writes("nodes"),
            floor_kube_after.summary()
        ));
    }
    let mut floor_runs = vec![floor_before, floor_after];
    let mut watched_floor_runs = vec![watched_before, watched_after];
    let mut ccm_walls = vec![ccm_wall];
    for run in 2..=settings.init_runs {
        ccm_walls.push(init_again(&api, &fleet, settings, &launch, run).await?);
        let (plain, watched, _) =
            measure_floor(&api, client, &servers, settings, &format!("after ccm run {run}")).await?;
        floor_runs.push(plain);
        watched_floor_runs.push(watched);
    }
    fleet.emulator().reset_log();
    let median = |v: Vec<Duration>| {
        let secs: Vec<f64> = v.iter().map(Duration::as_secs_f64).collect();
        Duration::from_secs_f64(stats::median(&secs).unwrap_or_default())
    };

    let changed_n = changed.len() as u64;
    Ok(Figures {
        settings: settings.clone(),
        registration,
        floor: Floor {
            elapsed: median(floor_runs.iter().map(|f| f.elapsed).collect()),
            writes: floor_before.writes,
        },
        floor_runs,
        watched_floor: median(watched_floor_runs.iter().map(|f| f.elapsed).collect()),
        watched_floor_runs,
        ccm_wall: median(ccm_walls.clone()),
        ccm_walls,
        floor_kube,
        timeline,
        phases: vec![
            phase("init", &s0, &s_init, 2 * n as u64),
            phase("unchanged period 1", &w0, &w1, 0),
            phase("unchanged period 2", &w1, &w2, 0),
            phase("1% changed period", &w2, &w3, changed_n),
        ],
        cloud_total,
        changed: changed.len(),
        latency_histogram,
        usage_init,
        usage_end,
        problems,
        before_watch: init.before_watch,
        after_watch: init.after_watch,
        restart,
    })
}

async fn snapshot(ccm: &Ccm, fleet: &Fleet, client: &kube::Client) -> Result<Snapshot> {
    let usage = ccm.usage()?;
    let ccm_samples = ccm.metrics().await?;
    let cloud = fleet.route_counts();
    let kube = apiserver::scrape(client, &COUNTED_RESOURCES).await?;
    Ok(Snapshot {
        at: Instant::now(),
        cloud,
        kube,
        ccm: ccm_samples,
        usage,
    })
}

/// The servers whose address changes: `ceil(n * percent / 100)` of them, spread evenly over the fleet,
/// never one whose Node has a `provided-node-ip` (that kubelet flag would name the old address, which
/// the ccm rightly refuses to drop).
pub fn change_targets(n: usize, percent: f64) -> Vec<usize> {
    let candidates: Vec<usize> = (0..n).filter(|&i| !nodes::has_provided_ip(i)).collect();
    let count = ((n as f64) * percent / 100.0).ceil() as usize;
    let count = count.min(candidates.len());
    (0..count)
        .map(|k| candidates[k * candidates.len() / count])
        .collect()
}

/// What was seen while waiting for initialization.
struct InitObservation {
    /// Time from the spawn until the log reported every Node initialized.
    observed: Duration,
    /// Use at the first poll after `node controllers started`.
    before_watch: Option<Usage>,
    /// Use at the first poll after a Node was initialized.
    after_watch: Option<Usage>,
}

/// Follows the ccm's log every 50 ms until every one of the `n` Nodes was reported initialized (the
/// final state is checked against the apiserver at the end), sampling its RSS on the way.
async fn wait_initialized(ccm: &mut Ccm, n: usize, timeout: Duration) -> Result<InitObservation> {
    let mut follower = LogFollower::default();
    let mut before_watch = None;
    let mut after_watch = None;
    loop {
        ccm.check_running()?;
        let done = follower.poll(ccm.log())?;
        if follower.controllers_started() && before_watch.is_none() {
            before_watch = Some(ccm.usage()?);
        }
        if done > 0 && after_watch.is_none() {
            after_watch = Some(ccm.usage()?);
        }
        if done >= n {
            return Ok(InitObservation {
                observed: ccm.spawned.elapsed(),
                before_watch,
                after_watch,
            });
        }
        if ccm.spawned.elapsed() > timeout {
            return Err(Error::Timeout {
                what: format!("{n} Nodes to be initialized (see {})", ccm.log().display()),
                after: timeout,
            });
        }
        // Fine-grained until the first Node is done, so the RSS samples bracket the watch list.
        let pause = if done == 0 { 10 } else { 50 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// Waits until the node controllers started and the RSS stayed within 256 KiB for `quiet`.
async fn wait_settled_memory(ccm: &mut Ccm, quiet: Duration, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    let mut follower = LogFollower::default();
    let mut last = 0u64;
    let mut since = Instant::now();
    loop {
        ccm.check_running()?;
        follower.poll(ccm.log())?;
        let rss = ccm.usage()?.rss;
        if !follower.controllers_started() || rss.abs_diff(last) > 256 << 10 {
            last = rss;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(Error::Timeout {
                what: format!("the restarted ccm to settle (see {})", ccm.log().display()),
                after: timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the ccm's init passes, Node writes and CloudSigma requests stop changing for `quiet`.
async fn settle(ccm: &mut Ccm, quiet: Duration, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    let activity = |m: &Samples| {
        m.sum("cloudsigma_ccm_node_reconciles_total", &[("controller", "init")])
            + m.sum("cloudsigma_ccm_node_writes_total", &[])
            + m.sum("cloudsigma_api_requests_total", &[])
    };
    let mut last = activity(&ccm.metrics().await?);
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        ccm.check_running()?;
        let now = activity(&ccm.metrics().await?);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(Error::Timeout {
                what: "the ccm to go quiet after initialization".into(),
                after: timeout,
            });
        }
    }
}

/// Waits until the refresh controller completed a pass after `before` passes.
async fn wait_refresh_tick(ccm: &mut Ccm, before: f64, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        ccm.check_running()?;
        let m = ccm.metrics().await?;
        if m.sum(
            "cloudsigma_ccm_node_reconciles_total",
            &[("controller", "refresh")],
        ) > before
        {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(Error::Timeout {
                what: "an address-refresh pass".into(),
                after: timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_percent_spread_over_the_fleet_without_provided_ips() {
        let t = change_targets(1000, 1.0);
        assert_eq!(t.len(), 10);
        assert!(t.iter().all(|&i| !nodes::has_provided_ip(i) && i < 1000), "{t:?}");
        assert!(t.windows(2).all(|w| w[1] - w[0] >= 90), "spread: {t:?}");
        assert_eq!(change_targets(100, 1.0).len(), 1);
        assert_eq!(change_targets(50, 1.0).len(), 1, "rounded up");
        assert!(change_targets(100, 0.0).is_empty());
        assert_eq!(
            change_targets(1, 100.0),
            Vec::<usize>::new(),
            "node 0 has a provided IP"
        );
    }
}
