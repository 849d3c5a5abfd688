//! Labels set at initialization: instance type, region and zone.

use std::collections::BTreeMap;

use crate::ServerFacts;

/// `node.kubernetes.io/instance-type`.
pub const INSTANCE_TYPE_LABEL: &str = "node.kubernetes.io/instance-type";
/// `topology.kubernetes.io/region`.
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";
/// `topology.kubernetes.io/zone`. CloudSigma has no zones inside a location, so the zone is the region.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

const MIB: u64 = 1024 * 1024;

/// A label value that Kubernetes would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "label {key}={value:?} is not a valid Kubernetes label value (at most 63 characters: letters, digits, '-', '_', '.', starting and ending with a letter or digit)"
)]
pub struct LabelError {
    /// The label key.
    pub key: String,
    /// The refused value.
    pub value: String,
}

/// The instance type of a server: `cpu-<MHz>-mem-<MiB>` (memory rounded down to whole MiB).
pub fn instance_type(cpu_mhz: u64, mem_bytes: u64) -> String {
    format!("cpu-{cpu_mhz}-mem-{}", mem_bytes / MIB)
}

/// The labels this CCM owns on a Node of this server in this region.
pub fn desired_labels(server: &ServerFacts, region: &str) -> Result<BTreeMap<String, String>, LabelError> {
    let labels = BTreeMap::from([
        (
            INSTANCE_TYPE_LABEL.to_owned(),
            instance_type(server.cpu_mhz, server.mem_bytes),
        ),
        (REGION_LABEL.to_owned(), region.to_owned()),
        (ZONE_LABEL.to_owned(), region.to_owned()),
    ]);
    for (key, value) in &labels {
        if !valid_label_value(value) {
            return Err(LabelError {
                key: key.clone(),
                value: value.clone(),
            });
        }
    }
    Ok(labels)
}

/// True when `v` is a valid Kubernetes label value.
pub fn valid_label_value(v: &str) -> bool {
    if v.is_empty() {
        return true;
    }
    let bytes = v.as_bytes();
    v.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PowerState;

    fn server(cpu: u64, mem: u64) -> ServerFacts {
        ServerFacts {
            uuid: "u".into(),
            name: "n".into(),
            cpu_mhz: cpu,
            mem_bytes: mem,
            power: PowerState::Running,
            nics: vec![],
        }
    }

    #[test]
    fn instance_type_uses_mhz_and_mib() {
        assert_eq!(instance_type(2000, 4 * 1024 * MIB), "cpu-2000-mem-4096");
        assert_eq!(instance_type(1000, 536_870_912), "cpu-1000-mem-512");
        assert_eq!(instance_type(2500, 3 * MIB + 17), "cpu-2500-mem-3");
    }

    #[test]
    fn region_and_zone_are_the_region() {
        let l = desired_labels(&server(2000, 2048 * MIB), "zrh").unwrap();
        assert_eq!(l[INSTANCE_TYPE_LABEL], "cpu-2000-mem-2048");
        assert_eq!(l[REGION_LABEL], "zrh");
        assert_eq!(l[ZONE_LABEL], "zrh");
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn invalid_region_is_refused_with_the_label_named() {
        let e = desired_labels(&server(1, 1), "zurich lake").unwrap_err();
        assert_eq!(e.key, REGION_LABEL);
        assert!(e.to_string().contains("zurich lake"));
        assert!(desired_labels(&server(1, 1), &"a".repeat(64)).is_err());
        assert!(desired_labels(&server(1, 1), "-zrh").is_err());
    }
}
