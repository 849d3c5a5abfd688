//! Syntax checks of names, emails and region codes. Each returns what is wrong as a phrase that reads
//! after the value ("... is not ..."), or `Ok(())`.

/// A DNS-1123 label: 1-63 characters of `a-z`, `0-9` and `-`, starting and ending alphanumeric. Used
/// for cluster names (they end up in object names, label values and the leader-election Lease name)
/// and namespaces.
pub(crate) fn dns_label(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > 63 {
        return Err(format!(
            "is {} characters long; at most 63 are allowed",
            value.len()
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "contains {c:?}; only lower-case letters, digits and '-' are allowed"
        ));
    }
    if value.starts_with('-') || value.ends_with('-') {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

/// A DNS-1123 subdomain (object names such as Secrets): dot-separated DNS labels, at most 253 characters.
pub(crate) fn dns_subdomain(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > 253 {
        return Err(format!(
            "is {} characters long; at most 253 are allowed",
            value.len()
        ));
    }
    for label in value.split('.') {
        dns_label(label).map_err(|e| format!("has the part {label:?}, which {e}"))?;
    }
    Ok(())
}

/// A key of a Secret's `data`: `-`, `_`, `.` and alphanumerics, at most 253 characters.
pub(crate) fn secret_key(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 253 {
        return Err("must be 1-253 characters long".into());
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "contains {c:?}; only letters, digits, '-', '_' and '.' are allowed"
        ));
    }
    Ok(())
}

/// A label value: at most 63 characters of alphanumerics, `-`, `_`, `.`, starting and ending
/// alphanumeric (empty is allowed by Kubernetes but never useful here).
pub(crate) fn label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 63 {
        return Err("must be 1-63 characters long".into());
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "contains {c:?}; only letters, digits, '-', '_' and '.' are allowed"
        ));
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alnum(value.chars().next()) || !alnum(value.chars().last()) {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

/// A CloudSigma location code, the same rule `cs-auth` applies before any request (non-empty, at most
/// 63 characters of `a-z`, `0-9`, `-`, not starting or ending with `-`). Callers lower-case first.
pub(crate) fn region(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > 63 {
        return Err("is longer than 63 characters".into());
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "contains {c:?}; a location code has only letters, digits and '-' (e.g. zrh, fra, next)"
        ));
    }
    if value.starts_with('-') || value.ends_with('-') {
        return Err("must not start or end with '-'".into());
    }
    Ok(())
}

/// Characters that would need quoting in the local part of an address (RFC 5322) and never appear in
/// the account emails CloudSigma accepts.
const LOCAL_SPECIALS: &[char] = &['(', ')', '<', '>', '[', ']', '\\', ',', ';', ':', '"', '@'];

/// One plausible email address: exactly one `@`; a local part of 1-64 characters without whitespace,
/// control characters or RFC 5322 specials; a domain of dot-separated labels (letters, digits and `-`,
/// not starting or ending with `-`) with at least one dot; at most 254 characters in all.
pub(crate) fn email(value: &str) -> Result<(), String> {
    if value.chars().count() > 254 {
        return Err("is longer than 254 characters".into());
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace or control characters".into());
    }
    let mut parts = value.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(if value.contains('@') {
            "has more than one '@'".into()
        } else {
            "has no '@'".into()
        });
    };
    if local.is_empty() {
        return Err("has nothing before the '@'".into());
    }
    if local.len() > 64 {
        return Err("has more than 64 characters before the '@'".into());
    }
    if let Some(c) = local.chars().find(|c| LOCAL_SPECIALS.contains(c)) {
        return Err(format!("has {c:?} before the '@'"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("has a misplaced '.' before the '@'".into());
    }
    if domain.is_empty() {
        return Err("has nothing after the '@'".into());
    }
    if !domain.contains('.') {
        return Err(format!("has a domain without a dot ({domain:?})"));
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(format!("has an empty part in the domain {domain:?}"));
        }
        if let Some(c) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
            return Err(format!(
                "has {c:?} in the domain (letters, digits, '-' and '.' only; use punycode for IDNs)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') || label.len() > 63 {
            return Err(format!("has an invalid domain part {label:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in [
            "owner@example.com",
            "first.last+k8s@mail.example.co.uk",
            "a@b.io",
            "o_w-n.er@sub-domain.example.org",
            "UPPER@Example.COM",
        ] {
            assert_eq!(email(ok), Ok(()), "{ok}");
        }
        let cases = [
            ("", "has no '@'"),
            ("owner", "has no '@'"),
            ("owner@", "nothing after"),
            ("@example.com", "nothing before"),
            ("a@b@example.com", "more than one '@'"),
            ("owner@localhost", "without a dot"),
            ("owner @example.com", "whitespace"),
            (" owner@example.com", "whitespace"),
            ("owner@example.com\n", "whitespace"),
            ("ow\u{7}ner@example.com", "control"),
            ("owner@example..com", "empty part"),
            ("owner@.example.com", "empty part"),
            ("owner@example.com.", "empty part"),
            ("owner@-example.com", "invalid domain part"),
            ("owner@exa_mple.com", "'_' in the domain"),
            ("own,er@example.com", "',' before"),
            ("\"owner\"@example.com", "'\"' before"),
            (".owner@example.com", "misplaced '.'"),
            ("own..er@example.com", "misplaced '.'"),
        ];
        for (bad, why) in cases {
            let e = email(bad).expect_err(bad);
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(email(&long_local).unwrap_err().contains("64"));
        let long = format!("a@{}.com", "b".repeat(260));
        assert!(email(&long).unwrap_err().contains("254"));
    }

    #[test]
    fn labels_and_names() {
        assert_eq!(dns_label("example-1"), Ok(()));
        assert!(dns_label("Example").unwrap_err().contains("'E'"));
        assert!(dns_label("-a").unwrap_err().contains("start and end"));
        assert!(dns_label(&"a".repeat(64)).unwrap_err().contains("63"));
        assert!(dns_label("").is_err());
        assert_eq!(dns_subdomain("example.kubeconfig-1"), Ok(()));
        assert!(dns_subdomain("a..b").is_err());
        assert_eq!(secret_key("client-secret"), Ok(()));
        assert!(secret_key("a/b").is_err());
        assert_eq!(label_value("ccm-deploy"), Ok(()));
        assert!(label_value("a b").is_err());
        assert!(label_value("-a").is_err());
    }

    #[test]
    fn regions() {
        for ok in ["zrh", "next", "sjc-2", "a"] {
            assert_eq!(region(ok), Ok(()));
        }
        for bad in ["", "ZRH", "zrh.", "-zrh", "zrh-", "z rh", &"a".repeat(64)] {
            assert!(region(bad).is_err(), "{bad:?}");
        }
    }
}
