//! Emulator configuration.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::error::Error;

/// Path segments that cannot be location codes because the URL layout uses them.
const RESERVED: &[&str] = &["api", "oauth", "direct", "_emulator", "service_provider"];

/// How the emulator listens and how fast its asynchronous transitions complete.
///
/// `Config::default()` gives test-friendly values: an ephemeral port on 127.0.0.1, location `zrh`, and
/// 50 ms transitions.
#[derive(Clone, Debug)]
pub struct Config {
    /// Listening address; the default `127.0.0.1:0` picks an ephemeral port.
    pub listen: SocketAddr,
    /// Location codes served (lower-case, used as the first path segment), default `["zrh"]`.
    pub locations: Vec<String>,
    /// The location behind the `/api/2.0/` alias, default `zrh`.
    pub default_location: String,
    /// Lifetime of impersonated tokens, default 900 s.
    pub token_lifetime: Duration,
    /// Lifetime of client-credentials (service-account) tokens, default 300 s.
    pub sa_token_lifetime: Duration,
    /// Lifetime of RPTs (UMA tickets), default 300 s.
    pub rpt_lifetime: Duration,
    /// `creating` -> `unmounted` for new drives, default 50 ms.
    pub drive_create_delay: Duration,
    /// How long a drive stays `mounted` after it left a server definition, default 50 ms.
    pub detach_delay: Duration,
    /// `resizing` -> previous state, default 50 ms.
    pub resize_delay: Duration,
    /// `cloning_dst`/`cloning_src` -> ready, default 50 ms.
    pub clone_delay: Duration,
    /// Snapshot `creating` -> `available`, default 50 ms.
    pub snapshot_delay: Duration,
    /// `starting` -> `running` and `stopping` -> `stopped`, default 50 ms.
    pub server_transition_delay: Duration,
    /// `true`: drive and NIC edits on a server that is not stopped are refused with 403 (the documented
    /// strict mode); `false` (default): hot-plug is allowed, as observed on the real platform.
    pub strict_hotplug: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            locations: vec!["zrh".to_owned()],
            default_location: "zrh".to_owned(),
            token_lifetime: Duration::from_secs(900),
            sa_token_lifetime: Duration::from_secs(300),
            rpt_lifetime: Duration::from_secs(300),
            drive_create_delay: Duration::from_millis(50),
            detach_delay: Duration::from_millis(50),
            resize_delay: Duration::from_millis(50),
            clone_delay: Duration::from_millis(50),
            snapshot_delay: Duration::from_millis(50),
            server_transition_delay: Duration::from_millis(50),
            strict_hotplug: false,
        }
    }
}

impl Config {
    /// Checks the location codes: non-empty, lower-case letters, digits and `-`, not a reserved path
    /// segment, no duplicates, and the default location among them.
    pub fn validate(&self) -> Result<(), Error> {
        if self.locations.is_empty() {
            return Err(Error::Config {
                field: "locations",
                message: "at least one location is needed".into(),
            });
        }
        for (i, loc) in self.locations.iter().enumerate() {
            let valid_chars = loc
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if loc.is_empty() || !valid_chars {
                return Err(Error::Config {
                    field: "locations",
                    message: format!("{loc:?} must be lower-case letters, digits and '-'"),
                });
            }
            if RESERVED.contains(&loc.as_str()) {
                return Err(Error::Config {
                    field: "locations",
                    message: format!("{loc:?} is a reserved path segment"),
                });
            }
            if self.locations[..i].contains(loc) {
                return Err(Error::Config {
                    field: "locations",
                    message: format!("{loc:?} is listed twice"),
                });
            }
        }
        if !self.locations.contains(&self.default_location) {
            return Err(Error::Config {
                field: "default_location",
                message: format!("{:?} is not one of the locations", self.default_location),
            });
        }
        Ok(())
    }

    pub(crate) fn has_location(&self, loc: &str) -> bool {
        self.locations.iter().any(|l| l == loc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn rejects_bad_locations() {
        let bad = |locs: &[&str], default: &str| Config {
            locations: locs.iter().map(|s| s.to_string()).collect(),
            default_location: default.into(),
            ..Config::default()
        };
        for (cfg, field) in [
            (bad(&[], "zrh"), "locations"),
            (bad(&["ZRH"], "ZRH"), "locations"),
            (bad(&["oauth"], "oauth"), "locations"),
            (bad(&["zrh", "zrh"], "zrh"), "locations"),
            (bad(&["zrh"], "fra"), "default_location"),
        ] {
            match cfg.validate() {
                Err(Error::Config { field: f, .. }) => assert_eq!(f, field, "{cfg:?}"),
                other => panic!("expected a config error for {cfg:?}, got {other:?}"),
            }
        }
    }
}
