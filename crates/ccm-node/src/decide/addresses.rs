//! Which addresses a Node should carry.
//!
//! Rules (see docs/ccm.md):
//! - Cloud addresses are the run-time addresses of the server's NICs (`nics[].runtime.ip_v4`/`ip_v6`):
//!   private ones (RFC 1918, 100.64.0.0/10, fc00::/7) are `InternalIP`, other global ones `ExternalIP`;
//!   loopback, link-local, unspecified and multicast addresses are ignored.
//! - VLAN NICs carry guest-assigned addresses the API does not show: when the server has a VLAN NIC, the
//!   private `InternalIP`s already on the Node (written by the kubelet) are kept, and a private provided
//!   node IP is accepted as the VLAN address.
//! - `alpha.kubernetes.io/provided-node-ip` (one IP, or an IPv4,IPv6 pair): every IP must be among the
//!   addresses, else the Node is not initialized; provided IPs go first within their type.
//! - `Hostname` comes from the kubelet, else the server name.
//! - Order is deterministic: InternalIPs, ExternalIPs, Hostnames; within a type provided IPs first, then
//!   cloud IPv4 in NIC order, cloud IPv6 in NIC order, then kept kubelet addresses in their order.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use k8s_openapi::api::core::v1::{Node, NodeAddress};

use crate::{PowerState, ServerFacts};

/// The annotation a kubelet started with `--node-ip` writes.
pub const PROVIDED_NODE_IP_ANNOTATION: &str = "alpha.kubernetes.io/provided-node-ip";
/// Address type `InternalIP`.
pub const INTERNAL_IP: &str = "InternalIP";
/// Address type `ExternalIP`.
pub const EXTERNAL_IP: &str = "ExternalIP";
/// Address type `Hostname`.
pub const HOSTNAME: &str = "Hostname";

/// Why the addresses of a Node cannot be decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The provided-node-ip annotation is not one IP or an IPv4,IPv6 pair.
    #[error("annotation {PROVIDED_NODE_IP_ANNOTATION}={value:?} is not one IP address or an IPv4,IPv6 pair")]
    InvalidProvidedIp {
        /// The annotation value.
        value: String,
    },
    /// A provided node IP is not among the server's addresses.
    #[error(
        "provided node IP {ip} (annotation {PROVIDED_NODE_IP_ANNOTATION}) is not among the addresses of server {server}: [{}]",
        seen.join(", ")
    )]
    ProvidedIpNotFound {
        /// The provided IP that was not found.
        ip: IpAddr,
        /// The server UUID.
        server: String,
        /// The addresses that were seen.
        seen: Vec<String>,
    },
    /// Neither the cloud nor the kubelet gave the Node any IP address.
    #[error(
        "server {server} has no IP address for the node (no running NIC with an address, no kubelet-reported address on a VLAN NIC; status {power:?})"
    )]
    NoIpAddress {
        /// The server UUID.
        server: String,
        /// The server's power state.
        power: PowerState,
    },
}

/// The address type of a cloud IP, or `None` for addresses a Node should not carry.
pub fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_loopback()
                || v4.is_unspecified()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
            {
                None
            } else if is_private_v4(v4) {
                Some(INTERNAL_IP)
            } else {
                Some(EXTERNAL_IP)
            }
        }
        IpAddr::V6(v6) => {
            if v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() || is_link_local_v6(v6) {
                None
            } else if is_unique_local_v6(v6) {
                Some(INTERNAL_IP)
            } else {
                Some(EXTERNAL_IP)
            }
        }
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private() || (a == 100 && (64..128).contains(&b))
}

fn is_unique_local_v6(ip: Ipv6Addr) -> bool {
    (ip.segments()[0] & 0xfe00) == 0xfc00
}

fn is_link_local_v6(ip: Ipv6Addr) -> bool {
    (ip.segments()[0] & 0xffc0) == 0xfe80
}

/// The IPs of the provided-node-ip annotation, if the Node has one.
pub fn provided_node_ips(node: &Node) -> Result<Vec<IpAddr>, AddressError> {
    let Some(value) = node
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PROVIDED_NODE_IP_ANNOTATION))
    else {
        return Ok(Vec::new());
    };
    let invalid = || AddressError::InvalidProvidedIp { value: value.clone() };
    let ips = value
        .split(',')
        .map(|s| s.trim().parse::<IpAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| invalid())?;
    match ips.as_slice() {
        [_] => Ok(ips),
        [a, b] if a.is_ipv4() != b.is_ipv4() => Ok(ips),
        _ => Err(invalid()),
    }
}

/// The addresses the Node should carry, given its server. Errors keep the Node as it is.
pub fn desired_addresses(node: &Node, server: &ServerFacts) -> Result<Vec<NodeAddress>, AddressError> {
    // (ip, type) in preference order, without duplicates.
    let mut ips: Vec<(IpAddr, &'static str)> = Vec::new();
    let push = |ips: &mut Vec<(IpAddr, &'static str)>, ip: IpAddr, ty: &'static str| {
        if !ips.iter().any(|(seen, _)| *seen == ip) {
            ips.push((ip, ty));
        }
    };
    let cloud = server
        .nics
        .iter()
        .filter_map(|n| n.ipv4.map(IpAddr::V4))
        .chain(server.nics.iter().filter_map(|n| n.ipv6.map(IpAddr::V6)));
    for ip in cloud {
        if let Some(ty) = classify(ip) {
            push(&mut ips, ip, ty);
        }
    }
    let current = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_deref())
        .unwrap_or(&[]);
    if server.has_vlan_nic() {
        for a in current.iter().filter(|a| a.type_ == INTERNAL_IP) {
            if let Ok(ip) = a.address.parse::<IpAddr>()
                && classify(ip) == Some(INTERNAL_IP)
            {
                push(&mut ips, ip, INTERNAL_IP);
            }
        }
    }

    let provided = provided_node_ips(node)?;
    for ip in &provided {
        if ips.iter().any(|(seen, _)| seen == ip) {
            continue;
        }
        if server.has_vlan_nic() && classify(*ip) == Some(INTERNAL_IP) {
            push(&mut ips, *ip, INTERNAL_IP);
            continue;
        }
        return Err(AddressError::ProvidedIpNotFound {
            ip: *ip,
            server: server.uuid.clone(),
            seen: ips.iter().map(|(ip, _)| ip.to_string()).collect(),
        });
    }
    if ips.is_empty() {
        return Err(AddressError::NoIpAddress {
            server: server.uuid.clone(),
            power: server.power,
        });
    }

    let mut out = Vec::new();
    for ty in [INTERNAL_IP, EXTERNAL_IP] {
        let of_type = ips.iter().filter(|(_, t)| *t == ty);
        let first = of_type.clone().filter(|(ip, _)| provided.contains(ip));
        let rest = of_type.filter(|(ip, _)| !provided.contains(ip));
        out.extend(first.chain(rest).map(|(ip, _)| address(ty, ip.to_string())));
    }
    let mut hostnames: Vec<&str> = Vec::new();
    for a in current
        .iter()
        .filter(|a| a.type_ == HOSTNAME && !a.address.is_empty())
    {
        if !hostnames.contains(&a.address.as_str()) {
            hostnames.push(&a.address);
        }
    }
    if hostnames.is_empty() && !server.name.is_empty() {
        hostnames.push(&server.name);
    }
    out.extend(hostnames.into_iter().map(|h| address(HOSTNAME, h.to_owned())));
    Ok(out)
}

/// For the periodic refresh of an initialized Node: `Some(list)` when its addresses must be rewritten,
/// `None` when they are already right or when the server reports no address now (a stopped server:
/// its Node keeps what it has, never an empty list).
pub fn refreshed_addresses(
    node: &Node,
    server: &ServerFacts,
) -> Result<Option<Vec<NodeAddress>>, AddressError> {
    let reports_any = server.nics.iter().any(|n| n.ipv4.is_some() || n.ipv6.is_some());
    if server.power != PowerState::Running || !reports_any {
        return Ok(None);
    }
    let desired = desired_addresses(node, server)?;
    let current = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_deref())
        .unwrap_or(&[]);
    Ok((current != desired.as_slice()).then_some(desired))
}

fn address(ty: &str, address: String) -> NodeAddress {
    NodeAddress {
        type_: ty.to_owned(),
        address,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{api::core::v1::NodeStatus, apimachinery::pkg::apis::meta::v1::ObjectMeta};

    use super::*;
    use crate::NicFacts;

    fn public(v4: &str) -> NicFacts {
        NicFacts {
            vlan: false,
            ipv4: Some(v4.parse().unwrap()),
            ipv6: None,
        }
    }
    fn public6(v4: &str, v6: &str) -> NicFacts {
        NicFacts {
            vlan: false,
            ipv4: Some(v4.parse().unwrap()),
            ipv6: Some(v6.parse().unwrap()),
        }
    }
    fn vlan() -> NicFacts {
        NicFacts {
            vlan: true,
            ipv4: None,
            ipv6: None,
        }
    }
    fn server(nics: Vec<NicFacts>) -> ServerFacts {
        ServerFacts {
            uuid: "s-1".into(),
            name: "worker-a".into(),
            cpu_mhz: 2000,
            mem_bytes: 1 << 31,
            power: PowerState::Running,
            nics,
        }
    }
    fn node(addrs: &[(&str, &str)], provided: Option<&str>) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some("worker-a".into()),
                annotations: provided
                    .map(|p| [(PROVIDED_NODE_IP_ANNOTATION.to_owned(), p.to_owned())].into()),
                ..ObjectMeta::default()
            },
            status: Some(NodeStatus {
                addresses: Some(addrs.iter().map(|(t, a)| address(t, (*a).to_owned())).collect()),
                ..NodeStatus::default()
            }),
            ..Node::default()
        }
    }
    fn pairs(v: &[NodeAddress]) -> Vec<(String, String)> {
        v.iter().map(|a| (a.type_.clone(), a.address.clone())).collect()
    }
    fn expect(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(t, a)| ((*t).to_owned(), (*a).to_owned()))
            .collect()
    }

    #[test]
    fn classification_uses_exact_ranges() {
        for (ip, want) in [
            ("10.1.2.3", Some(INTERNAL_IP)),
            ("172.16.0.1", Some(INTERNAL_IP)),
            ("172.31.255.254", Some(INTERNAL_IP)),
            ("172.32.0.1", Some(EXTERNAL_IP)), // the Go peer's `172.` prefix called this internal
            ("172.15.0.1", Some(EXTERNAL_IP)),
            ("192.168.1.1", Some(INTERNAL_IP)),
            ("100.64.0.1", Some(INTERNAL_IP)),
            ("100.127.255.1", Some(INTERNAL_IP)),
            ("100.128.0.1", Some(EXTERNAL_IP)),
            ("203.0.113.7", Some(EXTERNAL_IP)),
            ("fd00::1", Some(INTERNAL_IP)),
            ("fc00::1", Some(INTERNAL_IP)),
            ("2001:db8::1", Some(EXTERNAL_IP)),
            ("127.0.0.1", None),
            ("169.254.1.1", None),
            ("0.0.0.0", None),
            ("fe80::1", None),
            ("::1", None),
            ("224.0.0.1", None),
        ] {
            assert_eq!(classify(ip.parse().unwrap()), want, "{ip}");
        }
    }

    #[test]
    fn public_only_server_gets_external_and_server_name() {
        let got = desired_addresses(&node(&[], None), &server(vec![public("203.0.113.7")])).unwrap();
        assert_eq!(
            pairs(&got),
            expect(&[(EXTERNAL_IP, "203.0.113.7"), (HOSTNAME, "worker-a")])
        );
    }

    #[test]
    fn kubelet_hostname_wins_over_server_name() {
        let n = node(
            &[(HOSTNAME, "host-from-kubelet"), (INTERNAL_IP, "198.51.100.1")],
            None,
        );
        let got = desired_addresses(&n, &server(vec![public("203.0.113.7")])).unwrap();
        // without a VLAN NIC the kubelet's InternalIP is not kept
        assert_eq!(
            pairs(&got),
            expect(&[(EXTERNAL_IP, "203.0.113.7"), (HOSTNAME, "host-from-kubelet")])
        );
    }

    #[test]
    fn dual_stack_and_multiple_nics_order() {
        let s = server(vec![
            public6("203.0.113.7", "2001:db8::7"),
            public("10.0.0.5"),
            public("198.51.100.9"),
        ]);
        let got = desired_addresses(&node(&[], None), &s).unwrap();
        assert_eq!(
            pairs(&got),
            expect(&[
                (INTERNAL_IP, "10.0.0.5"),
                (EXTERNAL_IP, "203.0.113.7"),
                (EXTERNAL_IP, "198.51.100.9"),
                (EXTERNAL_IP, "2001:db8::7"),
                (HOSTNAME, "worker-a"),
            ])
        );
    }

    #[test]
    fn vlan_internal_ips_from_the_kubelet_are_kept() {
        let n = node(
            &[(INTERNAL_IP, "192.168.10.4"), (HOSTNAME, "worker-a")],
            Some("192.168.10.4"),
        );
        let got = desired_addresses(&n, &server(vec![public("203.0.113.7"), vlan()])).unwrap();
        assert_eq!(
            pairs(&got),
            expect(&[
                (INTERNAL_IP, "192.168.10.4"),
                (EXTERNAL_IP, "203.0.113.7"),
                (HOSTNAME, "worker-a")
            ])
        );
    }

    #[test]
    fn provided_private_ip_on_a_vlan_server_is_accepted_without_kubelet_address() {
        let n = node(&[], Some("192.168.10.4"));
        let got = desired_addresses(&n, &server(vec![vlan(), public("203.0.113.7")])).unwrap();
        assert_eq!(
            pairs(&got)[0],
            (INTERNAL_IP.to_owned(), "192.168.10.4".to_owned())
        );
    }

    #[test]
    fn provided_ip_goes_first_within_its_type() {
        let s = server(vec![public("203.0.113.7"), public("198.51.100.9")]);
        let got = desired_addresses(&node(&[], Some("198.51.100.9")), &s).unwrap();
        assert_eq!(
            pairs(&got),
            expect(&[
                (EXTERNAL_IP, "198.51.100.9"),
                (EXTERNAL_IP, "203.0.113.7"),
                (HOSTNAME, "worker-a")
            ])
        );
    }

    #[test]
    fn dual_stack_provided_pair() {
        let s = server(vec![
            public6("203.0.113.7", "2001:db8::7"),
            public6("198.51.100.9", "2001:db8::9"),
        ]);
        let got = desired_addresses(&node(&[], Some("198.51.100.9, 2001:db8::9")), &s).unwrap();
        assert_eq!(
            pairs(&got)[..4],
            expect(&[
                (EXTERNAL_IP, "198.51.100.9"),
                (EXTERNAL_IP, "2001:db8::9"),
                (EXTERNAL_IP, "203.0.113.7"),
                (EXTERNAL_IP, "2001:db8::7"),
            ])[..]
        );
    }

    #[test]
    fn provided_ip_not_found_names_ip_and_addresses_seen() {
        let err = desired_addresses(&node(&[], Some("10.9.9.9")), &server(vec![public("203.0.113.7")]))
            .unwrap_err();
        assert_eq!(
            err,
            AddressError::ProvidedIpNotFound {
                ip: "10.9.9.9".parse().unwrap(),
                server: "s-1".into(),
                seen: vec!["203.0.113.7".into()]
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("10.9.9.9") && text.contains("203.0.113.7"),
            "{text}"
        );
        // a public provided IP is never taken on trust, even with a VLAN NIC
        assert!(
            desired_addresses(
                &node(&[], Some("198.51.100.1")),
                &server(vec![vlan(), public("203.0.113.7")])
            )
            .is_err()
        );
    }

    #[test]
    fn invalid_provided_annotations() {
        for bad in [
            "",
            "not-an-ip",
            "10.0.0.1,10.0.0.2",
            "2001:db8::1,2001:db8::2",
            "10.0.0.1,2001:db8::1,10.0.0.2",
        ] {
            let err =
                desired_addresses(&node(&[], Some(bad)), &server(vec![public("10.0.0.1")])).unwrap_err();
            assert!(
                matches!(err, AddressError::InvalidProvidedIp { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn no_ip_at_all_is_an_error_not_an_empty_list() {
        let mut s = server(vec![NicFacts {
            vlan: false,
            ipv4: None,
            ipv6: None,
        }]);
        s.power = PowerState::Stopped;
        let err = desired_addresses(&node(&[(HOSTNAME, "worker-a")], None), &s).unwrap_err();
        assert!(matches!(err, AddressError::NoIpAddress { .. }));
    }

    #[test]
    fn same_inputs_same_output() {
        let s = server(vec![
            public6("203.0.113.7", "2001:db8::7"),
            vlan(),
            public("10.0.0.5"),
        ]);
        let n = node(
            &[(INTERNAL_IP, "192.168.0.2"), (HOSTNAME, "h")],
            Some("192.168.0.2"),
        );
        let first = desired_addresses(&n, &s).unwrap();
        for _ in 0..10 {
            assert_eq!(desired_addresses(&n, &s).unwrap(), first);
        }
    }

    #[test]
    fn refresh_writes_only_on_change_and_never_for_a_silent_server() {
        let s = server(vec![public("203.0.113.7")]);
        let n = node(&[(EXTERNAL_IP, "203.0.113.7"), (HOSTNAME, "worker-a")], None);
        assert_eq!(refreshed_addresses(&n, &s).unwrap(), None);
        let moved = server(vec![public("203.0.113.8")]);
        let got = refreshed_addresses(&n, &moved).unwrap().unwrap();
        assert_eq!(
            pairs(&got),
            expect(&[(EXTERNAL_IP, "203.0.113.8"), (HOSTNAME, "worker-a")])
        );
        let mut stopped = server(vec![NicFacts {
            vlan: false,
            ipv4: None,
            ipv6: None,
        }]);
        stopped.power = PowerState::Stopped;
        assert_eq!(refreshed_addresses(&n, &stopped).unwrap(), None);
    }
}
