//! A small reader of the Prometheus text format (and OpenMetrics): enough for the ccm's `/metrics` and
//! the kube-apiserver's `apiserver_request_total`.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// One sample: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name, e.g. `cloudsigma_ccm_node_writes_total`.
    pub name: String,
    /// Label names and values (unescaped).
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, or `""` when absent.
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }

    fn matches(&self, matchers: &[(&str, &str)]) -> bool {
        matchers.iter().all(|(k, v)| self.label(k) == *v)
    }
}

/// Every sample of one scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples(Vec<Sample>);

impl Samples {
    /// Parses a scrape; `what` names the source in errors. Comment lines and `# EOF` are skipped.
    pub fn parse(what: &str, text: &str) -> Result<Self> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let sample = parse_line(line).map_err(|m| Error::parse(format!("{what} line {}", i + 1), m))?;
            out.push(sample);
        }
        Ok(Self(out))
    }

    /// Every sample.
    pub fn all(&self) -> &[Sample] {
        &self.0
    }

    /// The samples named `name` whose labels match all `matchers`.
    pub fn select<'a>(
        &'a self,
        name: &'a str,
        matchers: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.0
            .iter()
            .filter(move |s| s.name == name && s.matches(matchers))
    }

    /// The sum of the matching samples (0 when none match).
    pub fn sum(&self, name: &str, matchers: &[(&str, &str)]) -> f64 {
        self.select(name, matchers).map(|s| s.value).sum()
    }

    /// Cumulative histogram buckets `(le, count)` of `name` (without `_bucket`), sorted by `le`.
    pub fn buckets(&self, name: &str) -> Vec<(f64, f64)> {
        let bucket = format!("{name}_bucket");
        let mut out: Vec<(f64, f64)> = self
            .select(&bucket, &[])
            .filter_map(|s| {
                let le = match s.label("le") {
                    "+Inf" | "Inf" => f64::INFINITY,
                    v => v.parse().ok()?,
                };
                Some((le, s.value))
            })
            .collect();
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        out
    }
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let (name, labels, rest) = match line.find(['{', ' ']) {
        Some(i) if line.as_bytes()[i] == b'{' => {
            let (labels, after) = parse_labels(&line[i + 1..])?;
            (&line[..i], labels, after)
        }
        Some(i) => (&line[..i], BTreeMap::new(), &line[i..]),
        None => return Err(format!("no value in {line:?}")),
    };
    if name.is_empty() {
        return Err(format!("no metric name in {line:?}"));
    }
    let value_text = rest
        .split_whitespace()
        .next()
        .ok_or_else(|| format!("no value in {line:?}"))?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().map_err(|_| format!("bad value {v:?} in {line:?}"))?,
    };
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parses `a="x",b="y"}` and returns the labels and the text after `}`.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("label without '='")?;
        let key = rest[..eq].trim().to_owned();
        let body = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or_else(|| format!("label {key} value is not quoted"))?;
        let mut value = String::new();
        let mut chars = body.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("label {key}: unterminated escape")),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err(format!("label {key}: unterminated value")),
            }
        };
        labels.insert(key, value);
        rest = &body[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CCM: &str = r#"# HELP cloudsigma_ccm_node_writes Writes to Node objects by kind (status, update, delete).
# TYPE cloudsigma_ccm_node_writes counter
cloudsigma_ccm_node_writes_total{kind="status"} 1000
cloudsigma_ccm_node_writes_total{kind="update"} 999
# TYPE cloudsigma_ccm_node_initialization_seconds histogram
cloudsigma_ccm_node_initialization_seconds_sum 12.5
cloudsigma_ccm_node_initialization_seconds_count 4
cloudsigma_ccm_node_initialization_seconds_bucket{le="0.1"} 1
cloudsigma_ccm_node_initialization_seconds_bucket{le="+Inf"} 4
cloudsigma_ccm_node_initialization_seconds_bucket{le="0.05"} 0
cloudsigma_api_requests_total{method="GET",route="servers/detail/",outcome="ok"} 10
# EOF
"#;

    #[test]
    fn reads_counters_histograms_and_labels_of_the_ccm() {
        let s = Samples::parse("ccm", CCM).unwrap();
        assert_eq!(
            s.sum("cloudsigma_ccm_node_writes_total", &[("kind", "status")]),
            1000.0
        );
        assert_eq!(s.sum("cloudsigma_ccm_node_writes_total", &[]), 1999.0);
        assert_eq!(
            s.sum("cloudsigma_ccm_node_initialization_seconds_count", &[]),
            4.0
        );
        assert_eq!(
            s.buckets("cloudsigma_ccm_node_initialization_seconds"),
            vec![(0.05, 0.0), (0.1, 1.0), (f64::INFINITY, 4.0)]
        );
        assert_eq!(s.sum("absent_total", &[]), 0.0);
    }

    #[test]
    fn reads_apiserver_lines_with_empty_and_escaped_labels() {
        let text = concat!(
            r#"apiserver_request_total{code="200",component="apiserver",contentType="application/json",dry_run="",group="",resource="nodes",scope="resource",subresource="status",verb="PATCH",version="v1"} 7"#,
            "\n",
            r#"odd{a="x\"y\\z",b="1,2"} 3 1700000000"#,
            "\n",
            "plain_gauge 2.5e3\n",
        );
        let s = Samples::parse("apiserver", text).unwrap();
        let patch: Vec<_> = s
            .select(
                "apiserver_request_total",
                &[("verb", "PATCH"), ("subresource", "status")],
            )
            .collect();
        assert_eq!(patch.len(), 1);
        assert_eq!(patch[0].label("resource"), "nodes");
        assert_eq!(patch[0].label("dry_run"), "");
        assert_eq!(patch[0].value, 7.0);
        let odd = s.select("odd", &[]).next().unwrap();
        assert_eq!(odd.label("a"), "x\"y\\z");
        assert_eq!(odd.label("b"), "1,2");
        assert_eq!(odd.value, 3.0);
        assert_eq!(s.sum("plain_gauge", &[]), 2500.0);
    }

    #[test]
    fn a_broken_line_is_an_error_naming_the_line() {
        let err = Samples::parse("ccm /metrics", "ok 1\nbroken{a=\"x\" \n").unwrap_err();
        assert!(err.to_string().contains("ccm /metrics line 2"), "{err}");
        let err = Samples::parse("x", "name notanumber\n").unwrap_err();
        assert!(err.to_string().contains("notanumber"), "{err}");
    }
}
