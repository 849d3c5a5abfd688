//! Where credentials may travel without TLS: nowhere, unless the operator says so with a flag meant for
//! a local emulator.

/// One URL credentials are sent to, and the setting that configured it (`--api-url (CLOUDSIGMA_API_URL)`).
#[derive(Clone, Copy, Debug)]
pub struct CredentialUrl<'a> {
    /// The flag and environment variable, as the operator would look for them.
    pub setting: &'a str,
    /// The URL or URL template as configured (`{region}` allowed).
    pub url: &'a str,
}

/// Whether `url` (a URL or template) uses plain `http`, judged the way the HTTP client will read it:
/// the URL parser drops surrounding spaces and control characters and any tab or newline inside, and
/// accepts `http:host/` or `http:\\host` as `http://host/`. Whatever the parser makes of it, a scheme
/// spelt `http` (any case, with such characters removed) counts as plain http.
pub fn is_plain_http(url: &str) -> bool {
    let probe = url.replace("{region}", "region");
    let parsed = url::Url::parse(&probe).is_ok_and(|u| u.scheme() == "http");
    let cleaned: String = url
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect();
    let spelt = cleaned
        .split_once(':')
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("http"));
    parsed || spelt
}

/// A plain-`http` URL configured without the operator's explicit permission.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{setting} is a plain http URL: credentials and tokens would cross the network unencrypted; use an \
     https URL, or pass {allow_setting} to talk to a local emulator (never to a real cloud)"
)]
pub struct PlainHttpRefused {
    /// The setting of the first plain-`http` URL.
    pub setting: String,
    /// The setting that would allow it.
    pub allow_setting: String,
}

/// Applies the plain-http policy to the URLs a binary sends credentials to.
///
/// Without `allowed`, the first plain-`http` URL is refused with a message that names its setting, the
/// fix, and `allow_setting`. With `allowed`, returns the settings that do use plain `http` (empty when
/// all use TLS), for the caller to log loudly at start-up.
pub fn check_plain_http(
    urls: &[CredentialUrl<'_>],
    allowed: bool,
    allow_setting: &str,
) -> Result<Vec<String>, PlainHttpRefused> {
    let plain: Vec<&CredentialUrl<'_>> = urls.iter().filter(|u| is_plain_http(u.url)).collect();
    match plain.first() {
        Some(first) if !allowed => Err(PlainHttpRefused {
            setting: first.setting.to_owned(),
            allow_setting: allow_setting.to_owned(),
        }),
        _ => Ok(plain.iter().map(|u| u.setting.to_owned()).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOW: &str = "--allow-insecure-http (CLOUDSIGMA_ALLOW_INSECURE_HTTP)";

    fn urls<'a>(list: &[(&'a str, &'a str)]) -> Vec<CredentialUrl<'a>> {
        list.iter()
            .map(|(setting, url)| CredentialUrl { setting, url })
            .collect()
    }

    #[test]
    fn scheme_is_matched_case_insensitively_and_only_as_a_prefix() {
        assert!(is_plain_http("http://127.0.0.1:8080/{region}/api/2.0/"));
        assert!(is_plain_http("HTTP://example.com/"));
        assert!(is_plain_http("  http://example.com/"));
        assert!(!is_plain_http("https://zrh.cloudsigma.com/api/2.0/"));
        assert!(!is_plain_http("https://example.com/?next=http://x"));
        assert!(!is_plain_http(""));
        assert!(!is_plain_http("ééééé://x"), "multi-byte input must not panic");
    }

    #[test]
    fn forms_the_url_parser_turns_into_plain_http_are_caught() {
        for url in [
            "http:127.0.0.1:18081/api/2.0/",
            "http:/127.0.0.1/api/2.0/",
            "HTTP:/host/",
            "http:\\\\host\\",
            "ht\ttp://host/",
            "http\n://host/",
            "\u{1}http://host/",
            "http:///host/",
            "http://{region}.example.com/api/2.0/",
            "http:/",
        ] {
            assert!(is_plain_http(url), "{url:?} is plain http");
        }
        for url in [
            "https:host/",
            "https://{region}.cloudsigma.com/api/2.0/",
            "ht\ttps://host/",
        ] {
            assert!(!is_plain_http(url), "{url:?} is TLS");
        }
    }

    #[test]
    fn plain_http_is_refused_by_default_naming_the_setting_and_the_fix() {
        let list = urls(&[
            (
                "--oauth-url (CLOUDSIGMA_OAUTH_URL)",
                "https://oauth.cloudsigma.com",
            ),
            (
                "--api-url (CLOUDSIGMA_API_URL)",
                "http://127.0.0.1:1/{region}/api/2.0/",
            ),
        ]);
        let err = check_plain_http(&list, false, ALLOW).unwrap_err().to_string();
        assert!(
            err.starts_with("--api-url (CLOUDSIGMA_API_URL) is a plain http URL"),
            "{err}"
        );
        assert!(err.contains(ALLOW), "{err}");
        assert!(err.contains("use an https URL"), "{err}");
    }

    #[test]
    fn allowed_plain_http_is_reported_for_the_start_up_warning() {
        let list = urls(&[
            ("--oauth-url (CLOUDSIGMA_OAUTH_URL)", "http://127.0.0.1:1/oauth"),
            ("--api-url (CLOUDSIGMA_API_URL)", "https://cloud.example/api/2.0/"),
            (
                "--impersonation-url (CLOUDSIGMA_IMPERSONATION_URL)",
                "http://127.0.0.1:1/{region}/direct/",
            ),
        ]);
        assert_eq!(
            check_plain_http(&list, true, ALLOW).unwrap(),
            vec![
                "--oauth-url (CLOUDSIGMA_OAUTH_URL)".to_owned(),
                "--impersonation-url (CLOUDSIGMA_IMPERSONATION_URL)".to_owned()
            ]
        );
    }

    #[test]
    fn tls_everywhere_passes_with_or_without_the_flag() {
        let list = urls(&[("--api-url (CLOUDSIGMA_API_URL)", "https://cloud.example/api/2.0/")]);
        assert!(check_plain_http(&list, false, ALLOW).unwrap().is_empty());
        assert!(check_plain_http(&list, true, ALLOW).unwrap().is_empty());
    }
}
