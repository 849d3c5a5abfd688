//! Request paths: a static route template for logs and metrics plus the concrete segments and query.

use url::Url;

use crate::{Error, Result};

/// HTTP methods the client uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Put,
    Post,
    Delete,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Put => "PUT",
            Self::Post => "POST",
            Self::Delete => "DELETE",
        }
    }

    /// GET, PUT and DELETE may be repeated; POST (creates and actions) may not.
    pub(crate) fn is_idempotent(self) -> bool {
        !matches!(self, Self::Post)
    }

    pub(crate) fn to_reqwest(self) -> reqwest::Method {
        match self {
            Self::Get => reqwest::Method::GET,
            Self::Put => reqwest::Method::PUT,
            Self::Post => reqwest::Method::POST,
            Self::Delete => reqwest::Method::DELETE,
        }
    }
}

/// A path below the API base: `segments` joined with `/`, always with a trailing slash, plus a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiPath {
    /// Static template, e.g. `servers/{uuid}/action/?do=start`.
    pub(crate) route: &'static str,
    segments: Vec<String>,
    query: Vec<(&'static str, String)>,
}

impl ApiPath {
    pub(crate) fn new(route: &'static str, segments: &[&str]) -> Self {
        Self {
            route,
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
        }
    }

    pub(crate) fn with_query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    /// The full URL below `base` (which ends in `/`). Segments are percent-encoded, so an id can never
    /// change the route.
    pub(crate) fn url(&self, base: &Url) -> Result<Url> {
        let mut url = base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| Error::Config(format!("API URL `{base}` cannot have a path")))?;
            path.pop_if_empty();
            for segment in &self.segments {
                path.push(segment);
            }
            path.push("");
        }
        if !self.query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(self.query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }
}

/// Checks an object id passed by a caller: non-empty, no whitespace or control characters.
pub(crate) fn check_id<'a>(what: &str, id: &'a str) -> Result<&'a str> {
    if id.is_empty() {
        return Err(Error::InvalidArgument(format!("{what} is empty")));
    }
    if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::InvalidArgument(format!(
            "{what} `{}` contains whitespace",
            id.escape_debug()
        )));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_the_base_path_and_end_in_a_slash() {
        let base = Url::parse("http://127.0.0.1:9/zrh/api/2.0/").unwrap();
        let p = ApiPath::new("servers/{uuid}/action/?do=start", &["servers", "abc", "action"])
            .with_query("do", "start");
        assert_eq!(
            p.url(&base).unwrap().as_str(),
            "http://127.0.0.1:9/zrh/api/2.0/servers/abc/action/?do=start"
        );
        let list = ApiPath::new("servers/detail/", &["servers", "detail"])
            .with_query("uuid", "a,b")
            .with_query("limit", "100");
        assert_eq!(
            list.url(&base).unwrap().as_str(),
            "http://127.0.0.1:9/zrh/api/2.0/servers/detail/?uuid=a%2Cb&limit=100"
        );
    }

    #[test]
    fn ids_cannot_escape_their_segment() {
        let base = Url::parse("https://zrh.cloudsigma.com/api/2.0/").unwrap();
        let p = ApiPath::new("drives/{uuid}/", &["drives", "../servers/x?y#z"]);
        let url = p.url(&base).unwrap();
        assert_eq!(url.path(), "/api/2.0/drives/..%2Fservers%2Fx%3Fy%23z/");
        assert!(url.query().is_none());
        let ip = ApiPath::new("ips/{uuid}/", &["ips", "203.0.113.7"])
            .url(&base)
            .unwrap();
        assert_eq!(ip.path(), "/api/2.0/ips/203.0.113.7/");
    }

    #[test]
    fn ids_are_checked() {
        assert!(
            check_id("drive uuid", "")
                .unwrap_err()
                .to_string()
                .contains("drive uuid is empty")
        );
        assert!(check_id("server uuid", "a b").is_err());
        assert_eq!(check_id("server uuid", "abc").unwrap(), "abc");
        assert!(
            Method::Put.is_idempotent() && Method::Delete.is_idempotent() && !Method::Post.is_idempotent()
        );
    }
}
