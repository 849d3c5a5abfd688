//! Region codes and the URLs of the Keycloak token endpoint and the impersonation endpoint.

use url::Url;

use crate::{Error, Result};

/// The placeholder a URL template carries where the region code goes.
pub const REGION_PLACEHOLDER: &str = "{region}";

/// Path of the Keycloak token endpoint below the OAuth URL (realm `cloudsigma`).
const TOKEN_PATH: &str = "realms/cloudsigma/protocol/openid-connect/token";

/// Path of the impersonation endpoint below the (direct) impersonation base.
const IMPERSONATE_PATH: &str = "service_provider/api/v1/user/impersonate";

/// Longest region code accepted (a DNS label).
const MAX_REGION_LEN: usize = 63;

/// Checks a region code: non-empty, at most 63 characters, only lower-case ASCII letters, digits
/// and `-`, not starting or ending with `-` (it becomes a DNS label, as in `direct.zrh.cloudsigma.com`).
pub fn validate_region(region: &str) -> Result<()> {
    let ok = !region.is_empty()
        && region.len() <= MAX_REGION_LEN
        && !region.starts_with('-')
        && !region.ends_with('-')
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRegion {
            region: region.to_owned(),
        })
    }
}

/// Checks a user email: non-empty after trimming, one `@` with text on both sides, no whitespace.
pub(crate) fn validate_email(email: &str) -> Result<()> {
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if valid {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "user_email {email:?} is not an email address (expected name@domain)"
        )))
    }
}

/// How a URL setting may appear in an error: not at all when it holds an `@`, since everything before
/// it may be a password (`https://user:password@host`), even in text that does not parse as a URL.
fn shown(value: &str) -> String {
    if value.contains('@') {
        "(not shown: it contains '@', possibly credentials)".to_owned()
    } else {
        format!("{value:?}")
    }
}

/// Parses an absolute http(s) URL given in setting `field`, refusing embedded credentials.
fn parse_base(field: &str, value: &str) -> Result<Url> {
    let url = Url::parse(value)
        .map_err(|e| Error::Config(format!("{field} {} is not a valid URL: {e}", shown(value))))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Config(format!(
            "{field} {} must be an http or https URL",
            shown(value)
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Config(format!(
            "{field} must not carry credentials in the URL"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Config(format!(
            "{field} {} must not have a query or fragment",
            shown(value)
        )));
    }
    Ok(url)
}

/// The Keycloak token endpoint `{oauth_url}/realms/cloudsigma/protocol/openid-connect/token`; a
/// trailing slash on `oauth_url` is tolerated.
pub(crate) fn token_url(oauth_url: &str) -> Result<Url> {
    let trimmed = oauth_url.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(Error::Config("oauth_url is empty".into()));
    }
    // Validate the base alone first so the error names what the user typed.
    parse_base("oauth_url", trimmed)?;
    parse_base("oauth_url", &format!("{trimmed}/{TOKEN_PATH}"))
}

/// A validated impersonation base template such as `https://direct.{region}.cloudsigma.com/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ImpersonationTemplate(String);

impl ImpersonationTemplate {
    /// Validates the template: it must contain `{region}` and give a valid http(s) URL for a sample
    /// region. A missing trailing slash is added.
    pub(crate) fn parse(template: &str) -> Result<Self> {
        let template = template.trim();
        if !template.contains(REGION_PLACEHOLDER) {
            return Err(Error::Config(format!(
                "impersonation_url {} has no {REGION_PLACEHOLDER} placeholder \
                 (e.g. https://direct.{{region}}.cloudsigma.com/)",
                shown(template)
            )));
        }
        let template = if template.ends_with('/') {
            template.to_owned()
        } else {
            format!("{template}/")
        };
        let this = Self(template);
        parse_base("impersonation_url", &this.0.replace(REGION_PLACEHOLDER, "zrh"))?;
        Ok(this)
    }

    /// The template text (with `{region}`).
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The impersonation endpoint for `region`: `<base>service_provider/api/v1/user/impersonate`.
    pub(crate) fn endpoint(&self, region: &str) -> Result<Url> {
        validate_region(region)?;
        let base = self.0.replace(REGION_PLACEHOLDER, region);
        parse_base("impersonation_url", &format!("{base}{IMPERSONATE_PATH}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_codes() {
        for ok in ["zrh", "next", "mnl2", "eu-west-1", "a"] {
            assert!(validate_region(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ZRH",
            "zrh.",
            "z rh",
            "zrh/",
            "-zrh",
            "zrh-",
            "zürich",
            &"a".repeat(64),
        ] {
            let e = validate_region(bad).unwrap_err();
            assert!(
                matches!(&e, Error::InvalidRegion { region } if region == bad),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn emails() {
        assert!(validate_email("tenant@example.com").is_ok());
        for bad in [
            "",
            "tenant",
            "@example.com",
            "tenant@",
            "a b@example.com",
            "a@b@c",
        ] {
            let e = validate_email(bad).unwrap_err();
            assert!(e.to_string().contains("user_email"), "{bad}: {e}");
        }
    }

    #[test]
    fn token_url_tolerates_trailing_slash() {
        let want = "https://oauth.cloudsigma.com/realms/cloudsigma/protocol/openid-connect/token";
        assert_eq!(token_url("https://oauth.cloudsigma.com").unwrap().as_str(), want);
        assert_eq!(token_url("https://oauth.cloudsigma.com/").unwrap().as_str(), want);
        assert_eq!(
            token_url("http://127.0.0.1:9/oauth/").unwrap().as_str(),
            "http://127.0.0.1:9/oauth/realms/cloudsigma/protocol/openid-connect/token"
        );
    }

    #[test]
    fn bad_oauth_urls_name_the_field() {
        for bad in [
            "",
            "oauth.cloudsigma.com",
            "ftp://x",
            "https://u:p@oauth.cloudsigma.com",
            "https://x/?a=b",
        ] {
            let e = token_url(bad).unwrap_err();
            assert!(e.to_string().contains("oauth_url"), "{bad}: {e}");
        }
        let e = token_url("https://u:topsecret@oauth.cloudsigma.com").unwrap_err();
        assert!(!e.to_string().contains("topsecret"), "{e}");
    }

    #[test]
    fn impersonation_endpoint_per_region() {
        let t = ImpersonationTemplate::parse("https://direct.{region}.cloudsigma.com/").unwrap();
        assert_eq!(
            t.endpoint("next").unwrap().as_str(),
            "https://direct.next.cloudsigma.com/service_provider/api/v1/user/impersonate"
        );
        let emu = ImpersonationTemplate::parse("http://127.0.0.1:4000/{region}/direct").unwrap();
        assert_eq!(emu.as_str(), "http://127.0.0.1:4000/{region}/direct/");
        assert_eq!(
            emu.endpoint("zrh").unwrap().as_str(),
            "http://127.0.0.1:4000/zrh/direct/service_provider/api/v1/user/impersonate"
        );
        assert!(matches!(t.endpoint("ZRH"), Err(Error::InvalidRegion { .. })));
    }

    #[test]
    fn impersonation_template_needs_placeholder_and_url() {
        let e = ImpersonationTemplate::parse("https://direct.zrh.cloudsigma.com/").unwrap_err();
        assert!(
            e.to_string().contains("impersonation_url") && e.to_string().contains("{region}"),
            "{e}"
        );
        let e = ImpersonationTemplate::parse("direct.{region}.cloudsigma.com").unwrap_err();
        assert!(e.to_string().contains("impersonation_url"), "{e}");
    }

    #[test]
    fn a_password_in_a_url_is_never_echoed_even_when_it_does_not_parse() {
        for url in [
            "https://me:pw-Url-9911@:99999",
            "https://me:pw-Url-9911@",
            "ftp://me:pw-Url-9911@host",
            "https://me:pw-Url-9911@host/?x=1",
        ] {
            let text = token_url(url).unwrap_err().to_string();
            assert!(!text.contains("pw-Url-9911"), "{text}");
            assert!(text.contains("oauth_url"), "{text}");
        }
        let text = ImpersonationTemplate::parse("https://me:pw-Url-9911@direct.example.com/")
            .unwrap_err()
            .to_string();
        assert!(!text.contains("pw-Url-9911"), "{text}");
    }
}
