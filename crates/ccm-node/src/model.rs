//! What the node decisions need to know about a CloudSigma server, independent of the API types.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The facts about one server that node decisions use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFacts {
    /// Server UUID (lower case).
    pub uuid: String,
    /// Server name.
    pub name: String,
    /// CPU in MHz.
    pub cpu_mhz: u64,
    /// Memory in bytes.
    pub mem_bytes: u64,
    /// Power state.
    pub power: PowerState,
    /// NICs in the order the guest sees them.
    pub nics: Vec<NicFacts>,
}

/// A server's power state as far as node decisions care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerState {
    /// `running`.
    Running,
    /// `stopped`: the VM is shut down (the node gets the shutdown taint).
    Stopped,
    /// `starting`, `stopping`, `paused`, `unavailable` or a status this CCM does not know.
    Other,
}

/// One NIC of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicFacts {
    /// A private (VLAN) NIC: its addresses are assigned inside the guest and the API does not show them.
    pub vlan: bool,
    /// The IPv4 address the NIC has at run time (absent when the server is not running).
    pub ipv4: Option<Ipv4Addr>,
    /// The IPv6 address the NIC has at run time.
    pub ipv6: Option<Ipv6Addr>,
}

impl ServerFacts {
    /// True when at least one NIC is a VLAN NIC.
    pub fn has_vlan_nic(&self) -> bool {
        self.nics.iter().any(|n| n.vlan)
    }
}
