//! Argument checks done before any CloudSigma call.

use crate::{
    Error, Result,
    csi::{
        VolumeCapability,
        volume_capability::{AccessType, access_mode::Mode},
    },
};

/// Longest CSI name accepted (the spec's 128-byte string limit).
pub const MAX_NAME_BYTES: usize = 128;

/// Checks a CO-chosen name (`CreateVolume`, `CreateSnapshot`): present, at most 128 bytes, none of
/// the control characters the spec bans (U+0000–U+0008, U+000B, U+000C, U+000E–U+001F, U+007F–U+009F).
pub fn name(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::InvalidArgument(format!("{field} is required")));
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(Error::InvalidArgument(format!(
            "{field} is {} bytes long; at most {MAX_NAME_BYTES} bytes are allowed",
            value.len()
        )));
    }
    let banned = |c: char| matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{7f}'..='\u{9f}');
    if value.chars().any(banned) {
        return Err(Error::InvalidArgument(format!(
            "{field} contains control characters"
        )));
    }
    Ok(())
}

/// Checks that a required id field is present.
pub fn required<'a>(field: &str, value: &'a str) -> Result<&'a str> {
    if value.is_empty() {
        Err(Error::InvalidArgument(format!("{field} is required")))
    } else {
        Ok(value)
    }
}

/// Whether `id` is a CloudSigma uuid (hyphenated form). Ids of any other form cannot name a drive,
/// server or snapshot, so the driver answers them without asking the API (csi-sanity's fake ids).
pub fn is_cloud_uuid(id: &str) -> bool {
    id.len() == 36 && uuid::Uuid::try_parse(id).is_ok()
}

/// The access modes a CloudSigma drive supports: one node at a time (a drive without
/// `allow_multimount` is attached to one server).
pub fn supported_mode(mode: Mode) -> bool {
    matches!(
        mode,
        Mode::SingleNodeWriter
            | Mode::SingleNodeReaderOnly
            | Mode::SingleNodeSingleWriter
            | Mode::SingleNodeMultiWriter
    )
}

/// Why a capability is not supported, or `None` when it is.
pub fn capability_problem(capability: &VolumeCapability) -> Option<String> {
    match &capability.access_type {
        None => return Some("volume capability has no access type (block or mount)".into()),
        Some(AccessType::Block(_) | AccessType::Mount(_)) => {}
    }
    let Some(access_mode) = &capability.access_mode else {
        return Some("volume capability has no access mode".into());
    };
    match Mode::try_from(access_mode.mode) {
        Ok(Mode::Unknown) | Err(_) => Some(format!("access mode {} is not a known mode", access_mode.mode)),
        Ok(mode) if !supported_mode(mode) => Some(format!(
            "access mode {} is not supported: a CloudSigma drive is attached to one node at a time",
            mode.as_str_name()
        )),
        Ok(_) => None,
    }
}

/// Checks a list of capabilities: at least one, each with an access type and a supported mode.
pub fn capabilities(field: &str, capabilities: &[VolumeCapability]) -> Result<()> {
    if capabilities.is_empty() {
        return Err(Error::InvalidArgument(format!("{field} is required")));
    }
    for capability in capabilities {
        if let Some(problem) = capability_problem(capability) {
            return Err(Error::InvalidArgument(format!("{field}: {problem}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csi::volume_capability::{AccessMode, BlockVolume, MountVolume};

    fn cap(mode: Mode, block: bool) -> VolumeCapability {
        VolumeCapability {
            access_type: Some(if block {
                AccessType::Block(BlockVolume {})
            } else {
                AccessType::Mount(MountVolume::default())
            }),
            access_mode: Some(AccessMode { mode: mode as i32 }),
        }
    }

    #[test]
    fn names_follow_the_spec_limits() {
        name("name", &"a".repeat(128)).unwrap();
        name("name", "pvc-ä-ok with space\ttab").unwrap();
        let e = name("name", &"a".repeat(129)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "name is 129 bytes long; at most 128 bytes are allowed"
        );
        assert_eq!(name("name", "").unwrap_err().to_string(), "name is required");
        for bad in ["a\u{0}b", "a\u{1b}b", "a\u{7f}", "a\u{85}"] {
            assert!(
                name("name", bad)
                    .unwrap_err()
                    .to_string()
                    .contains("control characters"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn only_hyphenated_uuids_are_cloud_ids() {
        assert!(is_cloud_uuid("7d6c1b2a-0000-4000-8000-0000000000a1"));
        for fake in [
            "fake-vol-id",
            "fake-vol-id-0123456789",
            "7d6c1b2a000040008000000000000a1",
            "",
            "x".repeat(36).as_str(),
        ] {
            assert!(!is_cloud_uuid(fake), "{fake}");
        }
    }

    #[test]
    fn capabilities_need_a_type_and_a_single_node_mode() {
        capabilities(
            "volume_capabilities",
            &[
                cap(Mode::SingleNodeWriter, false),
                cap(Mode::SingleNodeReaderOnly, true),
            ],
        )
        .unwrap();
        assert_eq!(
            capabilities("volume_capabilities", &[]).unwrap_err().to_string(),
            "volume_capabilities is required"
        );
        let e = capabilities("volume_capabilities", &[cap(Mode::MultiNodeMultiWriter, false)]).unwrap_err();
        assert!(
            e.to_string().contains("MULTI_NODE_MULTI_WRITER is not supported"),
            "{e}"
        );
        let mut no_type = cap(Mode::SingleNodeWriter, false);
        no_type.access_type = None;
        assert!(capability_problem(&no_type).unwrap().contains("no access type"));
        let mut no_mode = cap(Mode::SingleNodeWriter, false);
        no_mode.access_mode = None;
        assert!(capability_problem(&no_mode).unwrap().contains("no access mode"));
        let mut weird = cap(Mode::SingleNodeWriter, false);
        weird.access_mode = Some(AccessMode { mode: 99 });
        assert!(capability_problem(&weird).unwrap().contains("99"));
    }
}
