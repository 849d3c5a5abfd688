//! Multi-document YAML output.

use serde::Serialize;

use crate::{Error, Result};

/// One object as a YAML document (no leading `---`).
pub(crate) fn document<T: Serialize>(object: &T) -> Result<String> {
    serde_yaml::to_string(object).map_err(Error::Serialize)
}

/// Documents joined into one stream, each introduced by `---`.
pub(crate) fn stream(documents: &[String]) -> String {
    let mut out = String::new();
    for doc in documents {
        out.push_str("---\n");
        out.push_str(doc);
        if !doc.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}
