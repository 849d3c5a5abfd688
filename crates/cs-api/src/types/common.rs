//! Building blocks shared by every resource: references, metadata maps, secret fields, string enums
//! with an `Unknown` fallback, and lenient number decoding.

use std::{
    collections::BTreeMap,
    fmt,
    ops::{Deref, DerefMut},
};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use serde_json::Value;

/// Fields of a resource this crate does not model. They are kept on read and sent back on a full PUT,
/// so a read-modify-write never drops data the API returned.
pub type Extra = serde_json::Map<String, Value>;

/// A reference to another object: `{"uuid": …, "resource_uri": …}`.
///
/// Accepts the request form as well (a bare uuid string); serializes as an object. For IPs the uuid is
/// the address itself (`"203.0.113.7"`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ResourceRef {
    /// The referenced object's uuid.
    pub uuid: String,
    /// Its URI, e.g. `/api/2.0/drives/{uuid}/`, when the API gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_uri: Option<String>,
}

impl ResourceRef {
    /// A reference by uuid only (the form requests use).
    pub fn new(uuid: impl Into<String>) -> Self {
        Self {
            uuid: uuid.into(),
            resource_uri: None,
        }
    }
}

impl<'de> Deserialize<'de> for ResourceRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Full {
            #[serde(default)]
            uuid: Option<String>,
            #[serde(default)]
            resource_uri: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Bare(String),
            Full(Full),
        }
        match Form::deserialize(deserializer)? {
            Form::Bare(uuid) => Ok(Self {
                uuid,
                resource_uri: None,
            }),
            Form::Full(Full {
                uuid: Some(uuid),
                resource_uri,
            }) => Ok(Self { uuid, resource_uri }),
            // Some references carry only a URI; its last path segment is the uuid.
            Form::Full(Full {
                uuid: None,
                resource_uri: Some(uri),
            }) => {
                let uuid = uri
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                if uuid.is_empty() {
                    return Err(de::Error::custom(
                        "reference without `uuid` and with an empty `resource_uri`",
                    ));
                }
                Ok(Self {
                    uuid,
                    resource_uri: Some(uri),
                })
            }
            Form::Full(Full {
                uuid: None,
                resource_uri: None,
            }) => Err(de::Error::custom("reference without `uuid` or `resource_uri`")),
        }
    }
}

/// Keys of a `meta` map whose values are never printed by `Debug` (they can carry bootstrap tokens).
fn is_sensitive_meta_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["user-data", "user_data", "password", "secret", "token", "private"]
        .iter()
        .any(|needle| key.contains(needle))
}

/// A resource's `meta` map (string keys and values; `PUT` replaces it whole).
///
/// Non-string scalar values the API might return are kept as their JSON text. `Debug` prints every key
/// but hides the values of keys that can hold secrets (e.g. `cloudinit-user-data`).
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Meta(pub BTreeMap<String, String>);

impl Meta {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Deref for Meta {
    type Target = BTreeMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Meta {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl From<BTreeMap<String, String>> for Meta {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self(map)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Meta {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in &self.0 {
            if is_sensitive_meta_key(key) {
                map.entry(key, &"[REDACTED]");
            } else {
                map.entry(key, value);
            }
        }
        map.finish()
    }
}

impl<'de> Deserialize<'de> for Meta {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Option::<BTreeMap<String, Value>>::deserialize(deserializer)?.unwrap_or_default();
        Ok(Self(
            raw.into_iter()
                .filter_map(|(key, value)| match value {
                    Value::Null => None,
                    Value::String(text) => Some((key, text)),
                    other => Some((key, other.to_string())),
                })
                .collect(),
        ))
    }
}

/// A secret string field of a resource (e.g. a server's `vnc_password`).
///
/// Held in a `SecretString`: `Debug` prints `[REDACTED]`; it is serialized (a full `PUT` must send it back)
/// but never logged.
#[derive(Clone)]
pub struct SecretValue(SecretString);

impl SecretValue {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The value; call only where it is sent.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl PartialEq for SecretValue {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Serialize for SecretValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self(SecretString::from(String::deserialize(deserializer)?)))
    }
}

/// Defines a string-valued API enum: known values as variants, anything else kept in `Unknown(String)`.
/// `Default` is `Unknown("")` (the field was missing or null).
macro_rules! api_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this client does not know (or an empty string when the field was missing);
            /// the API's text is kept.
            Unknown(String),
        }

        impl $name {
            /// The API's text for this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Unknown(text) => text,
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::Unknown(String::new())
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $( $text => Self::$variant, )+
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Ok(Option::<String>::deserialize(deserializer)?
                    .map(|text| Self::from(text.as_str()))
                    .unwrap_or_default())
            }
        }
    };
}
pub(crate) use api_enum;

/// Serde helpers for fields the API may send as `null`, as a number or as a numeric string.
pub(crate) mod lenient {
    use serde::{Deserialize, Deserializer, de};
    use serde_json::Value;

    /// `null` (or a missing field, with `#[serde(default)]`) becomes `T::default()`.
    pub(crate) fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Default + Deserialize<'de>,
    {
        Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
    }

    fn to_u64<E: de::Error>(value: &Value) -> Result<Option<u64>, E> {
        match value {
            Value::Null => Ok(None),
            Value::Number(n) => n
                .as_u64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1.8e19)
                        .map(|f| f as u64)
                })
                .map(Some)
                .ok_or_else(|| E::custom(format!("expected a non-negative integer, got {n}"))),
            Value::String(text) => text
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| E::custom("expected a non-negative integer in a string")),
            _ => Err(E::custom("expected a non-negative integer")),
        }
    }

    /// An integer that may come as a number or a numeric string; `null` is `0`.
    pub(crate) fn u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        Ok(to_u64(&Value::deserialize(deserializer)?)?.unwrap_or(0))
    }

    /// An optional integer that may come as a number or a numeric string.
    pub(crate) fn opt_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
        to_u64(&Value::deserialize(deserializer)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    api_enum! {
        /// Test enum.
        Color { Red => "red", Blue => "blue" }
    }

    #[test]
    fn api_enum_keeps_unknown_text_and_maps_null_to_default() {
        let known: Color = serde_json::from_str("\"red\"").unwrap();
        assert_eq!(known, Color::Red);
        let unknown: Color = serde_json::from_str("\"purple\"").unwrap();
        assert_eq!(unknown, Color::Unknown("purple".into()));
        assert_eq!(serde_json::to_string(&unknown).unwrap(), "\"purple\"");
        let null: Color = serde_json::from_str("null").unwrap();
        assert_eq!(null, Color::Unknown(String::new()));
        assert_eq!(Color::Blue.to_string(), "blue");
    }

    #[test]
    fn reference_accepts_string_object_and_uri_only() {
        let a: ResourceRef = serde_json::from_str("\"d1\"").unwrap();
        assert_eq!(a, ResourceRef::new("d1"));
        let b: ResourceRef =
            serde_json::from_str(r#"{"uuid":"d2","resource_uri":"/api/2.0/drives/d2/"}"#).unwrap();
        assert_eq!(b.uuid, "d2");
        assert_eq!(b.resource_uri.as_deref(), Some("/api/2.0/drives/d2/"));
        let c: ResourceRef = serde_json::from_str(r#"{"resource_uri":"/api/2.0/user/u9/"}"#).unwrap();
        assert_eq!(c.uuid, "u9");
        assert!(serde_json::from_str::<ResourceRef>("{}").is_err());
        assert_eq!(
            serde_json::to_string(&ResourceRef::new("x")).unwrap(),
            r#"{"uuid":"x"}"#
        );
    }

    #[test]
    fn meta_tolerates_null_and_non_strings_and_hides_secret_values() {
        let meta: Meta = serde_json::from_str(
            r#"{"a":"1","n":5,"b":true,"gone":null,"cloudinit-user-data":"am9pbi10b2tlbg=="}"#,
        )
        .unwrap();
        assert_eq!(meta.get("a").map(String::as_str), Some("1"));
        assert_eq!(meta.get("n").map(String::as_str), Some("5"));
        assert_eq!(meta.get("b").map(String::as_str), Some("true"));
        assert!(!meta.contains_key("gone"));
        let debug = format!("{meta:?}");
        assert!(debug.contains("cloudinit-user-data"), "{debug}");
        assert!(!debug.contains("am9pbi10b2tlbg=="), "{debug}");
        let null: Meta = serde_json::from_str("null").unwrap();
        assert!(null.is_empty());
    }

    #[test]
    fn secret_value_serializes_but_never_debug_prints() {
        let secret = SecretValue::new("vnc-pass-42");
        assert_eq!(format!("{secret:?}"), "[REDACTED]");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"vnc-pass-42\"");
    }

    #[derive(Deserialize)]
    struct Sizes {
        #[serde(default, deserialize_with = "lenient::u64")]
        a: u64,
        #[serde(default, deserialize_with = "lenient::opt_u64")]
        b: Option<u64>,
        #[serde(default, deserialize_with = "lenient::null_default")]
        c: Vec<u8>,
    }

    #[test]
    fn lenient_numbers_accept_strings_and_null() {
        let s: Sizes = serde_json::from_str(r#"{"a":"1073741824","b":null,"c":null}"#).unwrap();
        assert_eq!((s.a, s.b, s.c.len()), (1_073_741_824, None, 0));
        let s: Sizes = serde_json::from_str(r#"{"a":5.0,"b":7}"#).unwrap();
        assert_eq!((s.a, s.b), (5, Some(7)));
        assert!(serde_json::from_str::<Sizes>(r#"{"a":-1}"#).is_err());
        assert!(serde_json::from_str::<Sizes>(r#"{"a":"ten"}"#).is_err());
    }
}
