//! List envelopes: pagination, filters, ordering, `fields`, short vs detail objects.

use serde_json::{Value, json};

use super::reply::{ApiError, Reply};
use crate::store::render::project;

/// Items per page when `limit` is absent (`default_limit` of the schemas).
pub(crate) const DEFAULT_LIMIT: usize = 20;

/// Query parameters that are not filters.
const RESERVED: &[&str] = &["limit", "offset", "fields", "format", "order_by"];

/// How one collection lists.
pub(crate) struct ListSpec {
    /// Filterable field -> allowed filter types (`exact`, `contains`).
    pub(crate) filtering: &'static [(&'static str, &'static [&'static str])],
    /// All fields of the full object (a filter on one of these that is not filterable is a 400; other
    /// unknown parameters are ignored, as Tastypie does).
    pub(crate) fields: &'static [&'static str],
    /// Fields of the short list.
    pub(crate) short: &'static [&'static str],
}

/// Lists `items` (full objects in creation order) as an envelope.
pub(crate) fn envelope(
    items: Vec<Value>,
    query: &[(String, String)],
    spec: &ListSpec,
    detail: bool,
) -> Result<Reply, ApiError> {
    let mut limit = DEFAULT_LIMIT;
    let mut offset = 0usize;
    let mut fields: Option<Vec<String>> = None;
    let mut order: Option<(String, bool)> = None;
    let mut filters: Vec<(String, &str, Vec<String>)> = Vec::new();
    for (k, v) in query {
        match k.as_str() {
            "limit" => limit = parse_count(v, "limit")?,
            "offset" => offset = parse_count(v, "offset")?,
            "fields" => {
                fields = Some(
                    v.split(',')
                        .map(|f| f.trim().to_owned())
                        .filter(|f| !f.is_empty())
                        .collect(),
                )
            }
            "order_by" => {
                let (field, desc) = v.strip_prefix('-').map_or((v.as_str(), false), |f| (f, true));
                if !["uuid", "name"].contains(&field) {
                    return Err(ApiError::validation(
                        "order_by",
                        format!("Cannot order by {field:?}; use uuid or name"),
                    ));
                }
                order = Some((field.to_owned(), desc));
            }
            _ if RESERVED.contains(&k.as_str()) => {}
            _ => {
                let (field, ftype) = k.split_once("__").unwrap_or((k.as_str(), "exact"));
                let Some((_, types)) = spec.filtering.iter().find(|(f, _)| *f == field) else {
                    if spec.fields.contains(&field) {
                        return Err(ApiError::validation(
                            k,
                            format!("The '{field}' field does not allow filtering."),
                        ));
                    }
                    continue;
                };
                let Some(ftype) = types.iter().find(|t| **t == ftype) else {
                    return Err(ApiError::validation(
                        k,
                        format!("'{ftype}' is not an allowed filter on the '{field}' field."),
                    ));
                };
                filters.push((field.to_owned(), ftype, split_values(v)));
            }
        }
    }
    let mut items: Vec<Value> = items
        .into_iter()
        .filter(|o| filters.iter().all(|(f, t, vals)| matches(o, f, t, vals)))
        .collect();
    if let Some((field, desc)) = order {
        items.sort_by(|a, b| {
            let key = |o: &Value| {
                o.get(&field)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let c = key(a).cmp(&key(b));
            if desc { c.reverse() } else { c }
        });
    }
    let total = items.len();
    let page = items.into_iter().skip(offset);
    let page: Vec<Value> = if limit == 0 {
        page.collect()
    } else {
        page.take(limit).collect()
    };
    let objects: Vec<Value> = page
        .iter()
        .map(|o| match &fields {
            Some(f) => project(o, &f.iter().map(String::as_str).collect::<Vec<_>>()),
            None if detail => o.clone(),
            None => project(o, spec.short),
        })
        .collect();
    Ok(Reply::ok(json!({
        "meta": {"limit": limit, "offset": offset, "total_count": total},
        "objects": objects,
    })))
}

fn parse_count(v: &str, name: &str) -> Result<usize, ApiError> {
    v.trim()
        .parse()
        .map_err(|_| ApiError::validation(name, format!("{name} must be a non-negative integer")))
}

/// Splits `a,b` into values; `\,` is a literal comma.
pub(crate) fn split_values(v: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(',') => out.last_mut().into_iter().for_each(|s| s.push(',')),
                Some(other) => out.last_mut().into_iter().for_each(|s| {
                    s.push('\\');
                    s.push(other);
                }),
                None => out.last_mut().into_iter().for_each(|s| s.push('\\')),
            },
            ',' => out.push(String::new()),
            c => out.last_mut().into_iter().for_each(|s| s.push(c)),
        }
    }
    out
}

/// Uuid of a reference value (`{uuid}` or a bare string).
fn ref_id(v: &Value) -> Option<&str> {
    v.as_str().or_else(|| v.get("uuid").and_then(Value::as_str))
}

fn matches(obj: &Value, field: &str, ftype: &str, vals: &[String]) -> bool {
    if field == "tag" {
        return obj.get("tags").and_then(Value::as_array).is_some_and(|tags| {
            tags.iter()
                .filter_map(ref_id)
                .any(|t| vals.iter().any(|x| x == t))
        });
    }
    let Some(v) = obj.get(field) else { return false };
    if ftype == "contains" {
        return v
            .as_str()
            .is_some_and(|s| vals.iter().any(|x| s.contains(x.as_str())));
    }
    ref_id(v).is_some_and(|s| vals.iter().any(|x| x == s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_with_escapes() {
        assert_eq!(split_values("a,b"), vec!["a", "b"]);
        assert_eq!(split_values(r"a\,b,c"), vec!["a,b", "c"]);
        assert_eq!(split_values("x"), vec!["x"]);
    }
}
