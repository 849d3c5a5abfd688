//! The `cloudsigma://<server-uuid>` providerID.

/// The scheme prefix of every providerID this CCM sets or understands.
pub const PROVIDER_ID_PREFIX: &str = "cloudsigma://";

/// Why a `spec.providerID` is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderIdError {
    /// The providerID belongs to another cloud provider (or has no scheme).
    #[error("providerID {value:?} does not start with {PROVIDER_ID_PREFIX:?}")]
    WrongScheme {
        /// The providerID as found on the Node.
        value: String,
    },
    /// The part after the scheme is not a server UUID.
    #[error("providerID {value:?} does not name a server UUID after {PROVIDER_ID_PREFIX:?}")]
    MalformedUuid {
        /// The providerID as found on the Node.
        value: String,
    },
}

/// The server UUID (lower case) a providerID names.
///
/// Accepts `cloudsigma://<uuid>` with the UUID in the 8-4-4-4-12 hexadecimal form, in any case.
pub fn parse_provider_id(value: &str) -> Result<String, ProviderIdError> {
    let rest = value
        .strip_prefix(PROVIDER_ID_PREFIX)
        .ok_or_else(|| ProviderIdError::WrongScheme {
            value: value.to_owned(),
        })?;
    if is_uuid(rest) {
        Ok(rest.to_ascii_lowercase())
    } else {
        Err(ProviderIdError::MalformedUuid {
            value: value.to_owned(),
        })
    }
}

/// The providerID for a server UUID.
pub fn provider_id_for(server_uuid: &str) -> String {
    format!("{PROVIDER_ID_PREFIX}{}", server_uuid.to_ascii_lowercase())
}

/// True when `s` is a UUID in the canonical 8-4-4-4-12 hexadecimal form.
pub fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "5f0c7b7e-0000-4000-8000-000000000001";

    #[test]
    fn parses_our_provider_ids() {
        assert_eq!(parse_provider_id(&format!("cloudsigma://{UUID}")).unwrap(), UUID);
        assert_eq!(
            parse_provider_id("cloudsigma://5F0C7B7E-0000-4000-8000-00000000000A").unwrap(),
            "5f0c7b7e-0000-4000-8000-00000000000a"
        );
        assert_eq!(provider_id_for(UUID), format!("cloudsigma://{UUID}"));
    }

    #[test]
    fn rejects_foreign_and_malformed_ids() {
        for bad in [
            "",
            "aws:///i-123",
            "cloudsigma:/x",
            UUID,
            "CLOUDSIGMA://5f0c7b7e-0000-4000-8000-000000000001",
        ] {
            assert!(
                matches!(parse_provider_id(bad), Err(ProviderIdError::WrongScheme { .. })),
                "{bad}"
            );
        }
        for bad in [
            "cloudsigma://",
            "cloudsigma://not-a-uuid",
            "cloudsigma://5f0c7b7e-0000-4000-8000-00000000000",
            "cloudsigma://5f0c7b7e-0000-4000-8000-0000000000011",
            "cloudsigma://5f0c7b7e00004000800000000000000001",
            "cloudsigma://5f0c7b7e-0000-4000-8000-00000000000g",
            "cloudsigma:///5f0c7b7e-0000-4000-8000-000000000001",
            "cloudsigma://5f0c7b7e-0000-4000-8000-000000000001/",
        ] {
            let err = parse_provider_id(bad).unwrap_err();
            assert!(matches!(err, ProviderIdError::MalformedUuid { .. }), "{bad}");
            assert!(err.to_string().contains(bad), "the error names the value: {err}");
        }
    }
}
