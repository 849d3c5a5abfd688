//! What the renderer reads from a cluster object: name, namespace, owner email, region.

use std::fmt;

use kube::core::DynamicObject;
use serde_json::Value;

use crate::{Error, OWNER_EMAIL_ANNOTATION, RenderOptions, Result, validate};

/// Where the region came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionSource {
    /// [`RenderOptions::region`].
    Option,
    /// An annotation of the cluster object (its key).
    Annotation(String),
    /// A field of the cluster object (its dot-separated path).
    Field(String),
}

impl fmt::Display for RegionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Option => f.write_str("the region option"),
            Self::Annotation(a) => write!(f, "annotation {a}"),
            Self::Field(p) => write!(f, "field {p}"),
        }
    }
}

/// The facts about one cluster that the rendered objects depend on, all validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterFacts {
    /// `metadata.name`: a DNS-1123 label.
    pub name: String,
    /// The Deployment's namespace: the option, else the object's.
    pub namespace: String,
    /// The owner's email from [`OWNER_EMAIL_ANNOTATION`].
    pub owner_email: String,
    /// The CloudSigma location code, lower-cased.
    pub region: String,
    /// Where [`Self::region`] came from.
    pub region_from: RegionSource,
}

impl ClusterFacts {
    /// Reads and checks the facts. The lookup order of the region is: [`RenderOptions::region`], then
    /// the annotation [`RenderOptions::region_annotation`], then each of
    /// [`RenderOptions::region_fields`]; the first non-empty value is used (an invalid one is an error,
    /// not skipped).
    pub fn read(cluster: &DynamicObject, opts: &RenderOptions) -> Result<Self> {
        let name = cluster
            .metadata
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or(Error::MissingName)?;
        let object_ns = cluster.metadata.namespace.clone().filter(|n| !n.is_empty());
        let shown = match &object_ns {
            Some(ns) => format!("{ns}/{name}"),
            None => name.clone(),
        };
        validate::dns_label(&name).map_err(|reason| Error::InvalidClusterName {
            cluster: shown.clone(),
            name: name.clone(),
            reason,
        })?;
        let namespace = opts
            .namespace
            .clone()
            .or(object_ns)
            .ok_or_else(|| Error::MissingNamespace {
                cluster: shown.clone(),
            })?;
        validate::dns_label(&namespace).map_err(|reason| Error::InvalidNamespace {
            cluster: shown.clone(),
            namespace: namespace.clone(),
            reason,
        })?;

        let annotations = cluster.metadata.annotations.as_ref();
        let annotation = |key: &str| {
            annotations
                .and_then(|a| a.get(key))
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };

        let owner_email = annotation(OWNER_EMAIL_ANNOTATION).ok_or_else(|| Error::MissingOwnerEmail {
            cluster: shown.clone(),
            annotation: OWNER_EMAIL_ANNOTATION,
        })?;
        validate::email(owner_email).map_err(|reason| Error::InvalidOwnerEmail {
            cluster: shown.clone(),
            annotation: OWNER_EMAIL_ANNOTATION,
            value: owner_email.chars().take(100).collect(),
            reason,
        })?;

        let (raw, region_from) = find_region(cluster, opts, &shown, annotation)?;
        let region = raw.trim().to_ascii_lowercase();
        validate::region(&region).map_err(|reason| Error::InvalidRegion {
            cluster: shown.clone(),
            from: region_from.to_string(),
            value: raw.clone(),
            reason,
        })?;

        Ok(Self {
            name,
            namespace,
            owner_email: owner_email.to_owned(),
            region,
            region_from,
        })
    }
}

fn find_region<'a>(
    cluster: &DynamicObject,
    opts: &RenderOptions,
    shown: &str,
    annotation: impl Fn(&str) -> Option<&'a str>,
) -> Result<(String, RegionSource)> {
    if let Some(r) = opts.region.as_deref().filter(|r| !r.trim().is_empty()) {
        return Ok((r.to_owned(), RegionSource::Option));
    }
    if let Some(r) = annotation(&opts.region_annotation).filter(|r| !r.trim().is_empty()) {
        return Ok((
            r.to_owned(),
            RegionSource::Annotation(opts.region_annotation.clone()),
        ));
    }
    for path in &opts.region_fields {
        let found = path.split('.').try_fold(&cluster.data, |v, key| v.get(key));
        match found {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) if s.trim().is_empty() => continue,
            Some(Value::String(s)) => return Ok((s.clone(), RegionSource::Field(path.clone()))),
            Some(other) => {
                return Err(Error::InvalidRegion {
                    cluster: shown.to_owned(),
                    from: RegionSource::Field(path.clone()).to_string(),
                    value: other.to_string(),
                    reason: "is not a string".into(),
                });
            }
        }
    }
    let mut looked_at = vec![format!("annotation {}", opts.region_annotation)];
    looked_at.extend(opts.region_fields.iter().map(|p| format!("field {p}")));
    Err(Error::MissingRegion {
        cluster: shown.to_owned(),
        looked_at: looked_at.join(", "),
    })
}
