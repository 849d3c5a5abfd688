//! Lists: the `{meta, objects}` envelope, filters, and paging with `limit`/`offset` until `total_count`.

use std::marker::PhantomData;

use futures::{Stream, StreamExt, TryStreamExt, stream};
use serde::{Deserialize, de::DeserializeOwned};

use crate::{
    Client, Error, Result,
    path::{ApiPath, check_id},
    types::lenient,
};

/// Upper bound on pages per listing, against a server that never ends a list.
const MAX_PAGES: u64 = 100_000;

/// The `meta` of a list response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ListMeta {
    /// Page size the API applied.
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub limit: Option<u64>,
    /// Offset of this page.
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub offset: Option<u64>,
    /// Number of objects matching the request.
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub total_count: Option<u64>,
}

#[derive(Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct Envelope<T> {
    #[serde(default)]
    meta: ListMeta,
    #[serde(default = "Vec::new", deserialize_with = "lenient::null_default")]
    objects: Vec<T>,
}

/// Filters of server and drive lists. Different filters AND together; the uuids OR together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only these uuids. `Some(empty)` matches nothing (and sends no request); `None` does not filter.
    pub uuids: Option<Vec<String>>,
    /// Exact name.
    pub name: Option<String>,
    /// Name contains this text.
    pub name_contains: Option<String>,
    /// Tag uuid.
    pub tag: Option<String>,
}

impl ListFilter {
    /// No filter: every object.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only the given uuids.
    pub fn by_uuids<I: IntoIterator<Item = S>, S: Into<String>>(uuids: I) -> Self {
        Self {
            uuids: Some(uuids.into_iter().map(Into::into).collect()),
            ..Self::default()
        }
    }

    /// Only objects named exactly `name`.
    pub fn by_name(name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            ..Self::default()
        }
    }

    /// Adds the filters as query parameters; `None` when the filter matches nothing.
    pub(crate) fn apply(&self, mut path: ApiPath) -> Result<Option<ApiPath>> {
        if let Some(uuids) = &self.uuids {
            if uuids.is_empty() {
                return Ok(None);
            }
            for uuid in uuids {
                check_id("uuid in the list filter", uuid)?;
            }
            path = path.with_query(
                "uuid",
                uuids
                    .iter()
                    .map(|u| escape_value(u))
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        for (key, value) in [
            ("name", &self.name),
            ("name__contains", &self.name_contains),
            ("tag", &self.tag),
        ] {
            if let Some(value) = value {
                if value.is_empty() {
                    return Err(Error::InvalidArgument(format!("list filter `{key}` is empty")));
                }
                path = path.with_query(key, escape_value(value));
            }
        }
        Ok(Some(path))
    }
}

/// A comma inside one value is escaped with a backslash (commas separate OR-ed values).
fn escape_value(value: &str) -> String {
    value.replace(',', "\\,")
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// The objects of this page.
    pub objects: Vec<T>,
    /// Offset of the first object.
    pub offset: u64,
    /// The `total_count` the API reported with this page.
    pub total_count: Option<u64>,
}

/// Walks a list page by page (`limit` = the client's page size). Ends at `total_count` or at the first
/// empty page, whichever comes first, so a changing `total_count` cannot make it loop.
#[derive(Debug)]
pub struct Pager<T> {
    client: Client,
    path: Option<ApiPath>,
    offset: u64,
    pages: u64,
    done: bool,
    _objects: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Pager<T> {
    pub(crate) fn new(client: Client, path: Option<ApiPath>) -> Self {
        let done = path.is_none();
        Self {
            client,
            path,
            offset: 0,
            pages: 0,
            done,
            _objects: PhantomData,
        }
    }

    /// The next page, or `None` when the list is exhausted.
    pub async fn next_page(&mut self) -> Result<Option<Page<T>>> {
        let Some(base) = self.path.as_ref().filter(|_| !self.done) else {
            return Ok(None);
        };
        let limit = u64::from(self.client.options().page_size);
        let path = base
            .clone()
            .with_query("limit", limit.to_string())
            .with_query("offset", self.offset.to_string());
        let envelope: Envelope<T> = self.client.get_json(&path).await?;
        self.pages += 1;
        let count = envelope.objects.len() as u64;
        if count == 0 {
            self.done = true;
            return Ok(None);
        }
        let start = self.offset;
        self.offset += count;
        let total = envelope.meta.total_count;
        self.done = match total {
            Some(total) => self.offset >= total,
            None => count < limit,
        };
        if !self.done && self.pages >= MAX_PAGES {
            return Err(Error::Decode {
                method: "GET",
                route: path.route,
                status: 200,
                reason: format!("the list did not end after {MAX_PAGES} pages"),
                request_id: None,
            });
        }
        Ok(Some(Page {
            objects: envelope.objects,
            offset: start,
            total_count: total,
        }))
    }

    /// Every remaining object.
    pub async fn collect_all(mut self) -> Result<Vec<T>> {
        let mut all = Vec::new();
        while let Some(page) = self.next_page().await? {
            all.extend(page.objects);
        }
        Ok(all)
    }

    /// The remaining objects one by one, fetching pages as needed.
    pub fn into_stream(self) -> impl Stream<Item = Result<T>> + Send
    where
        T: Send + 'static,
    {
        stream::try_unfold(self, |mut pager| async move {
            Ok(pager.next_page().await?.map(|page| (page.objects, pager)))
        })
        .map_ok(|objects| stream::iter(objects.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_query_parameters() {
        let base = url::Url::parse("https://x/api/2.0/").unwrap();
        let path = ApiPath::new("servers/detail/", &["servers", "detail"]);
        let f = ListFilter {
            tag: Some("t1".into()),
            ..ListFilter::by_uuids(["a", "b"])
        };
        let url = f.apply(path.clone()).unwrap().unwrap().url(&base).unwrap();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            [("uuid".into(), "a,b".into()), ("tag".into(), "t1".into())]
        );

        let named = ListFilter::by_name("pvc,1")
            .apply(path.clone())
            .unwrap()
            .unwrap()
            .url(&base)
            .unwrap();
        assert_eq!(named.query_pairs().next().unwrap().1, "pvc\\,1");

        assert_eq!(
            ListFilter::by_uuids(Vec::<String>::new())
                .apply(path.clone())
                .unwrap(),
            None
        );
        assert!(ListFilter::by_uuids([""]).apply(path.clone()).is_err());
        assert!(
            ListFilter::by_name("")
                .apply(path.clone())
                .unwrap_err()
                .to_string()
                .contains("`name`")
        );
        assert!(ListFilter::all().apply(path).unwrap().is_some());
    }

    #[test]
    fn envelope_tolerates_missing_meta_and_null_objects() {
        let e: Envelope<serde_json::Value> = serde_json::from_str(r#"{"objects":null}"#).unwrap();
        assert!(e.objects.is_empty() && e.meta.total_count.is_none());
        let e: Envelope<serde_json::Value> =
            serde_json::from_str(r#"{"meta":{"limit":20,"offset":0,"total_count":45},"objects":[{}]}"#)
                .unwrap();
        assert_eq!(e.meta.total_count, Some(45));
    }
}
