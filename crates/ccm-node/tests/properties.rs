//! Property tests of the node decisions: arbitrary Nodes, servers and annotations never panic, and the
//! invariants operators rely on always hold.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ccm_node::{
    NicFacts, PowerState, ServerFacts,
    decide::{
        UNINITIALIZED_TAINT, addresses::PROVIDED_NODE_IP_ANNOTATION, desired_addresses, plan_initialization,
        refreshed_addresses,
    },
    parse_provider_id,
};
use k8s_openapi::{
    api::core::v1::{Node, NodeAddress, NodeSpec, NodeStatus, Taint},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use proptest::prelude::*;

fn nic() -> impl Strategy<Value = NicFacts> {
    (
        any::<bool>(),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u128>()),
    )
        .prop_map(|(vlan, v4, v6)| NicFacts {
            vlan,
            ipv4: v4.map(Ipv4Addr::from),
            ipv6: v6.map(Ipv6Addr::from),
        })
}

fn server() -> impl Strategy<Value = ServerFacts> {
    (
        proptest::collection::vec(nic(), 0..5),
        any::<u64>(),
        any::<u64>(),
        0u8..3,
        "[a-z0-9-]{0,20}",
    )
        .prop_map(|(nics, cpu, mem, power, name)| ServerFacts {
            uuid: "5f0c7b7e-0000-4000-8000-000000000001".into(),
            name,
            cpu_mhz: cpu,
            mem_bytes: mem,
            power: [PowerState::Running, PowerState::Stopped, PowerState::Other][power as usize],
            nics,
        })
}

fn address() -> impl Strategy<Value = NodeAddress> {
    (
        prop_oneof![
            Just("InternalIP"),
            Just("ExternalIP"),
            Just("Hostname"),
            Just("InternalDNS")
        ],
        prop_oneof![
            any::<u32>().prop_map(|v| Ipv4Addr::from(v).to_string()),
            any::<u128>().prop_map(|v| Ipv6Addr::from(v).to_string()),
            "[a-z0-9.-]{0,12}"
        ],
    )
        .prop_map(|(t, a)| NodeAddress {
            type_: t.into(),
            address: a,
        })
}

fn node() -> impl Strategy<Value = Node> {
    (
        proptest::collection::vec(address(), 0..6),
        proptest::option::of(prop_oneof![
            any::<u32>().prop_map(|v| Ipv4Addr::from(v).to_string()),
            (any::<u32>(), any::<u128>()).prop_map(|(a, b)| format!(
                "{},{}",
                Ipv4Addr::from(a),
                Ipv6Addr::from(b)
            )),
            ".{0,40}"
        ]),
        proptest::collection::vec("[a-z./-]{1,30}", 0..4),
    )
        .prop_map(|(addresses, provided, extra_taints)| {
            let mut taints: Vec<Taint> = extra_taints
                .into_iter()
                .map(|k| Taint {
                    key: k,
                    effect: "NoSchedule".into(),
                    ..Taint::default()
                })
                .collect();
            taints.push(Taint {
                key: UNINITIALIZED_TAINT.into(),
                effect: "NoSchedule".into(),
                ..Taint::default()
            });
            Node {
                metadata: ObjectMeta {
                    name: Some("n".into()),
                    annotations: provided.map(|p| [(PROVIDED_NODE_IP_ANNOTATION.to_owned(), p)].into()),
                    ..ObjectMeta::default()
                },
                spec: Some(NodeSpec {
                    taints: Some(taints),
                    ..NodeSpec::default()
                }),
                status: Some(NodeStatus {
                    addresses: Some(addresses),
                    ..NodeStatus::default()
                }),
            }
        })
}

proptest! {
    #[test]
    fn addresses_are_deterministic_unique_and_never_empty_of_ips(n in node(), s in server()) {
        let first = desired_addresses(&n, &s);
        prop_assert_eq!(&first, &desired_addresses(&n, &s));
        if let Ok(list) = first {
            let ips: Vec<IpAddr> = list.iter().filter(|a| a.type_ != "Hostname").map(|a| a.address.parse().unwrap()).collect();
            prop_assert!(!ips.is_empty(), "an Ok list always has an IP");
            let mut dedup = ips.clone();
            dedup.sort();
            dedup.dedup();
            prop_assert_eq!(dedup.len(), ips.len(), "no IP twice");
            // types are grouped in the documented order
            let order: Vec<usize> = list.iter().map(|a| match a.type_.as_str() {
                "InternalIP" => 0, "ExternalIP" => 1, _ => 2 }).collect();
            prop_assert!(order.windows(2).all(|w| w[0] <= w[1]), "{:?}", list);
        }
    }

    #[test]
    fn initialization_never_keeps_the_taint_and_never_drops_others(n in node(), s in server(), region in "[a-z]{2,5}") {
        if let Ok(plan) = plan_initialization(&n, &s, &region) {
            prop_assert!(!plan.taints.iter().any(|t| t.key == UNINITIALIZED_TAINT));
            let before: Vec<&Taint> = n.spec.as_ref().unwrap().taints.as_ref().unwrap().iter()
                .filter(|t| t.key != UNINITIALIZED_TAINT && t.key != "node.cloudprovider.kubernetes.io/shutdown").collect();
            for t in before {
                prop_assert!(plan.taints.contains(t), "taint {} dropped", t.key);
            }
            prop_assert!(!plan.addresses.is_empty());
        }
    }

    #[test]
    fn refresh_never_writes_for_a_silent_server(n in node(), mut s in server()) {
        for nic in &mut s.nics { nic.ipv4 = None; nic.ipv6 = None; }
        prop_assert_eq!(refreshed_addresses(&n, &s).ok().flatten(), None);
    }

    #[test]
    fn provider_id_parsing_never_panics_and_roundtrips(text in ".{0,80}", uuid in "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}") {
        let _ = parse_provider_id(&text);
        let parsed = parse_provider_id(&format!("cloudsigma://{uuid}")).unwrap();
        prop_assert_eq!(parsed, uuid.to_ascii_lowercase());
    }
}
