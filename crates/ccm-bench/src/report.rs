//! Figures as Markdown tables (printed, and written into docs/performance.md), with the floors, the
//! ratios and the goals.

use std::{collections::BTreeMap, fmt::Write as _, time::Duration};

use crate::{
    apiserver::WRITE_VERBS,
    fleet::{ROUTE_GET, ROUTE_IMPERSONATE, ROUTE_LIST, ROUTE_TOKEN},
    procstat::Usage,
    scenario::{Figures, Phase},
    stats,
};

/// The page size the CloudSigma API uses when a list call names none.
pub const API_DEFAULT_PAGE: u64 = 20;
/// The Go implementation's loop period.
pub const GO_LOOP: Duration = Duration::from_secs(30);
/// The ccm's default `--node-status-update-frequency`.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);
/// Goal: CloudSigma requests at most this many times the floor.
pub const GOAL_CLOUD_RATIO: f64 = 1.2;
/// Goal: wall time at most this many times the write floor (at N = 1000).
pub const GOAL_WALL_RATIO: f64 = 1.5;
/// Goal: peak RSS below this (at N = 1000), bytes.
pub const GOAL_RSS: u64 = 30 << 20;
/// The N the wall-time and memory goals are stated for.
pub const GOAL_N: usize = 1000;

/// The machine the run was made on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Machine {
    /// CPU model (`/proc/cpuinfo`).
    pub cpu: String,
    /// Logical CPUs available.
    pub cpus: usize,
    /// Memory (`MemTotal`), bytes.
    pub memory: u64,
    /// Kernel release.
    pub kernel: String,
    /// 1-minute load average when the run started.
    pub load_at_start: String,
}

impl Machine {
    /// Reads `/proc` (missing facts stay empty).
    pub fn detect() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            .unwrap_or_default();
        let memory = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024);
        Self {
            cpu,
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            memory,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            load_at_start: read("/proc/loadavg")
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

/// Facts about the whole run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunInfo {
    /// The command that produced the figures.
    pub command: String,
    /// When it finished (UTC, RFC 3339).
    pub date: String,
    /// The machine.
    pub machine: Machine,
    /// Seconds the optimized build took, when the wrapper measured it.
    pub build_seconds: Option<f64>,
    /// Seconds the measurements took (control plane start excluded).
    pub run_seconds: f64,
    /// The cargo profile of the ccm binary.
    pub profile: String,
}

/// One goal and whether it was met.
#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    /// What is measured.
    pub what: String,
    /// The measured value with its floor.
    pub value: String,
    /// The goal.
    pub target: String,
    /// `Some(true)` met, `Some(false)` missed, `None` informational (the goal is stated for another N).
    pub met: Option<bool>,
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "(info)",
    }
}

/// CloudSigma API 2.0 requests (authentication endpoints excluded).
pub fn api_requests(routes: &BTreeMap<String, u64>) -> u64 {
    routes
        .iter()
        .filter(|(k, _)| k.contains("/api/2.0/"))
        .map(|(_, v)| v)
        .sum()
}

fn routes_text(routes: &BTreeMap<String, u64>) -> String {
    let api: Vec<String> = routes
        .iter()
        .filter(|(k, _)| k.contains("/api/2.0/"))
        .map(|(k, v)| format!("`{k}` {v}"))
        .collect();
    if api.is_empty() {
        "none".into()
    } else {
        api.join(", ")
    }
}

fn secs(d: f64) -> String {
    format!("{d:.2} s")
}

fn list_secs(values: impl Iterator<Item = f64>) -> String {
    values.map(secs).collect::<Vec<_>>().join(", ")
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

fn opt_secs(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |s| format!("{:.3} s", s))
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::INFINITY }
}

/// Each ccm run's wall time divided by the mean of the floor runs just before and just after it
/// (`floors` holds one run before the first ccm run and one after each), so a drift of the machine or
/// the apiserver over the run affects both sides alike.
pub fn paired_ratios(ccm: &[Duration], floors: &[Duration]) -> Vec<f64> {
    ccm.iter()
        .enumerate()
        .filter_map(|(k, c)| {
            let around = (floors.get(k)?.as_secs_f64() + floors.get(k + 1)?.as_secs_f64()) / 2.0;
            Some(ratio(c.as_secs_f64(), around))
        })
        .collect()
}

/// The wall-time ratio against the write floor: the median of [`paired_ratios`].
pub fn wall_ratio(f: &Figures) -> f64 {
    let floors: Vec<Duration> = f.floor_runs.iter().map(|r| r.elapsed).collect();
    stats::median(&paired_ratios(&f.ccm_walls, &floors))
        .unwrap_or_else(|| ratio(f.ccm_wall.as_secs_f64(), f.floor.elapsed.as_secs_f64()))
}

/// The wall-time ratio against the floor client with a Node watch open (median of paired ratios).
pub fn watched_ratio(f: &Figures) -> f64 {
    let floors: Vec<Duration> = f.watched_floor_runs.iter().map(|r| r.elapsed).collect();
    stats::median(&paired_ratios(&f.ccm_walls, &floors))
        .unwrap_or_else(|| ratio(f.ccm_wall.as_secs_f64(), f.watched_floor.as_secs_f64()))
}

/// Kubernetes writes the ccm made in a phase according to the apiserver (nodes and events).
pub fn kube_writes(p: &Phase) -> u64 {
    p.kube.writes("nodes") + p.kube.writes("events")
}

/// The phases of the first ccm, then the restart.
pub fn all_phases(f: &Figures) -> impl Iterator<Item = &Phase> {
    f.phases.iter().chain(std::iter::once(&f.restart.phase))
}

/// The goals for one N.
pub fn goals(f: &Figures) -> Vec<Goal> {
    let n = f.settings.nodes;
    let floor_calls = stats::list_calls(n as u64, f.settings.page_size);
    let mut out = Vec::new();
    for p in all_phases(f) {
        let api = api_requests(&p.cloud);
        let r = ratio(api as f64, floor_calls as f64);
        out.push(Goal {
            what: format!("CloudSigma requests, {}", p.name),
            value: format!("{api} vs floor {floor_calls} ({r:.2}x)"),
            target: format!("<= {GOAL_CLOUD_RATIO}x floor"),
            met: Some(r <= GOAL_CLOUD_RATIO),
        });
    }
    let imp = f.cloud_total.get(ROUTE_IMPERSONATE).copied().unwrap_or(0);
    out.push(Goal {
        what: "Impersonation requests, whole run (shorter than one token lifetime)".into(),
        value: imp.to_string(),
        target: "1 per user-region per token lifetime".into(),
        met: Some(imp == 1),
    });
    for p in all_phases(f) {
        let w = kube_writes(p);
        let (target, met) = if p.name == "init" {
            (format!("2 per node = {}", 2 * n), w == 2 * n as u64)
        } else if p.name.starts_with("unchanged") || p.name.starts_with("restart") {
            ("0".to_owned(), w == 0)
        } else {
            (
                format!("1 per changed node = {}", p.expected_writes),
                w == p.expected_writes,
            )
        };
        let refused = p
            .kube
            .iter()
            .filter(|(k, _)| WRITE_VERBS.contains(&k.verb.as_str()) && !k.code.starts_with('2'))
            .map(|(_, v)| v)
            .sum::<u64>();
        out.push(Goal {
            what: format!("Kubernetes writes, {}", p.name),
            value: if refused > 0 {
                format!("{w} ({} succeeded, {refused} refused)", w - refused)
            } else {
                w.to_string()
            },
            target,
            met: Some(met),
        });
    }
    let at_goal_n = (n == GOAL_N).then_some(());
    let wall = wall_ratio(f);
    out.push(Goal {
        what: "Wall time, ccm start to all Nodes initialized".into(),
        value: format!(
            "{} vs floor {} ({wall:.2}x)",
            secs(f.ccm_wall.as_secs_f64()),
            secs(f.floor.elapsed.as_secs_f64())
        ),
        target: format!("<= {GOAL_WALL_RATIO}x floor at N = {GOAL_N}"),
        met: at_goal_n.map(|()| wall <= GOAL_WALL_RATIO),
    });
    let watched = watched_ratio(f);
    out.push(Goal {
        what: "Wall time against a floor client that also keeps a Node watch and store open".into(),
        value: format!(
            "{} vs {} ({watched:.2}x)",
            secs(f.ccm_wall.as_secs_f64()),
            secs(f.watched_floor.as_secs_f64())
        ),
        target: "no goal: shows what watching costs".into(),
        met: None,
    });
    out.push(Goal {
        what: "ccm peak RSS".into(),
        value: mib(f.usage_end.peak_rss),
        target: format!("< {} at N = {GOAL_N}", mib(GOAL_RSS)),
        met: at_goal_n.map(|()| f.usage_end.peak_rss < GOAL_RSS),
    });
    out.push(Goal {
        what: "Final state of every Node (providerID, labels, addresses, no taint)".into(),
        value: if f.problems.is_empty() {
            format!("{n}/{n} right")
        } else {
            format!("{} problems, first: {}", f.problems.len(), f.problems[0])
        },
        target: "all right".into(),
        met: Some(f.problems.is_empty()),
    });
    out
}

/// The Markdown section for one N.
pub fn render_figures(f: &Figures) -> String {
    let n = f.settings.nodes as u64;
    let page = f.settings.page_size;
    let period = f.settings.period.as_secs_f64();
    let floor_calls = stats::list_calls(n, page);
    let floor_default = stats::list_calls(n, API_DEFAULT_PAGE);
    let mut s = String::new();
    let _ = writeln!(s, "### N = {n}\n");
    if !f.settings.ccm_env.is_empty() {
        let env: Vec<String> = f
            .settings
            .ccm_env
            .iter()
            .map(|(k, v)| format!("`{k}={v}`"))
            .collect();
        let _ = writeln!(s, "ccm environment (diagnostic run): {}\n", env.join(" "));
    }
    let _ = writeln!(
        s,
        "{n} servers, {n} Nodes ({} with a providerID, {} with `provided-node-ip`), refresh period {period:.0} s, \
         `--concurrent-node-syncs {}`, {} addresses changed in the last period.\n",
        n.div_ceil(2),
        n.div_ceil(10),
        f.settings.concurrency,
        f.changed
    );

    let _ = writeln!(s, "**Goals**\n");
    let _ = writeln!(s, "| figure | measured | goal | |\n|---|---|---|---|");
    for g in goals(f) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            g.what,
            g.value,
            g.target,
            verdict(g.met)
        );
    }

    let _ = writeln!(s, "\n**CloudSigma requests by route** (emulator counters)\n");
    let _ = writeln!(
        s,
        "| phase | ccm: API 2.0 requests by route | total | floor, page {page} | ratio | floor, API default page {API_DEFAULT_PAGE} | Go per-node pattern |\n|---|---|---|---|---|---|---|"
    );
    for p in all_phases(f) {
        let api = api_requests(&p.cloud);
        let go = if p.name == "init" || p.name.starts_with("restart") {
            format!("{} (one loop: {n} GET + {n} IP lists)", 2 * n)
        } else {
            let loops = period / GO_LOOP.as_secs_f64();
            format!("{:.0} ({loops:.2} loops of 2N)", 2.0 * n as f64 * loops)
        };
        let _ = writeln!(
            s,
            "| {} | {} | {api} | {floor_calls} | {:.2} | {floor_default} | {go} |",
            p.name,
            routes_text(&p.cloud),
            ratio(api as f64, floor_calls as f64),
        );
    }
    let per_default = DEFAULT_REFRESH.as_secs_f64() / GO_LOOP.as_secs_f64();
    let steady = f
        .phases
        .iter()
        .filter(|p| p.name.starts_with("unchanged"))
        .map(|p| api_requests(&p.cloud))
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        s,
        "\nSteady state per default 5-minute refresh period: ccm {steady} request(s) (one listing; no per-node \
         GET); the Go implementation's 30 s loop makes {:.0} in the same 5 minutes (2N per loop, counting each \
         account-wide IP list as one call; more if it pages). Single-server GETs (`{ROUTE_GET}`) over the run: {}.",
        2.0 * n as f64 * per_default,
        f.cloud_total.get(ROUTE_GET).copied().unwrap_or(0),
    );
    let _ = writeln!(
        s,
        "Authentication over the run: `{ROUTE_IMPERSONATE}` {}, `{ROUTE_TOKEN}` {} (client credentials + UMA \
         ticket for that one impersonation); floor 1 impersonation per token lifetime (900 s, longer than the run).",
        f.cloud_total.get(ROUTE_IMPERSONATE).copied().unwrap_or(0),
        f.cloud_total.get(ROUTE_TOKEN).copied().unwrap_or(0),
    );
    let _ = ROUTE_LIST;

    let _ = writeln!(
        s,
        "\n**Kubernetes requests** (apiserver `apiserver_request_total`, nodes and events; ccm `cloudsigma_ccm_node_writes_total`)\n"
    );
    let _ = writeln!(
        s,
        "| phase | length | writes (apiserver) | floor | ccm metric: status / update / delete | all node and event requests (verb resource code: count) | ccm CPU |\n|---|---|---|---|---|---|---|"
    );
    for p in all_phases(f) {
        let w = |k: &str| p.ccm_writes.get(k).copied().unwrap_or(0);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} / {} / {} | {} | {} |",
            p.name,
            secs(p.duration.as_secs_f64()),
            kube_writes(p),
            p.expected_writes,
            w("status"),
            w("update"),
            w("delete"),
            p.kube.summary(),
            secs(p.cpu_seconds),
        );
    }
    let _ = writeln!(
        s,
        "| floor client (time: median of its runs; requests: the run before the ccm) | {} | {} | {} | - | {} | - |",
        secs(f.floor.elapsed.as_secs_f64()),
        f.floor_kube.writes("nodes") + f.floor_kube.writes("events"),
        2 * n,
        f.floor_kube.summary()
    );

    let t = &f.timeline;
    let wall = f.ccm_wall.as_secs_f64();
    let floor = f.floor.elapsed.as_secs_f64();
    let _ = writeln!(
        s,
        "\n**Wall time** (seconds after the ccm process was spawned, from its JSON log)\n"
    );
    let _ = writeln!(s, "| step | at | took |\n|---|---|---|");
    let steps = [
        (
            "process start, flags, kube client, metrics endpoint (`ccm starting`)",
            t.starting,
        ),
        (
            "impersonation (2 OAuth + 1 impersonate) and the first server listing (`CloudSigma reachable`)",
            t.reachable,
        ),
        ("controllers built (`node controllers started`)", t.controllers),
        ("Node watch list and the first Node initialized", t.first_init),
        (
            "the last Node initialized (its first `node initialized` line)",
            t.all_init,
        ),
    ];
    let mut prev = 0.0;
    for (what, at) in steps {
        match at {
            Some(at) => {
                let _ = writeln!(s, "| {what} | {} | {} |", secs(at), secs(at - prev));
                prev = at;
            }
            None => {
                let _ = writeln!(s, "| {what} | n/a | n/a |");
            }
        }
    }
    let from_ctrl = t.all_init.zip(t.controllers).map(|(all, c)| all - c);
    let plain: Vec<Duration> = f.floor_runs.iter().map(|r| r.elapsed).collect();
    let watched: Vec<Duration> = f.watched_floor_runs.iter().map(|r| r.elapsed).collect();
    let first_floor = plain
        .get(..2)
        .map(|p| (p[0].as_secs_f64() + p[1].as_secs_f64()) / 2.0)
        .unwrap_or(floor);
    let ratios = |r: Vec<f64>| {
        r.iter()
            .map(|v| format!("{v:.2}x"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        s,
        "\nccm start to all Nodes initialized, {} runs: {} (median **{}**). Write floor (the same {} writes, {} in \
         flight, same apiserver), one run before the first ccm run and one after each: {} (median **{}**). Each ccm \
         run against the mean of the floor runs around it: {}; median **{:.2}x** (the goal's figure). In the first \
         run, from `node controllers started` to the last Node took {} ({}x its floor); the rest is the constant \
         start-up cost above.\n",
        f.ccm_walls.len(),
        list_secs(f.ccm_walls.iter().map(Duration::as_secs_f64)),
        secs(wall),
        2 * n,
        f.settings.concurrency,
        list_secs(plain.iter().map(Duration::as_secs_f64)),
        secs(floor),
        ratios(paired_ratios(&f.ccm_walls, &plain)),
        wall_ratio(f),
        from_ctrl.map_or_else(|| "n/a".into(), secs),
        from_ctrl.map_or_else(|| "n/a".into(), |c| format!("{:.2}", ratio(c, first_floor))),
    );
    let _ = writeln!(
        s,
        "The same floor client with a watch of its Nodes feeding a store, synced before its timer starts (what \
         any controller has open while it writes), right after each plain floor run: {} (median **{}**); each ccm \
         run against those around it: {}; median **{:.2}x**.\n",
        list_secs(watched.iter().map(Duration::as_secs_f64)),
        secs(f.watched_floor.as_secs_f64()),
        ratios(paired_ratios(&f.ccm_walls, &watched)),
        watched_ratio(f),
    );

    let exact50 = stats::percentile(&t.init_seconds, 0.5);
    let exact99 = stats::percentile(&t.init_seconds, 0.99);
    let _ = writeln!(s, "\n**Resources and latency**\n");
    let _ = writeln!(s, "| figure | value |\n|---|---|");
    let _ = writeln!(
        s,
        "| ccm peak RSS (VmHWM) at the end | {} |",
        mib(f.usage_end.peak_rss)
    );
    let split = |u: &Usage| format!("{} ({} anon)", mib(u.rss), mib(u.rss_anon));
    let opt_split = |u: Option<&Usage>| u.map_or_else(|| "n/a".into(), split);
    let _ = writeln!(
        s,
        "| ccm RSS (anonymous part: heap and stacks; the rest is mapped code): controllers started (before the Node watch) / first Node initialized (watch list in the store) / all initialized / end | {} / {} / {} / {} |",
        opt_split(f.before_watch.as_ref()),
        opt_split(f.after_watch.as_ref()),
        split(&f.usage_init),
        split(&f.usage_end)
    );
    let _ = writeln!(
        s,
        "| restarted ccm on the {n} initialized Nodes, settled: RSS / peak RSS / CPU | {} / {} / {} |",
        split(&f.restart.usage),
        mib(f.restart.usage.peak_rss),
        secs(f.restart.usage.cpu_seconds)
    );
    let _ = writeln!(
        s,
        "| ccm CPU seconds to all Nodes initialized / whole run | {} / {} |",
        secs(f.usage_init.cpu_seconds),
        secs(f.usage_end.cpu_seconds)
    );
    let _ = writeln!(
        s,
        "| taint seen to taint removed, p50 / p99 (histogram `cloudsigma_ccm_node_initialization_seconds`, interpolated in its x2 buckets) | {} / {} |",
        opt_secs(f.latency_histogram.0),
        opt_secs(f.latency_histogram.1)
    );
    let _ = writeln!(
        s,
        "| the same from each Node's first `node initialized` log line ({} Nodes, exact) | {} / {} |",
        t.init_seconds.len(),
        opt_secs(exact50),
        opt_secs(exact99)
    );
    let _ = writeln!(
        s,
        "| extra init passes on Nodes already initialized (repeated `node initialized` lines, also counted by the histogram) | {} |",
        t.repeated_inits
    );
    let _ = writeln!(
        s,
        "| ccm log warnings / errors | {} / {}{} |",
        t.warnings,
        t.errors,
        t.first_problem
            .as_deref()
            .map_or_else(String::new, |m| format!(" (first: {m})"))
    );
    let _ = writeln!(
        s,
        "| setup: registering the N kubelet-style Nodes for the ccm ({} in flight) | {} |",
        f.settings.concurrency,
        secs(f.registration.as_secs_f64())
    );
    s
}

/// The whole report: run facts, then one section per N.
pub fn render(info: &RunInfo, figures: &[Figures]) -> String {
    let m = &info.machine;
    let mut s = String::new();
    let _ = writeln!(s, "Produced by `{}` on {}.\n", info.command, info.date);
    let _ = writeln!(
        s,
        "Machine: {} logical CPUs ({}), {} memory, Linux {}; 1-minute load average at the start {}. \
         ccm built with the `{}` profile{}; measurements took {}.\n",
        m.cpus,
        if m.cpu.is_empty() { "unknown model" } else { &m.cpu },
        mib(m.memory),
        m.kernel,
        m.load_at_start,
        info.profile,
        info.build_seconds
            .map_or_else(String::new, |b| format!(" (build {})", secs(b))),
        secs(info.run_seconds),
    );
    let _ = writeln!(
        s,
        "| N | CloudSigma (worst phase / floor) | Kubernetes writes: init / unchanged 1 / unchanged 2 / changed | wall / floor | peak RSS | p50 / p99 init latency | goals missed |\n|---|---|---|---|---|---|---|"
    );
    for f in figures {
        let floor_calls = stats::list_calls(f.settings.nodes as u64, f.settings.page_size) as f64;
        let worst = f
            .phases
            .iter()
            .map(|p| ratio(api_requests(&p.cloud) as f64, floor_calls))
            .fold(0.0, f64::max);
        let w: Vec<String> = f.phases.iter().map(|p| kube_writes(p).to_string()).collect();
        let missed: Vec<String> = goals(f)
            .into_iter()
            .filter(|g| g.met == Some(false))
            .map(|g| g.what)
            .collect();
        let _ = writeln!(
            s,
            "| {} | {worst:.2}x | {} | {:.2}x | {} | {} / {} | {} |",
            f.settings.nodes,
            w.join(" / "),
            wall_ratio(f),
            mib(f.usage_end.peak_rss),
            opt_secs(f.latency_histogram.0),
            opt_secs(f.latency_histogram.1),
            if missed.is_empty() {
                "none".into()
            } else {
                missed.join("; ")
            },
        );
    }
    for f in figures {
        let _ = writeln!(s);
        s.push_str(&render_figures(f));
    }
    s
}

/// Markers around the generated part of docs/performance.md.
pub const BEGIN_MARKER: &str = "<!-- BEGIN make bench output -->";
/// See [`BEGIN_MARKER`].
pub const END_MARKER: &str = "<!-- END make bench output -->";

/// `doc` with the text between the markers replaced by `generated`; `None` when the markers are
/// missing or out of order.
pub fn splice(doc: &str, generated: &str) -> Option<String> {
    let begin = doc.find(BEGIN_MARKER)? + BEGIN_MARKER.len();
    let end = doc[begin..].find(END_MARKER)? + begin;
    Some(format!(
        "{}\n\n{}\n{}",
        &doc[..begin],
        generated.trim_end(),
        &doc[end..]
    ))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::{apiserver::RequestCounts, ccm::Timeline, floor::Floor, prom::Samples, scenario::Settings};

    fn counts(text: &str) -> RequestCounts {
        RequestCounts::from_samples(&Samples::parse("t", text).unwrap(), &["nodes", "events"])
    }

    fn line(verb: &str, sub: &str, code: u16, v: u64) -> String {
        format!(
            "apiserver_request_total{{code=\"{code}\",resource=\"nodes\",subresource=\"{sub}\",verb=\"{verb}\"}} {v}\n"
        )
    }

    fn figures(n: usize, lists_init: u64, unchanged_writes: u64, wall: f64, rss_mib: u64) -> Figures {
        let phase = |name: &str, lists: u64, kube: String, expected: u64| Phase {
            name: name.into(),
            cloud: [(ROUTE_LIST.to_owned(), lists)].into_iter().collect(),
            kube: counts(&kube),
            ccm_writes: BTreeMap::new(),
            expected_writes: expected,
            cpu_seconds: 0.1,
            duration: Duration::from_secs(20),
        };
        let n64 = n as u64;
        let usage = Usage {
            peak_rss: rss_mib << 20,
            rss: rss_mib << 20,
            rss_anon: 8 << 20,
            cpu_seconds: 1.0,
        };
        let at = |mib: u64| Usage {
            rss: mib << 20,
            ..usage
        };
        Figures {
            settings: Settings {
                nodes: n,
                period: Duration::from_secs(20),
                concurrency: 16,
                page_size: 100,
                change_percent: 1.0,
                ccm_bin: PathBuf::from("ccm"),
                kubeconfig: PathBuf::from("kubeconfig"),
                log_dir: PathBuf::from("/tmp"),
                init_timeout: Duration::from_secs(60),
                pid_file: None,
                ccm_env: vec![],
                init_runs: 1,
            },
            registration: Duration::from_secs(3),
            floor: Floor {
                elapsed: Duration::from_secs(10),
                writes: 2 * n64,
            },
            floor_runs: vec![
                Floor {
                    elapsed: Duration::from_secs(9),
                    writes: 2 * n64,
                },
                Floor {
                    elapsed: Duration::from_secs(11),
                    writes: 2 * n64,
                },
            ],
            ccm_walls: vec![Duration::from_secs_f64(wall)],
            watched_floor: Duration::from_secs(12),
            watched_floor_runs: vec![Floor {
                elapsed: Duration::from_secs(12),
                writes: 2 * n64,
            }],
            floor_kube: counts(&(line("PATCH", "status", 200, n64) + &line("PATCH", "", 200, n64))),
            ccm_wall: Duration::from_secs_f64(wall),
            timeline: Timeline {
                controllers: Some(0.5),
                init_seconds: vec![0.2, 0.4],
                repeated_inits: 7,
                ..Timeline::default()
            },
            phases: vec![
                phase(
                    "init",
                    lists_init,
                    line("PATCH", "status", 200, n64) + &line("PATCH", "", 200, n64),
                    2 * n64,
                ),
                phase(
                    "unchanged period 1",
                    n64 / 100,
                    line("PATCH", "status", 200, unchanged_writes),
                    0,
                ),
                phase("unchanged period 2", n64 / 100, String::new(), 0),
                phase(
                    "1% changed period",
                    n64 / 100,
                    line("PATCH", "status", 200, n64 / 100),
                    n64 / 100,
                ),
            ],
            cloud_total: [(ROUTE_IMPERSONATE.to_owned(), 1), (ROUTE_TOKEN.to_owned(), 2)]
                .into_iter()
                .collect(),
            changed: n / 100,
            latency_histogram: (Some(0.3), Some(0.9)),
            usage_init: usage,
            usage_end: usage,
            problems: vec![],
            before_watch: Some(at(12)),
            after_watch: Some(at(16)),
            restart: crate::scenario::Restart {
                phase: phase("restart on initialized Nodes", n64 / 100, String::new(), 0),
                usage,
            },
        }
    }

    fn met(f: &Figures, what: &str) -> Option<bool> {
        goals(f)
            .into_iter()
            .find(|g| g.what.starts_with(what))
            .unwrap_or_else(|| panic!("no goal {what}"))
            .met
    }

    #[test]
    fn all_goals_met_at_the_floor() {
        let f = figures(1000, 10, 0, 14.0, 20);
        let missed: Vec<_> = goals(&f).into_iter().filter(|g| g.met == Some(false)).collect();
        assert!(missed.is_empty(), "{missed:?}");
        let text = render(&RunInfo::default(), &[f]);
        assert!(
            text.contains("| 1000 | 1.00x | 2000 / 0 / 0 / 10 | 1.40x | 20.0 MiB |"),
            "{text}"
        );
        assert!(
            text.contains(
                "| init | `GET /direct/api/2.0/servers/detail/` 10 | 10 | 10 | 1.00 | 50 | 2000 (one loop"
            ),
            "{text}"
        );
        assert!(text.contains("| 20.0 MiB | 0.300 s / 0.900 s | none |"), "{text}");
        assert!(
            text.contains("keeps a Node watch and store open | 14.00 s vs 12.00 s (1.17x) | no goal: shows what watching costs | (info) |"),
            "{text}"
        );
        assert!(
            text.contains("(repeated `node initialized` lines, also counted by the histogram) | 7 |"),
            "{text}"
        );
        assert!(
            text.contains("| 12.0 MiB (8.0 MiB anon) / 16.0 MiB (8.0 MiB anon) / 20.0 MiB (8.0 MiB anon) / 20.0 MiB (8.0 MiB anon) |"),
            "{text}"
        );
    }

    #[test]
    fn each_missed_goal_is_reported() {
        let mut f = figures(1000, 13, 5, 16.0, 31);
        assert_eq!(
            met(&f, "Kubernetes writes, restart on initialized Nodes"),
            Some(true)
        );
        f.restart.phase.kube = counts(&line("PATCH", "", 409, 4));
        assert_eq!(
            met(&f, "Kubernetes writes, restart on initialized Nodes"),
            Some(false)
        );
        let g = goals(&f);
        let restart = g
            .iter()
            .find(|g| g.what == "Kubernetes writes, restart on initialized Nodes")
            .unwrap();
        assert_eq!(restart.value, "4 (0 succeeded, 4 refused)");
        assert_eq!(met(&f, "CloudSigma requests, init"), Some(false));
        assert_eq!(met(&f, "CloudSigma requests, unchanged period 1"), Some(true));
        assert_eq!(met(&f, "Kubernetes writes, unchanged period 1"), Some(false));
        assert_eq!(met(&f, "Kubernetes writes, unchanged period 2"), Some(true));
        assert_eq!(met(&f, "Wall time"), Some(false));
        assert_eq!(met(&f, "ccm peak RSS"), Some(false));
        let text = render(&RunInfo::default(), &[f]);
        assert!(
            text.contains(
                "| CloudSigma requests, init | 13 vs floor 10 (1.30x) | <= 1.2x floor | **missed** |"
            ),
            "{text}"
        );
    }

    #[test]
    fn wall_and_memory_goals_are_informational_below_1000_nodes() {
        let f = figures(100, 1, 0, 30.0, 40);
        assert_eq!(met(&f, "Wall time"), None);
        assert_eq!(met(&f, "ccm peak RSS"), None);
        assert_eq!(met(&f, "CloudSigma requests, init"), Some(true));
    }

    #[test]
    fn each_run_is_compared_with_the_floor_runs_around_it() {
        let d = Duration::from_secs_f64;
        let r = paired_ratios(&[d(6.0), d(12.0)], &[d(4.0), d(2.0), d(10.0)]);
        assert_eq!(r, vec![2.0, 2.0]);
        assert_eq!(
            paired_ratios(&[d(6.0), d(12.0)], &[d(4.0), d(2.0)]),
            vec![2.0],
            "unpaired runs are left out"
        );
        let mut f = figures(1000, 10, 0, 14.0, 20);
        f.ccm_walls = vec![d(5.0), d(9.0), d(12.0)];
        f.floor_runs = [4.0, 4.0, 4.0, 4.0]
            .iter()
            .map(|&e| Floor {
                elapsed: d(e),
                writes: 2000,
            })
            .collect();
        assert!((wall_ratio(&f) - 2.25).abs() < 1e-9);
        f.watched_floor_runs = [4.0, 6.0, 8.0, 10.0]
            .iter()
            .map(|&e| Floor {
                elapsed: d(e),
                writes: 2000,
            })
            .collect();
        // 5/5, 9/7, 12/9
        assert!((watched_ratio(&f) - 9.0 / 7.0).abs() < 1e-9);
        assert_eq!(met(&f, "Wall time, ccm start"), Some(false));
    }

    #[test]
    fn splice_replaces_only_the_generated_part() {
        let doc = format!("# Title\nprose\n{BEGIN_MARKER}\nold\n{END_MARKER}\nmore prose\n");
        let out = splice(&doc, "new table\n").unwrap();
        assert_eq!(
            out,
            format!("# Title\nprose\n{BEGIN_MARKER}\n\nnew table\n{END_MARKER}\nmore prose\n")
        );
        assert_eq!(splice("# no markers", "x"), None);
        assert_eq!(splice(&format!("{END_MARKER} {BEGIN_MARKER}"), "x"), None);
    }
}
