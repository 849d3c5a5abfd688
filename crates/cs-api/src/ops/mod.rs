//! Operations on resources, as methods of [`Client`](crate::Client).

mod attach;
mod drives;
mod misc;
mod servers;
mod snapshots;

pub use attach::{MAX_DRIVES_PER_SERVER, attach_channel_order, pick_free_channel};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Error, Result, path::ApiPath};

/// Takes the single object of a create/action answer: `{"objects": [x]}` (documented), `[x]` or a bare `x`.
pub(crate) fn single_object<T: DeserializeOwned>(
    method: &'static str,
    path: &ApiPath,
    value: Value,
) -> Result<T> {
    let fail = |reason: String| Error::Decode {
        method,
        route: path.route,
        status: 200,
        reason,
        request_id: None,
    };
    let item = match value {
        Value::Object(mut map) if map.contains_key("objects") => match map.remove("objects") {
            Some(Value::Array(items)) => items.into_iter().next(),
            _ => return Err(fail("`objects` is not a list".into())),
        },
        Value::Array(items) => items.into_iter().next(),
        other @ Value::Object(_) => Some(other),
        _ => return Err(fail("expected an object".into())),
    };
    let item = item.ok_or_else(|| fail("the answer holds no object".into()))?;
    serde_json::from_value(item).map_err(|e| fail(crate::error::describe_json_error(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_object_accepts_envelope_list_and_bare_object() {
        let path = ApiPath::new("drives/", &["drives"]);
        for v in [
            serde_json::json!({"objects": [{"uuid": "a"}]}),
            serde_json::json!([{"uuid": "a"}]),
            serde_json::json!({"uuid": "a"}),
        ] {
            let d: crate::Drive = single_object("POST", &path, v).unwrap();
            assert_eq!(d.uuid, "a");
        }
        assert!(single_object::<crate::Drive>("POST", &path, serde_json::json!({"objects": []})).is_err());
        assert!(single_object::<crate::Drive>("POST", &path, serde_json::json!(3)).is_err());
    }
}
