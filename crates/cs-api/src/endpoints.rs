//! API base URLs: the location table, the `direct.` host, and explicit overrides with a `{region}`
//! placeholder.

use cs_auth::ApiHost;
use url::Url;

use crate::{Error, Result};

/// The documented CloudSigma locations: code, place, API host (all with path `/api/2.0/`).
///
/// From the public location list, plus `next`, CloudSigma's staging region.
pub const LOCATIONS: &[(&str, &str, &str)] = &[
    ("per", "Perth, AU", "per.cloudsigma.com"),
    ("dus", "Dusseldorf, DE", "dus.cloudsigma.com"),
    ("fra", "Frankfurt, DE", "fra.cloudsigma.com"),
    ("dub", "Dublin, IE", "ec.servecentric.com"),
    ("tyo", "Tokyo, JP", "tyo.cloudsigma.com"),
    ("crk", "Clark, PH", "crk.cloudsigma.com"),
    ("mnl", "Manila, PH", "mnl.cloudsigma.com"),
    ("mnl2", "Manila-2, PH", "mnl2.cloudsigma.com"),
    ("ruh", "Riyadh, SA", "ruh.cld.v2.sa"),
    ("gva", "Geneva, CH", "gva.cloudsigma.com"),
    ("zrh", "Zurich, CH", "zrh.cloudsigma.com"),
    ("adb", "Izmir, TR", "siaflex.cloud"),
    ("cwl", "Cardiff, UK", "cwl.cloudsigma.com"),
    ("lon", "London, UK", "lon.cloudsigma.com"),
    ("hnl", "Honolulu, US", "hnl.cloudsigma.com"),
    ("wdc", "Washington DC, US", "wdc.alpha3cloud.com"),
    ("next", "CloudSigma staging", "next.cloudsigma.com"),
];

/// The literal placeholder replaced by the region code in URL templates.
pub const REGION_PLACEHOLDER: &str = "{region}";

/// The API host of a location code (case-insensitive), e.g. `zrh` → `zrh.cloudsigma.com`.
pub fn location_host(code: &str) -> Option<&'static str> {
    let code = code.trim().to_ascii_lowercase();
    LOCATIONS
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, _, host)| *host)
}

/// The two API base URLs of one location: the regular host and the `direct.` host an impersonated token
/// must be used on. Both always end in `/`. Each request picks one from the `ApiHost` of its credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    regular: Url,
    direct: Url,
}

impl Endpoints {
    /// From two explicit base URLs (http or https, with a host, no credentials, query or fragment).
    pub fn new(regular: &str, direct: &str) -> Result<Self> {
        Ok(Self {
            regular: parse_base("regular API URL", regular)?,
            direct: parse_base("direct API URL", direct)?,
        })
    }

    /// One base URL for both hosts (single-host private clouds, or a regular-only override).
    pub fn single(url: &str) -> Result<Self> {
        let base = parse_base("API URL", url)?;
        Ok(Self {
            regular: base.clone(),
            direct: base,
        })
    }

    /// The public endpoints of a documented location code (case-insensitive; see [`LOCATIONS`]).
    ///
    /// Regular: `https://{host}/api/2.0/`. Direct: `https://direct.{host}/api/2.0/` — documented for
    /// `*.cloudsigma.com` hosts; for partner hosts (e.g. WDC's `wdc.alpha3cloud.com`) the same `direct.`
    /// prefix is an assumption. Use [`Endpoints::from_templates`] where it does not hold.
    pub fn for_location(code: &str) -> Result<Self> {
        let host = location_host(code).ok_or_else(|| {
            let known: Vec<&str> = LOCATIONS.iter().map(|(c, _, _)| *c).collect();
            Error::Config(format!(
                "unknown CloudSigma location `{}` (known: {}); pass an explicit API URL for other clouds",
                code.trim(),
                known.join(", ")
            ))
        })?;
        Self::new(
            &format!("https://{host}/api/2.0/"),
            &format!("https://direct.{host}/api/2.0/"),
        )
    }

    /// From URL templates that may contain the literal `{region}` placeholder, e.g.
    /// `http://127.0.0.1:8080/{region}/api/2.0/` (this is what `--api-url` / `--direct-api-url` carry).
    ///
    /// `region` must be a location code made of letters, digits and `-`; it is lower-cased before it is
    /// substituted. When `direct_template` is `None` the direct base is the regular one (single-host
    /// private clouds): bearer tokens for the direct host are then sent to that same URL.
    pub fn from_templates(
        regular_template: &str,
        direct_template: Option<&str>,
        region: &str,
    ) -> Result<Self> {
        let region = validate_region(region)?;
        let fill = |template: &str| template.trim().replace(REGION_PLACEHOLDER, &region);
        let regular = parse_base("regular API URL", &fill(regular_template))?;
        let direct = match direct_template {
            Some(template) => parse_base("direct API URL", &fill(template))?,
            None => regular.clone(),
        };
        Ok(Self { regular, direct })
    }

    /// The regular base URL.
    pub fn regular(&self) -> &Url {
        &self.regular
    }

    /// The `direct.` base URL.
    pub fn direct(&self) -> &Url {
        &self.direct
    }

    /// The base URL for credentials that belong on `host`.
    pub fn for_host(&self, host: ApiHost) -> &Url {
        match host {
            ApiHost::Regular => &self.regular,
            ApiHost::Direct => &self.direct,
        }
    }
}

fn validate_region(region: &str) -> Result<String> {
    let region = region.trim().to_ascii_lowercase();
    if region.is_empty() {
        return Err(Error::Config("the region is empty".into()));
    }
    if !region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(Error::Config(format!(
            "region `{region}` may contain only letters, digits and `-`"
        )));
    }
    Ok(region)
}

/// How a base URL may appear in an error: not at all when it holds an `@`, since everything before it
/// may be a password (`https://user:password@host`), even in text that does not parse as a URL.
fn shown(text: &str) -> String {
    if text.contains('@') {
        "(not shown: it contains `@`, possibly credentials)".to_owned()
    } else {
        format!("`{text}`")
    }
}

fn parse_base(what: &str, text: &str) -> Result<Url> {
    let text = text.trim();
    if text.contains(REGION_PLACEHOLDER) {
        return Err(Error::Config(format!(
            "{what} {} still contains {REGION_PLACEHOLDER}",
            shown(text)
        )));
    }
    let mut url =
        Url::parse(text).map_err(|e| Error::Config(format!("{what} {} is not a URL: {e}", shown(text))))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Config(format!(
            "{what} {} must use http or https, not `{}`",
            shown(text),
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::Config(format!("{what} {} has no host", shown(text))));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Do not echo the URL: it holds credentials.
        return Err(Error::Config(format!(
            "{what} must not contain credentials (user:password@)"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Config(format!(
            "{what} {} must not have a query or fragment",
            shown(text)
        )));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_table_gives_regular_and_direct_hosts() {
        let zrh = Endpoints::for_location("ZRH").unwrap();
        assert_eq!(zrh.regular().as_str(), "https://zrh.cloudsigma.com/api/2.0/");
        assert_eq!(
            zrh.direct().as_str(),
            "https://direct.zrh.cloudsigma.com/api/2.0/"
        );
        let next = Endpoints::for_location("next").unwrap();
        assert_eq!(
            next.direct().as_str(),
            "https://direct.next.cloudsigma.com/api/2.0/"
        );
        let wdc = Endpoints::for_location("wdc").unwrap();
        assert_eq!(wdc.regular().as_str(), "https://wdc.alpha3cloud.com/api/2.0/");
        assert_eq!(
            wdc.direct().as_str(),
            "https://direct.wdc.alpha3cloud.com/api/2.0/"
        );
        let dub = Endpoints::for_location(" Dub ").unwrap();
        assert_eq!(dub.regular().as_str(), "https://ec.servecentric.com/api/2.0/");
        assert_eq!(location_host("MNL2"), Some("mnl2.cloudsigma.com"));
        assert_eq!(LOCATIONS.len(), 17);
    }

    #[test]
    fn unknown_location_is_named_in_the_error() {
        let e = Endpoints::for_location("atlantis").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("`atlantis`") && text.contains("zrh"), "{text}");
    }

    #[test]
    fn templates_fill_the_region_and_default_direct_to_regular() {
        let e = Endpoints::from_templates(
            "http://127.0.0.1:8080/{region}/api/2.0/",
            Some("http://127.0.0.1:8080/{region}/direct/api/2.0"),
            "ZRH",
        )
        .unwrap();
        assert_eq!(e.regular().as_str(), "http://127.0.0.1:8080/zrh/api/2.0/");
        assert_eq!(e.direct().as_str(), "http://127.0.0.1:8080/zrh/direct/api/2.0/");
        assert_eq!(e.for_host(ApiHost::Direct), e.direct());
        assert_eq!(e.for_host(ApiHost::Regular), e.regular());

        let single = Endpoints::from_templates("https://cloud.example.net/api/2.0", None, "lab").unwrap();
        assert_eq!(single.regular().as_str(), "https://cloud.example.net/api/2.0/");
        assert_eq!(single.direct(), single.regular());
    }

    #[test]
    fn bad_urls_and_regions_are_rejected_with_the_field_named() {
        let cases = [
            ("ftp://x/api/2.0/", "http or https"),
            ("not a url", "not a URL"),
            ("https://x/api/2.0/?a=b", "query"),
            ("https://", "not a URL"),
        ];
        for (url, expected) in cases {
            let text = Endpoints::single(url).unwrap_err().to_string();
            assert!(
                text.contains(expected) && text.contains("API URL"),
                "{url}: {text}"
            );
        }
        let text = Endpoints::single("https://me:pw-secret@x/api/2.0/")
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("credentials") && !text.contains("pw-secret"),
            "{text}"
        );
        let text = Endpoints::from_templates("https://{region}.x/", None, "a/b")
            .unwrap_err()
            .to_string();
        assert!(text.contains("region"), "{text}");
        let text = Endpoints::from_templates("https://{region}.x/", None, " ")
            .unwrap_err()
            .to_string();
        assert!(text.contains("region is empty"), "{text}");
        let text = Endpoints::new("https://a/", "https://{region}/")
            .unwrap_err()
            .to_string();
        assert!(text.contains("direct API URL"), "{text}");
    }

    #[test]
    fn a_password_in_a_url_is_never_echoed_even_when_it_does_not_parse() {
        for url in [
            "https://me:pw-Url-9911@:99999/api/2.0/",
            "https://me:pw-Url-9911@/",
            "ftp://me:pw-Url-9911@host/",
            "https://me:pw-Url-9911@host/api/2.0/?x=1",
            "https://me:pw-Url-9911@host/api/2.0/",
        ] {
            let text = Endpoints::single(url).unwrap_err().to_string();
            assert!(!text.contains("pw-Url-9911"), "{text}");
            assert!(text.contains("API URL"), "{text}");
        }
    }
}
