//! Request counts of the kube-apiserver (`apiserver_request_total` on its `/metrics`, readable with
//! the admin credentials of the kubeconfig), diffed between two scrapes.

use std::{collections::BTreeMap, fmt};

use crate::{
    error::{Error, Result},
    prom::Samples,
};

/// One `(verb, resource, subresource, code)` series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestKey {
    /// `PATCH`, `GET`, `LIST`, `WATCH`, `POST`, `PUT`, `DELETE`, ...
    pub verb: String,
    /// `nodes`, `events`, ...
    pub resource: String,
    /// `status` or empty.
    pub subresource: String,
    /// HTTP status code as text (`0` for a request that did not complete).
    pub code: String,
}

impl fmt::Display for RequestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if !self.subresource.is_empty() {
            write!(f, "/{}", self.subresource)?;
        }
        write!(f, " {}", self.code)
    }
}

/// Request counts by series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestCounts(BTreeMap<RequestKey, u64>);

/// The verbs that change objects.
pub const WRITE_VERBS: [&str; 6] = ["POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY"];

impl RequestCounts {
    /// The counts of `apiserver_request_total` in a scrape, for the resources in `resources`.
    pub fn from_samples(samples: &Samples, resources: &[&str]) -> Self {
        let mut map = BTreeMap::new();
        for s in samples.select("apiserver_request_total", &[]) {
            if !resources.contains(&s.label("resource")) {
                continue;
            }
            let key = RequestKey {
                verb: s.label("verb").to_owned(),
                resource: s.label("resource").to_owned(),
                subresource: s.label("subresource").to_owned(),
                code: s.label("code").to_owned(),
            };
            *map.entry(key).or_insert(0) += s.value.max(0.0) as u64;
        }
        Self(map)
    }

    /// The requests made after `before` was taken (series that did not grow are left out).
    pub fn since(&self, before: &Self) -> Self {
        Self(
            self.0
                .iter()
                .filter_map(|(k, &v)| {
                    let d = v.saturating_sub(before.0.get(k).copied().unwrap_or(0));
                    (d > 0).then(|| (k.clone(), d))
                })
                .collect(),
        )
    }

    /// Every series with its count.
    pub fn iter(&self) -> impl Iterator<Item = (&RequestKey, u64)> {
        self.0.iter().map(|(k, &v)| (k, v))
    }

    /// The sum over series whose verb, resource and subresource match (`None` = any).
    pub fn count(&self, verb: Option<&str>, resource: &str, subresource: Option<&str>) -> u64 {
        self.iter()
            .filter(|(k, _)| {
                verb.is_none_or(|v| k.verb == v)
                    && k.resource == resource
                    && subresource.is_none_or(|s| k.subresource == s)
            })
            .map(|(_, v)| v)
            .sum()
    }

    /// Write requests (any code) to `resource` (all subresources).
    pub fn writes(&self, resource: &str) -> u64 {
        WRITE_VERBS
            .iter()
            .map(|v| self.count(Some(v), resource, None))
            .sum()
    }

    /// A one-line summary, e.g. `PATCH nodes 200: 1000, PATCH nodes/status 200: 1000`.
    pub fn summary(&self) -> String {
        if self.0.is_empty() {
            return "none".into();
        }
        self.iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Scrapes the apiserver's `/metrics` through `client` (whose credentials must allow it).
pub async fn scrape(client: &kube::Client, resources: &[&str]) -> Result<RequestCounts> {
    let req = http::Request::get("/metrics")
        .body(Vec::new())
        .map_err(|e| Error::parse("apiserver /metrics request", e.to_string()))?;
    let text = client
        .request_text(req)
        .await
        .map_err(|e| Error::kube("GET /metrics", e))?;
    let samples = Samples::parse("apiserver /metrics", &text)?;
    Ok(RequestCounts::from_samples(&samples, resources))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape_text(patch_status: u64, patch: u64, conflicts: u64) -> String {
        format!(
            concat!(
                "# TYPE apiserver_request_total counter\n",
                r#"apiserver_request_total{{code="200",component="apiserver",contentType="application/json",dry_run="",group="",resource="nodes",scope="resource",subresource="status",verb="PATCH",version="v1"}} {}"#,
                "\n",
                r#"apiserver_request_total{{code="200",component="apiserver",contentType="application/json",dry_run="",group="",resource="nodes",scope="resource",subresource="",verb="PATCH",version="v1"}} {}"#,
                "\n",
                r#"apiserver_request_total{{code="409",component="apiserver",contentType="application/json",dry_run="",group="",resource="nodes",scope="resource",subresource="",verb="PATCH",version="v1"}} {}"#,
                "\n",
                r#"apiserver_request_total{{code="200",component="apiserver",contentType="application/json",dry_run="",group="",resource="nodes",scope="cluster",subresource="",verb="LIST",version="v1"}} 4"#,
                "\n",
                r#"apiserver_request_total{{code="200",component="apiserver",contentType="application/json",dry_run="",group="",resource="endpoints",scope="resource",subresource="",verb="GET",version="v1"}} 9"#,
                "\n",
            ),
            patch_status, patch, conflicts
        )
    }

    #[test]
    fn counts_writes_per_phase_by_verb_and_subresource() {
        let parse = |t: &str| RequestCounts::from_samples(&Samples::parse("t", t).unwrap(), &["nodes"]);
        let before = parse(&scrape_text(10, 10, 0));
        let after = parse(&scrape_text(1010, 1010, 3));
        let d = after.since(&before);
        assert_eq!(d.count(Some("PATCH"), "nodes", Some("status")), 1000);
        assert_eq!(d.count(Some("PATCH"), "nodes", Some("")), 1003);
        assert_eq!(d.writes("nodes"), 2003);
        assert_eq!(
            d.count(Some("LIST"), "nodes", None),
            0,
            "unchanged series drop out"
        );
        assert_eq!(
            d.count(Some("GET"), "endpoints", None),
            0,
            "other resources are not kept"
        );
        assert_eq!(
            d.summary(),
            "PATCH nodes 200: 1000, PATCH nodes 409: 3, PATCH nodes/status 200: 1000"
        );
        assert_eq!(RequestCounts::default().summary(), "none");
    }
}
