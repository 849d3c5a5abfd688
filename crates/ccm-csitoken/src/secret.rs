//! The Secret's format: what it must contain for a token, and how a live Secret compares with that.
//! Pure functions; the controller does the API calls.
//!
//! Only our four data keys and our two labels are managed: other data keys, labels and annotations
//! someone added are kept. Token values are compared in memory and never formatted.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::{ByteString, api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use secrecy::ExposeSecret;

use crate::IssuedToken;

/// Data key of the bearer token.
pub const KEY_ACCESS_TOKEN: &str = "access_token";
/// Data key of the region whose `direct` host accepts the token.
pub const KEY_REGION: &str = "region";
/// Data key of the impersonated user's email.
pub const KEY_USER_EMAIL: &str = "user_email";
/// Data key of the token's expiry, RFC 3339 in UTC with whole seconds (e.g. `2025-01-31T12:15:00Z`).
pub const KEY_EXPIRES_AT: &str = "expires_at";
/// The Secret type we write.
pub const SECRET_TYPE: &str = "Opaque";
/// Label naming the writer.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`LABEL_MANAGED_BY`].
pub const MANAGED_BY: &str = "cloudsigma-ccm";
/// Label naming the part of the CCM.
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
/// Value of [`LABEL_COMPONENT`].
pub const COMPONENT: &str = "csi-token";

/// How a live Secret compares with what it must contain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assessment {
    /// Holds exactly our data and labels: nothing to write.
    UpToDate,
    /// Can be updated in place; `changed` names what differs (data keys, `labels`), never values.
    Outdated {
        /// Names of the differing data keys and/or `labels`.
        changed: Vec<&'static str>,
    },
    /// Cannot hold our data (another type, or immutable). `ours`: it carries our `managed-by` label, so
    /// it may be deleted and recreated.
    Unusable {
        /// Why, e.g. `type kubernetes.io/tls` or `immutable`.
        why: String,
        /// Whether it carries our `managed-by` label.
        ours: bool,
    },
}

/// The expiry as stored: rounded DOWN to whole seconds (a reader never believes the token lives
/// longer than it does). The schedule works with this value, since it is what readers see.
pub fn stored_expires_at(expires_at: Timestamp) -> Timestamp {
    Timestamp::from_second(expires_at.as_second()).unwrap_or(expires_at)
}

/// The RFC 3339 text stored under `expires_at`: UTC, whole seconds (see [`stored_expires_at`]).
pub fn format_expires_at(expires_at: Timestamp) -> String {
    stored_expires_at(expires_at).to_string()
}

/// The four data entries for `token`.
pub fn token_data(token: &IssuedToken) -> BTreeMap<String, ByteString> {
    BTreeMap::from([
        (
            KEY_ACCESS_TOKEN.to_owned(),
            ByteString(token.token.expose_secret().as_bytes().to_vec()),
        ),
        (
            KEY_REGION.to_owned(),
            ByteString(token.region.as_bytes().to_vec()),
        ),
        (
            KEY_USER_EMAIL.to_owned(),
            ByteString(token.user_email.as_bytes().to_vec()),
        ),
        (
            KEY_EXPIRES_AT.to_owned(),
            ByteString(format_expires_at(token.expires_at).into_bytes()),
        ),
    ])
}

/// Our two labels.
pub fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_owned(), MANAGED_BY.to_owned()),
        (LABEL_COMPONENT.to_owned(), COMPONENT.to_owned()),
    ])
}

/// A new Secret `namespace/name` holding `token`.
pub fn desired(namespace: &str, name: &str, token: &IssuedToken) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels()),
            ..ObjectMeta::default()
        },
        type_: Some(SECRET_TYPE.to_owned()),
        data: Some(token_data(token)),
        ..Secret::default()
    }
}

/// Whether `secret` carries our `managed-by` label.
pub fn is_ours(secret: &Secret) -> bool {
    secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_MANAGED_BY))
        .is_some_and(|v| v == MANAGED_BY)
}

/// Compares a live Secret with what it must hold for `token`.
pub fn assess(live: &Secret, token: &IssuedToken) -> Assessment {
    let type_ = live.type_.as_deref().unwrap_or(SECRET_TYPE);
    if type_ != SECRET_TYPE {
        return Assessment::Unusable {
            why: format!("type {type_}"),
            ours: is_ours(live),
        };
    }
    if live.immutable == Some(true) {
        return Assessment::Unusable {
            why: "immutable".to_owned(),
            ours: is_ours(live),
        };
    }
    let want = token_data(token);
    let have = live.data.as_ref();
    let mut changed: Vec<&'static str> = [KEY_ACCESS_TOKEN, KEY_REGION, KEY_USER_EMAIL, KEY_EXPIRES_AT]
        .into_iter()
        .filter(|key| have.and_then(|d| d.get(*key)) != want.get(*key))
        .collect();
    let live_labels = live.metadata.labels.as_ref();
    if labels()
        .iter()
        .any(|(k, v)| live_labels.and_then(|l| l.get(k)) != Some(v))
    {
        changed.push("labels");
    }
    if changed.is_empty() {
        Assessment::UpToDate
    } else {
        Assessment::Outdated { changed }
    }
}

/// `live` with our data keys and labels set to hold `token`; everything else (other keys, labels,
/// annotations, `resourceVersion` for the optimistic-concurrency check) kept.
pub fn merged(live: &Secret, token: &IssuedToken) -> Secret {
    let mut secret = live.clone();
    secret.type_ = Some(SECRET_TYPE.to_owned());
    secret.string_data = None;
    secret.metadata.managed_fields = None;
    secret
        .metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .extend(labels());
    secret
        .data
        .get_or_insert_with(BTreeMap::new)
        .extend(token_data(token));
    secret
}

/// The expiry of the token stored in `secret`: `None` when there is no non-empty `access_token` or
/// `expires_at` is absent or not RFC 3339.
pub fn stored_expiry(secret: &Secret) -> Option<Timestamp> {
    let data = secret.data.as_ref()?;
    let token = data.get(KEY_ACCESS_TOKEN)?;
    if token.0.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let text = std::str::from_utf8(&data.get(KEY_EXPIRES_AT)?.0).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn token(value: &str, expires: i64) -> IssuedToken {
        IssuedToken {
            token: SecretString::from(value),
            expires_at: Timestamp::from_second(1_700_000_000 + expires).unwrap(),
            renew_at: None,
            region: "zrh".into(),
            user_email: "tenant@example.com".into(),
        }
    }

    fn text(secret: &Secret, key: &str) -> String {
        String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
    }

    #[test]
    fn desired_secret_has_the_documented_shape() {
        let mut t = token("tok-1", 900);
        t.expires_at = t
            .expires_at
            .checked_add(jiff::SignedDuration::from_millis(999))
            .unwrap();
        let s = desired("cloudsigma-csi", "cloudsigma-token", &t);
        assert_eq!(s.metadata.namespace.as_deref(), Some("cloudsigma-csi"));
        assert_eq!(s.metadata.name.as_deref(), Some("cloudsigma-token"));
        assert_eq!(s.type_.as_deref(), Some("Opaque"));
        let keys: Vec<_> = s.data.as_ref().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["access_token", "expires_at", "region", "user_email"]);
        assert_eq!(text(&s, "access_token"), "tok-1");
        assert_eq!(text(&s, "region"), "zrh");
        assert_eq!(text(&s, "user_email"), "tenant@example.com");
        // 1_700_000_900 s, rounded down.
        assert_eq!(text(&s, "expires_at"), "2023-11-14T22:28:20Z");
        assert_eq!(
            stored_expiry(&s),
            Some(Timestamp::from_second(1_700_000_900).unwrap())
        );
        let labels = s.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["app.kubernetes.io/managed-by"], "cloudsigma-ccm");
        assert_eq!(labels["app.kubernetes.io/component"], "csi-token");
        assert!(is_ours(&s));
        assert_eq!(assess(&s, &t), Assessment::UpToDate);
    }

    #[test]
    fn differences_are_named_without_values() {
        let t = token("tok-1", 900);
        let s = desired("ns", "n", &t);
        assert_eq!(
            assess(&s, &token("tok-2", 1500)),
            Assessment::Outdated {
                changed: vec!["access_token", "expires_at"]
            }
        );
        let mut edited = s.clone();
        edited.data.as_mut().unwrap().remove("region");
        edited
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .remove("app.kubernetes.io/component");
        let verdict = assess(&edited, &t);
        assert_eq!(
            verdict,
            Assessment::Outdated {
                changed: vec!["region", "labels"]
            }
        );
        assert!(!format!("{verdict:?}").contains("tok-1"));
    }

    #[test]
    fn foreign_additions_are_kept_and_do_not_count_as_changes() {
        let t = token("tok-1", 900);
        let mut s = desired("ns", "n", &t);
        s.metadata.resource_version = Some("42".into());
        s.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("team".into(), "storage".into());
        s.metadata.annotations = Some(BTreeMap::from([("note".into(), "hi".into())]));
        s.data
            .as_mut()
            .unwrap()
            .insert("cluster_name".into(), ByteString(b"c1".to_vec()));
        assert_eq!(assess(&s, &t), Assessment::UpToDate);

        let m = merged(&s, &token("tok-2", 1500));
        assert_eq!(m.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(m.metadata.labels.as_ref().unwrap()["team"], "storage");
        assert_eq!(m.metadata.annotations.as_ref().unwrap()["note"], "hi");
        assert_eq!(text(&m, "cluster_name"), "c1");
        assert_eq!(text(&m, "access_token"), "tok-2");
        assert_eq!(assess(&m, &token("tok-2", 1500)), Assessment::UpToDate);
    }

    #[test]
    fn wrong_type_or_immutable_is_unusable() {
        let t = token("tok-1", 900);
        let mut s = desired("ns", "n", &t);
        s.type_ = Some("kubernetes.io/tls".into());
        assert_eq!(
            assess(&s, &t),
            Assessment::Unusable {
                why: "type kubernetes.io/tls".into(),
                ours: true
            }
        );
        s.metadata.labels = None;
        assert!(matches!(assess(&s, &t), Assessment::Unusable { ours: false, .. }));
        let mut imm = desired("ns", "n", &t);
        imm.immutable = Some(true);
        assert_eq!(
            assess(&imm, &t),
            Assessment::Unusable {
                why: "immutable".into(),
                ours: true
            }
        );
        // A Secret someone created by hand with the right type but no labels is taken over.
        let mut plain = desired("ns", "n", &t);
        plain.metadata.labels = None;
        plain.type_ = None;
        assert_eq!(
            assess(&plain, &t),
            Assessment::Outdated {
                changed: vec!["labels"]
            }
        );
    }

    #[test]
    fn stored_expiry_needs_a_token_and_a_valid_time() {
        let t = token("tok-1", 900);
        let s = desired("ns", "n", &t);
        let with = |key: &str, value: &[u8]| {
            let mut c = s.clone();
            c.data
                .as_mut()
                .unwrap()
                .insert(key.into(), ByteString(value.to_vec()));
            stored_expiry(&c)
        };
        assert_eq!(with("expires_at", b"not a time"), None);
        assert_eq!(with("access_token", b" \n"), None);
        assert_eq!(
            with("expires_at", b"2030-01-01T00:00:00+01:00"),
            Some("2029-12-31T23:00:00Z".parse().unwrap())
        );
        let mut none = s.clone();
        none.data = None;
        assert_eq!(stored_expiry(&none), None);
    }
}
