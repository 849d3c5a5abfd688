//! Reading request bodies: JSON objects, bulk `{"objects": [...]}` envelopes and typed fields.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::reply::ApiError;

pub(crate) type Obj = Map<String, Value>;

/// Longest `meta` key accepted.
const META_KEY_MAX: usize = 32;

/// Parses a JSON body; an empty body is `null`.
pub(crate) fn parse(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Request body is not valid JSON: {e}")))
}

/// A JSON object body (`null` / empty counts as `{}`).
pub(crate) fn object(body: &[u8]) -> Result<Obj, ApiError> {
    match parse(body)? {
        Value::Null => Ok(Obj::new()),
        Value::Object(o) => Ok(o),
        _ => Err(ApiError::bad_request("Request body must be a JSON object")),
    }
}

/// The objects of a create request: `{"objects": [...]}` or a bare list; a single bare object is refused.
pub(crate) fn objects(body: &[u8]) -> Result<Vec<Obj>, ApiError> {
    let list = match parse(body)? {
        Value::Object(mut o) => match o.remove("objects") {
            Some(Value::Array(a)) => a,
            Some(_) => return Err(ApiError::validation("objects", "objects must be a list")),
            None => return Err(ApiError::validation("objects", "Expected {\"objects\": [...]}")),
        },
        Value::Array(a) => a,
        _ => return Err(ApiError::validation("objects", "Expected {\"objects\": [...]}")),
    };
    if list.is_empty() {
        return Err(ApiError::validation("objects", "objects must not be empty"));
    }
    list.into_iter()
        .map(|v| match v {
            Value::Object(o) => Ok(o),
            _ => Err(ApiError::validation(
                "objects",
                "each element of objects must be an object",
            )),
        })
        .collect()
}

/// A present, non-null field.
fn field<'a>(o: &'a Obj, name: &str) -> Option<&'a Value> {
    o.get(name).filter(|v| !v.is_null())
}

/// A required non-empty string.
pub(crate) fn req_str(o: &Obj, name: &str) -> Result<String, ApiError> {
    opt_str(o, name)?.ok_or_else(|| ApiError::validation(name, format!("{name} is required")))
}

/// An optional string (must be non-empty when given).
pub(crate) fn opt_str(o: &Obj, name: &str) -> Result<Option<String>, ApiError> {
    match field(o, name) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(ApiError::validation(name, format!("{name} must not be empty"))),
        Some(_) => Err(ApiError::validation(name, format!("{name} must be a string"))),
    }
}

/// An integer given as a JSON number or a decimal string (both are accepted by the real API).
pub(crate) fn as_u64(v: &Value, name: &str) -> Result<u64, ApiError> {
    let bad = || ApiError::validation(name, format!("{name} must be a non-negative integer"));
    match v {
        Value::Number(n) => n.as_u64().ok_or_else(bad),
        Value::String(s) => s.trim().parse().map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// An optional non-negative integer.
pub(crate) fn opt_u64(o: &Obj, name: &str) -> Result<Option<u64>, ApiError> {
    field(o, name).map(|v| as_u64(v, name)).transpose()
}

/// A required non-negative integer.
pub(crate) fn req_u64(o: &Obj, name: &str) -> Result<u64, ApiError> {
    opt_u64(o, name)?.ok_or_else(|| ApiError::validation(name, format!("{name} is required")))
}

/// An optional (nullable) integer such as `boot_order`.
pub(crate) fn opt_i64(o: &Obj, name: &str) -> Result<Option<i64>, ApiError> {
    match field(o, name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| ApiError::validation(name, format!("{name} must be an integer"))),
        Some(_) => Err(ApiError::validation(
            name,
            format!("{name} must be an integer or null"),
        )),
    }
}

/// An optional boolean.
pub(crate) fn opt_bool(o: &Obj, name: &str) -> Result<Option<bool>, ApiError> {
    match field(o, name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::validation(
            name,
            format!("{name} must be true or false"),
        )),
    }
}

/// An optional `meta` map of strings with keys of at most 32 characters.
pub(crate) fn opt_meta(o: &Obj, name: &str) -> Result<Option<BTreeMap<String, String>>, ApiError> {
    let Some(v) = field(o, name) else { return Ok(None) };
    let Value::Object(m) = v else {
        return Err(ApiError::validation(
            name,
            format!("{name} must be an object of strings"),
        ));
    };
    let mut out = BTreeMap::new();
    for (k, v) in m {
        if k.chars().count() > META_KEY_MAX {
            return Err(ApiError::validation(
                name,
                format!("meta key {k:?} is longer than {META_KEY_MAX} characters"),
            ));
        }
        let Value::String(s) = v else {
            return Err(ApiError::validation(
                name,
                format!("meta value of {k:?} must be a string"),
            ));
        };
        out.insert(k.clone(), s.clone());
    }
    Ok(Some(out))
}

/// A reference given as a uuid string or an object with a `uuid` (a response-shaped reference).
pub(crate) fn ref_uuid(v: &Value, point: &str) -> Result<String, ApiError> {
    match v {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        Value::Object(o) => match o.get("uuid") {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(ApiError::validation(
                point,
                format!("{point} must be a uuid or an object with a uuid"),
            )),
        },
        _ => Err(ApiError::validation(
            point,
            format!("{point} must be a uuid or an object with a uuid"),
        )),
    }
}

/// Optional `tags`: a list of uuids or references.
pub(crate) fn opt_tags(o: &Obj) -> Result<Option<Vec<String>>, ApiError> {
    match field(o, "tags") {
        None => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| ref_uuid(t, "tags"))
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(ApiError::validation("tags", "tags must be a list")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Obj {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn objects_envelope_and_bare_list() {
        assert_eq!(objects(br#"{"objects":[{"a":1}]}"#).unwrap().len(), 1);
        assert_eq!(objects(br#"[{"a":1},{"b":2}]"#).unwrap().len(), 2);
        assert_eq!(
            objects(br#"{"a":1}"#).unwrap_err().point.as_deref(),
            Some("objects")
        );
        assert_eq!(
            objects(br#"{"objects":[]}"#).unwrap_err().point.as_deref(),
            Some("objects")
        );
        assert!(objects(b"{nope").unwrap_err().message.contains("JSON"));
    }

    #[test]
    fn integers_accept_numeric_strings() {
        let o = obj(json!({"size": "1024", "cpu": 1000, "bad": -1, "worse": "x"}));
        assert_eq!(req_u64(&o, "size").unwrap(), 1024);
        assert_eq!(req_u64(&o, "cpu").unwrap(), 1000);
        assert_eq!(req_u64(&o, "bad").unwrap_err().point.as_deref(), Some("bad"));
        assert_eq!(req_u64(&o, "worse").unwrap_err().point.as_deref(), Some("worse"));
        assert_eq!(req_u64(&o, "mem").unwrap_err().message, "mem is required");
    }

    #[test]
    fn meta_rules() {
        let long = "k".repeat(33);
        let o = obj(json!({"meta": {long: "v"}}));
        assert_eq!(opt_meta(&o, "meta").unwrap_err().point.as_deref(), Some("meta"));
        let o = obj(json!({"meta": {"a": 1}}));
        assert!(opt_meta(&o, "meta").is_err());
        let o = obj(json!({"meta": {"a": "1"}}));
        assert_eq!(opt_meta(&o, "meta").unwrap().unwrap()["a"], "1");
    }

    #[test]
    fn references() {
        assert_eq!(ref_uuid(&json!("d1"), "drive").unwrap(), "d1");
        assert_eq!(
            ref_uuid(&json!({"uuid": "d1", "resource_uri": "x"}), "drive").unwrap(),
            "d1"
        );
        assert!(ref_uuid(&json!(5), "drive").is_err());
    }
}
