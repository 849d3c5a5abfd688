//! Kubelet-style Node objects: registration (concurrent), expected results, checks and clean-up.

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{Node, NodeAddress};
use kube::{
    Api,
    api::{DeleteParams, ListParams, PostParams},
};
use serde_json::json;

use crate::{
    error::{Error, Result},
    fleet::{CPU_MHZ, MEM_MIB, REGION, Server},
};

/// The taint a kubelet with `--cloud-provider=external` registers with.
pub const UNINITIALIZED: &str = "node.cloudprovider.kubernetes.io/uninitialized";
/// The annotation a kubelet with `--node-ip` sets.
pub const PROVIDED_IP: &str = "alpha.kubernetes.io/provided-node-ip";
/// Label marking the Nodes this harness created, with their role (`ccm` or `floor`).
pub const ROLE_LABEL: &str = "bench.cloudsigma-k8s.dev/role";

/// How one Node registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Node name (the kubelet's hostname).
    pub name: String,
    /// `spec.providerID` set by the kubelet's `--provider-id` (as CAPI bootstrap configurations do).
    pub provider_id: Option<String>,
    /// The kubelet's `--node-ip` (annotation `alpha.kubernetes.io/provided-node-ip`).
    pub provided_ip: Option<Ipv4Addr>,
    /// The address the kubelet detected on its host and reports as `InternalIP`.
    pub kubelet_ip: Ipv4Addr,
    /// [`ROLE_LABEL`] value.
    pub role: &'static str,
}

/// True when Node `i` registers with a providerID (every 2nd, as with a kubelet `--provider-id`).
pub fn has_provider_id(i: usize) -> bool {
    i.is_multiple_of(2)
}

/// True when Node `i` registers with `provided-node-ip` (every 10th, its public address).
pub fn has_provided_ip(i: usize) -> bool {
    i.is_multiple_of(10)
}

/// The registrations for `servers` with role `role` and names prefixed by `prefix`, providerIDs per
/// [`has_provider_id`] and `provided-node-ip` per [`has_provided_ip`].
pub fn registrations(servers: &[Server], role: &'static str, prefix: &str) -> Vec<Registration> {
    servers
        .iter()
        .enumerate()
        .map(|(i, s)| Registration {
            name: format!("{prefix}{}", s.name),
            provider_id: has_provider_id(i).then(|| format!("cloudsigma://{}", s.uuid)),
            provided_ip: has_provided_ip(i).then_some(s.ip),
            kubelet_ip: s.ip,
            role,
        })
        .collect()
}

/// The Node a kubelet (v1.20, `--cloud-provider=external`) registers: the uninitialized taint, its
/// usual labels and annotations, `InternalIP` + `Hostname` addresses, capacity, node info and a Ready
/// condition (set at creation, as the kubelet does; nothing here makes it go stale).
pub fn kubelet_node(r: &Registration) -> Result<Node> {
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let condition = |type_: &str, status: &str, reason: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": format!("kubelet {reason}"),
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let mut annotations = json!({
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
    });
    if let Some(ip) = r.provided_ip {
        annotations[PROVIDED_IP] = json!(ip.to_string());
    }
    let mut node = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": r.name,
            "labels": {
                "kubernetes.io/hostname": r.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64", ROLE_LABEL: r.role,
            },
            "annotations": annotations,
        },
        "spec": { "taints": [{ "key": UNINITIALIZED, "value": "true", "effect": "NoSchedule" }] },
        "status": {
            "capacity": {"cpu": "2", "memory": "4025360Ki", "pods": "110", "ephemeral-storage": "51175Mi", "hugepages-2Mi": "0"},
            "allocatable": {"cpu": "2", "memory": "3922960Ki", "pods": "110", "ephemeral-storage": "47162Mi", "hugepages-2Mi": "0"},
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID"),
                condition("Ready", "True", "KubeletReady"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": r.kubelet_ip.to_string()},
                {"type": "Hostname", "address": r.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": format!("{:032x}", fxhash(&r.name)), "systemUUID": r.name, "bootID": r.name,
                "kernelVersion": "6.1.0-18-amd64", "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "containerd://1.6.20", "kubeletVersion": "v1.20.2",
                "kubeProxyVersion": "v1.20.2", "operatingSystem": "linux", "architecture": "amd64",
            },
        },
    });
    if let Some(pid) = &r.provider_id {
        node["spec"]["providerID"] = json!(pid);
    }
    serde_json::from_value(node).map_err(|e| Error::parse(format!("node {}", r.name), e.to_string()))
}

fn fxhash(s: &str) -> u128 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325_u128, |h, b| {
        (h ^ u128::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Creates the Nodes with `concurrency` requests in flight; returns them as created.
pub async fn create_all(api: &Api<Node>, regs: &[Registration], concurrency: usize) -> Result<Vec<Node>> {
    let nodes = regs.iter().map(kubelet_node).collect::<Result<Vec<_>>>()?;
    stream::iter(nodes)
        .map(|node| async move {
            let name = node.metadata.name.clone().unwrap_or_default();
            api.create(&PostParams::default(), &node)
                .await
                .map_err(|e| Error::kube(format!("create node {name}"), e))
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await
}

/// The Nodes with [`ROLE_LABEL`] `role` (or every harness Node when `role` is `None`).
pub async fn list(api: &Api<Node>, role: Option<&str>) -> Result<Vec<Node>> {
    let selector = role.map_or_else(|| ROLE_LABEL.to_owned(), |r| format!("{ROLE_LABEL}={r}"));
    Ok(api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| Error::kube(format!("list nodes {selector}"), e))?
        .items)
}

/// Deletes the harness Nodes (of `role`, or all of them) and waits until they are gone.
pub async fn delete_all(api: &Api<Node>, role: Option<&str>, timeout: Duration) -> Result<()> {
    let selector = role.map_or_else(|| ROLE_LABEL.to_owned(), |r| format!("{ROLE_LABEL}={r}"));
    api.delete_collection(&DeleteParams::default(), &ListParams::default().labels(&selector))
        .await
        .map_err(|e| Error::kube(format!("delete nodes {selector}"), e))?;
    let start = Instant::now();
    while !list(api, role).await?.is_empty() {
        if start.elapsed() > timeout {
            return Err(Error::Timeout {
                what: format!("nodes {selector} to be deleted"),
                after: timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// The addresses the ccm must write for a Node on a server with one public NIC `ip`.
pub fn expected_addresses(name: &str, ip: Ipv4Addr) -> Vec<NodeAddress> {
    vec![
        NodeAddress {
            type_: "ExternalIP".into(),
            address: ip.to_string(),
        },
        NodeAddress {
            type_: "Hostname".into(),
            address: name.to_owned(),
        },
    ]
}

/// The labels the ccm sets at initialization.
pub fn expected_labels() -> [(&'static str, String); 3] {
    [
        (
            "node.kubernetes.io/instance-type",
            format!("cpu-{CPU_MHZ}-mem-{MEM_MIB}"),
        ),
        ("topology.kubernetes.io/region", REGION.to_owned()),
        ("topology.kubernetes.io/zone", REGION.to_owned()),
    ]
}

/// True when the Node carries the taint `key`.
pub fn has_taint(node: &Node, key: &str) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| t.key == key))
}

/// What is wrong with `node` as an initialized Node of `server` (`None` when it is right).
pub fn initialization_problem(node: &Node, name: &str, server: &Server) -> Option<String> {
    if has_taint(node, UNINITIALIZED) {
        return Some(format!("{name} still has the uninitialized taint"));
    }
    let pid = node.spec.as_ref().and_then(|s| s.provider_id.as_deref());
    let want_pid = format!("cloudsigma://{}", server.uuid);
    if pid != Some(want_pid.as_str()) {
        return Some(format!("{name}: providerID {pid:?}, expected {want_pid}"));
    }
    let labels = node.metadata.labels.clone().unwrap_or_default();
    for (k, v) in expected_labels() {
        if labels.get(k) != Some(&v) {
            return Some(format!("{name}: label {k} = {:?}, expected {v}", labels.get(k)));
        }
    }
    addresses_problem(node, name, server.ip)
}

/// What is wrong with the addresses of `node` for a server at `ip` (`None` when they are right).
pub fn addresses_problem(node: &Node, name: &str, ip: Ipv4Addr) -> Option<String> {
    let got = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.clone())
        .unwrap_or_default();
    let want = expected_addresses(name, ip);
    (got != want).then(|| {
        let show = |a: &[NodeAddress]| {
            a.iter()
                .map(|a| format!("{}={}", a.type_, a.address))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!("{name}: addresses [{}], expected [{}]", show(&got), show(&want))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(n: usize) -> Vec<Server> {
        (0..n)
            .map(|i| Server {
                name: crate::fleet::server_name(i),
                uuid: format!("00000000-0000-4000-8000-{i:012}"),
                ip: crate::fleet::public_ip(i, 0).unwrap(),
            })
            .collect()
    }

    #[test]
    fn registrations_mix_provider_ids_and_provided_ips() {
        let regs = registrations(&servers(20), "ccm", "");
        assert_eq!(regs.iter().filter(|r| r.provider_id.is_some()).count(), 10);
        assert_eq!(regs.iter().filter(|r| r.provided_ip.is_some()).count(), 2);
        assert_eq!(regs[10].provided_ip, Some(Ipv4Addr::new(185, 10, 0, 11)));
        let floor = registrations(&servers(1), "floor", "floor-");
        assert_eq!(floor[0].name, "floor-bench-node-00000");
    }

    #[test]
    fn the_node_looks_like_a_kubelet_registration() {
        let regs = registrations(&servers(1), "ccm", "");
        let node = kubelet_node(&regs[0]).unwrap();
        assert!(has_taint(&node, UNINITIALIZED));
        assert_eq!(
            node.spec.as_ref().unwrap().provider_id.as_deref(),
            Some("cloudsigma://00000000-0000-4000-8000-000000000000")
        );
        let ann = node.metadata.annotations.clone().unwrap();
        assert_eq!(ann[PROVIDED_IP], "185.10.0.1");
        let status = node.status.clone().unwrap();
        assert_eq!(status.addresses.unwrap()[0].type_, "InternalIP");
        assert!(
            status
                .conditions
                .unwrap()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        );
        assert_eq!(node.metadata.labels.unwrap()[ROLE_LABEL], "ccm");
    }

    #[test]
    fn an_initialized_node_passes_and_each_defect_is_named() {
        let s = &servers(1)[0];
        let mut node = kubelet_node(&registrations(std::slice::from_ref(s), "ccm", "")[0]).unwrap();
        let name = s.name.as_str();
        assert!(
            initialization_problem(&node, name, s)
                .unwrap()
                .contains("uninitialized taint")
        );
        node.spec.as_mut().unwrap().taints = Some(vec![]);
        let labels = node.metadata.labels.as_mut().unwrap();
        for (k, v) in expected_labels() {
            labels.insert(k.to_owned(), v);
        }
        let problem = initialization_problem(&node, name, s).unwrap();
        assert!(
            problem.contains("addresses [InternalIP=185.10.0.1,Hostname=bench-node-00000]"),
            "{problem}"
        );
        node.status.as_mut().unwrap().addresses = Some(expected_addresses(name, s.ip));
        assert_eq!(initialization_problem(&node, name, s), None);
        node.metadata
            .labels
            .as_mut()
            .unwrap()
            .remove("topology.kubernetes.io/zone");
        assert!(
            initialization_problem(&node, name, s)
                .unwrap()
                .contains("topology.kubernetes.io/zone")
        );
    }
}
