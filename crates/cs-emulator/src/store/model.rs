//! Resource records.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use serde_json::{Map, Value};

/// Server power states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ServerStatus {
    Stopped,
    Starting,
    Running,
    Stopping,
    Paused,
    Unavailable,
}

impl ServerStatus {
    pub(crate) const NAMES: &'static str = "stopped, starting, running, stopping, paused, unavailable";

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ServerStatus::Stopped => "stopped",
            ServerStatus::Starting => "starting",
            ServerStatus::Running => "running",
            ServerStatus::Stopping => "stopping",
            ServerStatus::Paused => "paused",
            ServerStatus::Unavailable => "unavailable",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<ServerStatus> {
        Some(match s {
            "stopped" => ServerStatus::Stopped,
            "starting" => ServerStatus::Starting,
            "running" => ServerStatus::Running,
            "stopping" => ServerStatus::Stopping,
            "paused" => ServerStatus::Paused,
            "unavailable" => ServerStatus::Unavailable,
            _ => return None,
        })
    }

    /// A guest is (or may be) executing: resize is refused and edits count as live edits.
    pub(crate) fn guest_active(self) -> bool {
        matches!(
            self,
            ServerStatus::Starting | ServerStatus::Running | ServerStatus::Stopping | ServerStatus::Paused
        )
    }
}

/// `ip_v4_conf.conf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IpMode {
    Dhcp,
    Static,
    Manual,
}

impl IpMode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            IpMode::Dhcp => "dhcp",
            IpMode::Static => "static",
            IpMode::Manual => "manual",
        }
    }
}

/// IPv4 configuration of a public NIC. `addr` is the static address or the DHCP lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IpConf {
    pub(crate) mode: IpMode,
    pub(crate) addr: Option<Ipv4Addr>,
}

/// Public (with an optional IPv4 configuration) or private (VLAN).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NicKind {
    Public(Option<IpConf>),
    Vlan(String),
}

/// A server NIC.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Nic {
    pub(crate) mac: String,
    pub(crate) model: String,
    pub(crate) boot_order: Option<i64>,
    pub(crate) firewall_policy: Option<String>,
    pub(crate) kind: NicKind,
    pub(crate) ip_v6_conf: Value,
    pub(crate) ip_v6: Option<Ipv6Addr>,
}

impl Nic {
    /// The IPv4 address this NIC holds (static or leased), if any.
    pub(crate) fn address(&self) -> Option<Ipv4Addr> {
        match &self.kind {
            NicKind::Public(Some(IpConf {
                mode: IpMode::Dhcp | IpMode::Static,
                addr,
            })) => *addr,
            _ => None,
        }
    }
}

/// A drive in a server definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerDrive {
    pub(crate) drive: String,
    pub(crate) dev_channel: String,
    pub(crate) device: String,
    pub(crate) boot_order: Option<i64>,
}

/// A server.
#[derive(Clone, Debug)]
pub(crate) struct Server {
    pub(crate) uuid: String,
    pub(crate) loc: String,
    pub(crate) owner: String,
    pub(crate) seq: u64,
    pub(crate) name: String,
    pub(crate) cpu: u64,
    pub(crate) mem: u64,
    pub(crate) smp: u64,
    pub(crate) vnc_password: String,
    pub(crate) status: ServerStatus,
    /// Pending transition: the status reached at the instant.
    pub(crate) transition: Option<(ServerStatus, Instant)>,
    pub(crate) active_since: Option<jiff::Timestamp>,
    pub(crate) meta: BTreeMap<String, String>,
    pub(crate) tags: Vec<String>,
    pub(crate) nics: Vec<Nic>,
    pub(crate) drives: Vec<ServerDrive>,
    /// Passed-through fields (`context`, `cpu_type`, ...), defaults filled at creation.
    pub(crate) extra: Map<String, Value>,
}

impl Server {
    /// Sets the status now, cancelling any pending transition; `active_since` follows.
    pub(crate) fn set_status(&mut self, status: ServerStatus) {
        self.transition = None;
        if status == ServerStatus::Running && self.status != ServerStatus::Running {
            self.active_since = Some(jiff::Timestamp::now());
        }
        if status != ServerStatus::Running && status != ServerStatus::Paused {
            self.active_since = None;
        }
        self.status = status;
    }

    /// Moves to `via` now and to `to` at `at`.
    pub(crate) fn transition(&mut self, via: ServerStatus, to: ServerStatus, at: Instant) {
        self.set_status(via);
        self.transition = Some((to, at));
    }
}

/// Drive life-cycle phase; `Ready` shows as `mounted`/`unmounted` depending on server definitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DrivePhase {
    Creating(Instant),
    Ready,
    Resizing(Instant),
    CloningSrc(Instant),
    CloningDst(Instant),
    /// `unavailable` or `uploading`, kept until changed.
    Stuck(&'static str),
}

/// A drive.
#[derive(Clone, Debug)]
pub(crate) struct Drive {
    pub(crate) uuid: String,
    pub(crate) loc: String,
    pub(crate) owner: String,
    pub(crate) seq: u64,
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) media: String,
    pub(crate) storage_type: String,
    pub(crate) allow_multimount: bool,
    pub(crate) meta: BTreeMap<String, String>,
    pub(crate) tags: Vec<String>,
    pub(crate) phase: DrivePhase,
    /// Servers the drive was removed from, with the instant the detach completes.
    pub(crate) detaching: Vec<(String, Instant)>,
}

impl Drive {
    pub(crate) fn settle(&mut self, now: Instant) {
        match self.phase {
            DrivePhase::Creating(at)
            | DrivePhase::Resizing(at)
            | DrivePhase::CloningSrc(at)
            | DrivePhase::CloningDst(at)
                if at <= now =>
            {
                self.phase = DrivePhase::Ready;
            }
            _ => {}
        }
        self.detaching.retain(|(_, at)| *at > now);
    }

    pub(crate) fn start_detach(&mut self, server: &str, at: Instant) {
        self.detaching.retain(|(s, _)| s != server);
        self.detaching.push((server.to_owned(), at));
    }

    pub(crate) fn cancel_detach(&mut self, server: &str) {
        self.detaching.retain(|(s, _)| s != server);
    }

    /// The phase name when not ready (`creating`, `resizing`, ...).
    pub(crate) fn busy_state(&self) -> Option<&'static str> {
        match self.phase {
            DrivePhase::Ready => None,
            DrivePhase::Creating(_) => Some("creating"),
            DrivePhase::Resizing(_) => Some("resizing"),
            DrivePhase::CloningSrc(_) => Some("cloning_src"),
            DrivePhase::CloningDst(_) => Some("cloning_dst"),
            DrivePhase::Stuck(s) => Some(s),
        }
    }
}

/// A drive snapshot.
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    pub(crate) uuid: String,
    pub(crate) loc: String,
    pub(crate) owner: String,
    pub(crate) seq: u64,
    pub(crate) name: String,
    pub(crate) drive: String,
    pub(crate) meta: BTreeMap<String, String>,
    pub(crate) tags: Vec<String>,
    pub(crate) timestamp: jiff::Timestamp,
    /// `Some(at)` while `creating`.
    pub(crate) ready_at: Option<Instant>,
    pub(crate) allocated_size: Option<u64>,
}

/// A VLAN subscription.
#[derive(Clone, Debug)]
pub(crate) struct Vlan {
    pub(crate) uuid: String,
    pub(crate) loc: String,
    pub(crate) owner: String,
    pub(crate) seq: u64,
}
