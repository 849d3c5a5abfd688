//! The real `ccm` binary as a child process: start, metrics, resource use, JSON log timeline, stop.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use secrecy::{ExposeSecret, SecretString};

use crate::{
    error::{Error, Result},
    procstat::{self, Usage},
    prom::Samples,
};

/// How to start the ccm.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The binary.
    pub bin: PathBuf,
    /// Flags (credentials flags of [`crate::fleet::Fleet::ccm_args`], `--kubeconfig`, periods, ...);
    /// metrics, probe and log flags are added here.
    pub args: Vec<String>,
    /// Where its output goes.
    pub log: PathBuf,
    /// Extra environment variables (diagnostics, e.g. `MALLOC_ARENA_MAX`).
    pub env: Vec<(String, String)>,
    /// A file to hold its pid while it runs (so a wrapper script can stop it if this process dies).
    pub pid_file: Option<PathBuf>,
}

/// A running ccm; killed on drop if still running.
pub struct Ccm {
    child: Child,
    pid: u32,
    log: PathBuf,
    pid_file: Option<PathBuf>,
    metrics_url: String,
    http: reqwest::Client,
    /// When the process was spawned (monotonic).
    pub spawned: Instant,
    /// When the process was spawned (wall clock, to read its log timestamps).
    pub spawned_wall: jiff::Timestamp,
    ticks: u64,
}

impl std::fmt::Debug for Ccm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ccm")
            .field("pid", &self.pid)
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io("bind 127.0.0.1:0", e))?;
    Ok(l.local_addr().map_err(|e| Error::io("local address", e))?.port())
}

impl Ccm {
    /// Spawns the ccm with JSON logs at `info`, `/metrics` on a free loopback port, no probe
    /// endpoint, and the client secret in `CLOUDSIGMA_CLIENT_SECRET`.
    pub fn spawn(launch: &Launch, client_secret: &SecretString) -> Result<Self> {
        let port = free_port()?;
        let file = std::fs::File::create(&launch.log)
            .map_err(|e| Error::io(format!("create {}", launch.log.display()), e))?;
        let err_file = file
            .try_clone()
            .map_err(|e| Error::io(format!("open {}", launch.log.display()), e))?;
        let mut cmd = Command::new(&launch.bin);
        cmd.args(&launch.args)
            .args(["--metrics-bind-address", &format!("127.0.0.1:{port}")])
            .args(["--health-probe-bind-address", "0", "--log-format", "json"])
            .env_remove("RUST_LOG")
            .env("CCM_LOG_LEVEL", "info")
            .env("CLOUDSIGMA_CLIENT_SECRET", client_secret.expose_secret())
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err_file);
        for (k, v) in &launch.env {
            cmd.env(k, v);
        }
        let spawned_wall = jiff::Timestamp::now();
        let spawned = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| Error::io(format!("start {}", launch.bin.display()), e))?;
        if let Some(p) = &launch.pid_file {
            std::fs::write(p, child.id().to_string())
                .map_err(|e| Error::io(format!("write {}", p.display()), e))?;
        }
        Ok(Self {
            pid: child.id(),
            child,
            log: launch.log.clone(),
            pid_file: launch.pid_file.clone(),
            metrics_url: format!("http://127.0.0.1:{port}/metrics"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
            spawned,
            spawned_wall,
            ticks: procstat::clock_ticks(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// An error if the process has ended.
    pub fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(Error::CcmExited {
                status: status.to_string(),
                log: self.log.clone(),
            }),
            Ok(None) => Ok(()),
            Err(e) => Err(Error::io(format!("wait for ccm pid {}", self.pid), e)),
        }
    }

    /// One scrape of `/metrics`; `Ok(None)` while the endpoint is not up yet.
    pub async fn try_metrics(&self) -> Result<Option<Samples>> {
        let resp = match self.http.get(&self.metrics_url).send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let text = resp.error_for_status()?.text().await?;
        Samples::parse("ccm /metrics", &text).map(Some)
    }

    /// One scrape of `/metrics` (an error when the endpoint is not up).
    pub async fn metrics(&self) -> Result<Samples> {
        self.try_metrics()
            .await?
            .ok_or_else(|| Error::parse("ccm /metrics", format!("{} is not answering", self.metrics_url)))
    }

    /// Peak RSS, RSS and CPU time so far.
    pub fn usage(&self) -> Result<Usage> {
        procstat::read(self.pid, self.ticks)
    }

    /// Sends SIGTERM and waits up to 10 s for a clean exit (then SIGKILL); returns the exit status.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        let status = self.stop_process();
        self.forget_pid_file();
        status
    }

    fn stop_process(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.child.try_wait().map_err(|e| Error::io("wait for ccm", e))? {
            return Ok(status);
        }
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while sent && Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().map_err(|e| Error::io("wait for ccm", e))? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        self.child.wait().map_err(|e| Error::io("wait for ccm", e))
    }

    fn forget_pid_file(&self) {
        if let Some(p) = &self.pid_file {
            let _ = std::fs::remove_file(p);
        }
    }

    /// What the JSON log says happened, in seconds after the spawn.
    pub fn timeline(&self) -> Result<Timeline> {
        let text = std::fs::read_to_string(&self.log)
            .map_err(|e| Error::io(format!("read {}", self.log.display()), e))?;
        Ok(Timeline::parse(&text, self.spawned_wall))
    }
}

impl Drop for Ccm {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.forget_pid_file();
    }
}

/// Start-up milestones and per-Node initialization latencies from the ccm's JSON log, as seconds
/// after the process was spawned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    /// `ccm starting`: flags parsed, kube client and metrics endpoint up.
    pub starting: Option<f64>,
    /// `CloudSigma reachable`: the impersonated token was obtained and the first listing done.
    pub reachable: Option<f64>,
    /// `node controllers started`: the Node watch begins.
    pub controllers: Option<f64>,
    /// The first `node initialized`.
    pub first_init: Option<f64>,
    /// When the last Node was initialized for the first time (every Node had a `node initialized` line).
    pub all_init: Option<f64>,
    /// The `seconds` of each Node's first `node initialized` line (taint seen to taint removed).
    pub init_seconds: Vec<f64>,
    /// `node initialized` lines beyond the first per Node (passes that found the Node already done).
    pub repeated_inits: usize,
    /// Lines at level WARN.
    pub warnings: usize,
    /// Lines at level ERROR.
    pub errors: usize,
    /// The first WARN or ERROR message, if any.
    pub first_problem: Option<String>,
}

impl Timeline {
    /// Reads the JSON lines; lines that are not JSON objects are ignored.
    pub fn parse(text: &str, spawned: jiff::Timestamp) -> Self {
        let mut t = Self::default();
        let mut seen = std::collections::HashSet::new();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let at = v["timestamp"]
                .as_str()
                .and_then(|s| s.parse::<jiff::Timestamp>().ok())
                .map(|ts| ts.duration_since(spawned).as_secs_f64());
            let message = v["message"].as_str().unwrap_or_default();
            match v["level"].as_str() {
                Some("WARN") => t.warnings += 1,
                Some("ERROR") => t.errors += 1,
                _ => {}
            }
            if matches!(v["level"].as_str(), Some("WARN" | "ERROR")) && t.first_problem.is_none() {
                t.first_problem = Some(message.to_owned());
            }
            match message {
                "ccm starting" => t.starting = t.starting.or(at),
                "CloudSigma reachable" => t.reachable = t.reachable.or(at),
                "node controllers started" => t.controllers = t.controllers.or(at),
                "node initialized" => {
                    t.first_init = t.first_init.or(at);
                    let node = v["node"].as_str().unwrap_or_default().to_owned();
                    if seen.insert(node) {
                        t.all_init = at.or(t.all_init);
                        if let Some(s) = v["seconds"].as_f64() {
                            t.init_seconds.push(s);
                        }
                    } else {
                        t.repeated_inits += 1;
                    }
                }
                _ => {}
            }
        }
        t
    }
}

/// Follows the ccm's log: whether the node controllers started, and the distinct Nodes it reported
/// `node initialized` for.
#[derive(Debug, Default)]
pub struct LogFollower {
    offset: usize,
    partial: String,
    nodes: std::collections::HashSet<String>,
    controllers_started: bool,
}

impl LogFollower {
    /// Reads what the log gained since the last call; returns the number of distinct Nodes so far.
    pub fn poll(&mut self, log: &Path) -> Result<usize> {
        let bytes = std::fs::read(log).map_err(|e| Error::io(format!("read {}", log.display()), e))?;
        if bytes.len() > self.offset {
            self.partial
                .push_str(&String::from_utf8_lossy(&bytes[self.offset..]));
            self.offset = bytes.len();
            let complete = self.partial.rfind('\n').map_or(0, |i| i + 1);
            let lines: String = self.partial.drain(..complete).collect();
            self.feed(&lines);
        }
        Ok(self.nodes.len())
    }

    /// True once `node controllers started` was logged.
    pub fn controllers_started(&self) -> bool {
        self.controllers_started
    }

    fn feed(&mut self, lines: &str) {
        for line in lines.lines() {
            if line.contains("\"node controllers started\"") {
                self.controllers_started = true;
            }
            if !line.contains("\"node initialized\"") {
                continue;
            }
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
                && v["message"] == "node initialized"
                && let Some(node) = v["node"].as_str()
            {
                self.nodes.insert(node.to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_reads_milestones_and_latencies() {
        let spawned: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let log = r#"{"timestamp":"2026-01-01T00:00:00.100000Z","level":"INFO","message":"ccm starting","target":"ccm"}
not json at all
{"timestamp":"2026-01-01T00:00:00.300000Z","level":"INFO","message":"CloudSigma reachable","servers":2}
{"timestamp":"2026-01-01T00:00:00.310000Z","level":"INFO","message":"node controllers started"}
{"timestamp":"2026-01-01T00:00:00.500000Z","level":"INFO","message":"node initialized","node":"a","seconds":0.12}
{"timestamp":"2026-01-01T00:00:00.900000Z","level":"WARN","message":"something odd"}
{"timestamp":"2026-01-01T00:00:01.250000Z","level":"INFO","message":"node initialized","node":"b","seconds":0.8}
{"timestamp":"2026-01-01T00:00:01.300000Z","level":"INFO","message":"node initialized","node":"a","seconds":0.01}
"#;
        let t = Timeline::parse(log, spawned);
        assert!((t.starting.unwrap() - 0.1).abs() < 1e-9);
        assert!((t.reachable.unwrap() - 0.3).abs() < 1e-9);
        assert!((t.controllers.unwrap() - 0.31).abs() < 1e-9);
        assert!((t.first_init.unwrap() - 0.5).abs() < 1e-9);
        assert!((t.all_init.unwrap() - 1.25).abs() < 1e-9);
        assert_eq!(t.init_seconds, vec![0.12, 0.8]);
        assert_eq!(t.repeated_inits, 1);
        assert_eq!((t.warnings, t.errors), (1, 0));
        assert_eq!(t.first_problem.as_deref(), Some("something odd"));
    }

    #[test]
    fn log_follower_counts_distinct_nodes_across_partial_reads() {
        let dir = std::env::temp_dir().join(format!("ccm-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("ccm.log");
        let line = |n: &str| format!(r#"{{"level":"INFO","message":"node initialized","node":"{n}"}}"#);
        std::fs::write(
            &log,
            format!("{}\n{}\n{}", line("a"), line("a"), &line("b")[..20]),
        )
        .unwrap();
        let mut w = LogFollower::default();
        assert_eq!(w.poll(&log).unwrap(), 1, "the unfinished line is not read yet");
        assert!(!w.controllers_started());
        std::fs::write(
            &log,
            format!(
                "{}\n{}\n{}\n{}\n{}\n",
                line("a"),
                line("a"),
                line("b"),
                r#"{"message":"other","node":"c"}"#,
                r#"{"level":"INFO","message":"node controllers started"}"#
            ),
        )
        .unwrap();
        assert_eq!(w.poll(&log).unwrap(), 2);
        assert!(w.controllers_started());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
