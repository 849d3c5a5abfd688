//! URL layout: which virtual host, location and resource a path addresses, and its route template.

use crate::config::Config;
use crate::log::HostKind;

/// The Keycloak token endpoint, relative to the listener.
pub(crate) const TOKEN_PATH: &str = "/oauth/realms/cloudsigma/protocol/openid-connect/token";
/// The impersonation endpoint, relative to a location's direct host.
pub(crate) const IMPERSONATE_PATH: &str = "/service_provider/api/v1/user/impersonate";
/// Admin API prefix.
pub(crate) const ADMIN_PREFIX: &str = "/_emulator/";

/// API 2.0 resource collections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Res {
    Servers,
    Drives,
    Snapshots,
    Ips,
    Vlans,
}

impl Res {
    fn from_segment(s: &str) -> Option<Res> {
        Some(match s {
            "servers" => Res::Servers,
            "drives" => Res::Drives,
            "snapshots" => Res::Snapshots,
            "ips" => Res::Ips,
            "vlans" => Res::Vlans,
            _ => return None,
        })
    }
}

/// An API 2.0 endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ApiTarget {
    List(Res),
    Detail(Res),
    Item(Res, String),
    Action(Res, String),
    Locations,
    Capabilities,
    Profile,
}

/// What a request addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Api(ApiTarget),
    Impersonate,
    Token,
    /// Admin path segments after `/_emulator/`.
    Admin(Vec<String>),
    /// No route; the text says why (for the 404 message).
    NotFound(&'static str),
}

/// A parsed request path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub(crate) host: HostKind,
    pub(crate) location: Option<String>,
    pub(crate) route: String,
    pub(crate) target: Target,
}

/// Parses a request path (without the query) against the configured locations.
pub(crate) fn parse(method: &str, path: &str, cfg: &Config) -> Parsed {
    let unmatched = |host, location: Option<String>, why| Parsed {
        host,
        location,
        route: format!("{method} (unmatched)"),
        target: Target::NotFound(why),
    };
    if path == TOKEN_PATH {
        return Parsed {
            host: HostKind::Oauth,
            location: None,
            route: format!("{method} /oauth/token"),
            target: Target::Token,
        };
    }
    if path.starts_with("/oauth/") {
        return unmatched(HostKind::Oauth, None, "unknown OAuth path");
    }
    if let Some(rest) = path.strip_prefix(ADMIN_PREFIX) {
        let segs = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        return Parsed {
            host: HostKind::Admin,
            location: None,
            route: format!("{method} {path}"),
            target: Target::Admin(segs),
        };
    }
    if let Some(rest) = path.strip_prefix("/api/2.0/") {
        return api(method, HostKind::Regular, cfg.default_location.clone(), rest);
    }
    let Some(after_slash) = path.strip_prefix('/') else {
        return unmatched(HostKind::Unknown, None, "path must start with '/'");
    };
    let (loc, rest) = after_slash.split_once('/').unwrap_or((after_slash, ""));
    if !cfg.has_location(loc) {
        return unmatched(HostKind::Unknown, None, "unknown location or path");
    }
    let loc = loc.to_owned();
    if let Some(api_rest) = rest.strip_prefix("api/2.0/") {
        return api(method, HostKind::Regular, loc, api_rest);
    }
    if let Some(direct) = rest.strip_prefix("direct/") {
        if let Some(api_rest) = direct.strip_prefix("api/2.0/") {
            return api(method, HostKind::Direct, loc, api_rest);
        }
        if format!("/{direct}") == IMPERSONATE_PATH {
            return Parsed {
                host: HostKind::Direct,
                location: Some(loc),
                route: format!("{method} /direct{IMPERSONATE_PATH}"),
                target: Target::Impersonate,
            };
        }
        return unmatched(HostKind::Direct, Some(loc), "unknown path on the direct host");
    }
    unmatched(HostKind::Regular, Some(loc), "unknown path")
}

/// Parses the part after `api/2.0/`.
fn api(method: &str, host: HostKind, loc: String, rest: &str) -> Parsed {
    let prefix = if host == HostKind::Direct { "/direct" } else { "" };
    let location = Some(loc);
    let not_found = |location, why| Parsed {
        host,
        location,
        route: format!("{method} (unmatched)"),
        target: Target::NotFound(why),
    };
    let Some(trimmed) = rest.strip_suffix('/') else {
        return not_found(location, "API 2.0 paths end with '/'");
    };
    let segs: Vec<&str> = trimmed.split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return not_found(location, "unknown API 2.0 path");
    }
    let (target, tail) = match segs.as_slice() {
        ["locations"] => (ApiTarget::Locations, "locations/".to_owned()),
        ["capabilities"] => (ApiTarget::Capabilities, "capabilities/".to_owned()),
        ["profile"] => (ApiTarget::Profile, "profile/".to_owned()),
        [res] => match Res::from_segment(res) {
            Some(r) => (ApiTarget::List(r), format!("{res}/")),
            None => return not_found(location, "unknown API 2.0 resource"),
        },
        [res, "detail"] => match Res::from_segment(res) {
            Some(r) => (ApiTarget::Detail(r), format!("{res}/detail/")),
            None => return not_found(location, "unknown API 2.0 resource"),
        },
        [res, id] => match Res::from_segment(res) {
            Some(r) => (ApiTarget::Item(r, (*id).to_owned()), format!("{res}/{{uuid}}/")),
            None => return not_found(location, "unknown API 2.0 resource"),
        },
        [res, id, "action"] => match Res::from_segment(res) {
            Some(r) => (
                ApiTarget::Action(r, (*id).to_owned()),
                format!("{res}/{{uuid}}/action/"),
            ),
            None => return not_found(location, "unknown API 2.0 resource"),
        },
        _ => return not_found(location, "unknown API 2.0 path"),
    };
    Parsed {
        host,
        location,
        route: format!("{method} {prefix}/api/2.0/{tail}"),
        target: Target::Api(target),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config {
            locations: vec!["zrh".into(), "fra".into()],
            ..Config::default()
        }
    }

    #[test]
    fn regular_direct_and_alias() {
        let p = parse("GET", "/zrh/api/2.0/servers/detail/", &cfg());
        assert_eq!(p.host, HostKind::Regular);
        assert_eq!(p.location.as_deref(), Some("zrh"));
        assert_eq!(p.route, "GET /api/2.0/servers/detail/");
        assert_eq!(p.target, Target::Api(ApiTarget::Detail(Res::Servers)));

        let p = parse("GET", "/fra/direct/api/2.0/servers/abc/", &cfg());
        assert_eq!(p.host, HostKind::Direct);
        assert_eq!(p.location.as_deref(), Some("fra"));
        assert_eq!(p.route, "GET /direct/api/2.0/servers/{uuid}/");
        assert_eq!(p.target, Target::Api(ApiTarget::Item(Res::Servers, "abc".into())));

        let p = parse("POST", "/api/2.0/drives/d1/action/", &cfg());
        assert_eq!(p.location.as_deref(), Some("zrh"));
        assert_eq!(p.route, "POST /api/2.0/drives/{uuid}/action/");
    }

    #[test]
    fn oauth_impersonate_admin() {
        let p = parse("POST", TOKEN_PATH, &cfg());
        assert_eq!((p.host, p.route.as_str()), (HostKind::Oauth, "POST /oauth/token"));
        let p = parse(
            "POST",
            "/zrh/direct/service_provider/api/v1/user/impersonate",
            &cfg(),
        );
        assert_eq!(p.target, Target::Impersonate);
        assert_eq!(p.route, "POST /direct/service_provider/api/v1/user/impersonate");
        let p = parse("POST", "/zrh/service_provider/api/v1/user/impersonate", &cfg());
        assert!(matches!(p.target, Target::NotFound(_)));
        let p = parse("GET", "/_emulator/faults/3", &cfg());
        assert_eq!(p.target, Target::Admin(vec!["faults".into(), "3".into()]));
    }

    #[test]
    fn strict_paths_are_not_found() {
        for path in [
            "/zrh/api/2.0/servers",
            "/zrh/api/2.0/servers/x/y/",
            "/zrh/api/2.0/servers//",
            "/zrh/api/2.0/",
            "/zrh/api/2.0/tags/",
            "/lon/api/2.0/servers/",
            "/zrh/direct/api/2.0/servers",
            "/oauth/realms/other/protocol/openid-connect/token",
        ] {
            let p = parse("GET", path, &cfg());
            assert!(matches!(p.target, Target::NotFound(_)), "{path}");
            assert_eq!(p.route, "GET (unmatched)", "{path}");
        }
    }
}
