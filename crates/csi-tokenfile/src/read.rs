//! Reading the token and its neighbour files as one consistent generation.
//!
//! The kubelet projects a Secret as `<dir>/<key> -> ..data/<key>` symlinks, with `..data` itself a
//! symlink to a timestamped directory `..YYYY_MM_DD_HH_MM_SS.<random>`. An update writes a new directory,
//! points `..data_tmp` at it, renames `..data_tmp` over `..data` (atomic) and removes the old directory.
//! When `<dir>/..data` exists, this module resolves it once and reads every file from that one
//! directory, so the token, region and user email always come from the same Secret version. If the
//! directory disappears under the reader (it was replaced and removed), the read starts again.

use std::{
    fs::File,
    io::Read,
    path::{Path, PathBuf},
};

use jiff::Timestamp;
use secrecy::SecretString;
use zeroize::Zeroize;

use crate::{Error, Result, token::parse_token};

/// Name of the kubelet's symlink to the current Secret version.
const DATA_LINK: &str = "..data";
/// Name of the region file next to the token.
pub(crate) const REGION_FILE: &str = "region";
/// Name of the user email file next to the token.
pub(crate) const USER_EMAIL_FILE: &str = "user_email";
/// Largest token file accepted.
pub(crate) const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// Largest region or email file accepted.
const MAX_SMALL_FILE_BYTES: usize = 1024;
/// How often a read restarts because the Secret version changed under it.
const MAX_ATTEMPTS: usize = 5;

/// One reading of the mounted Secret.
pub(crate) struct Snapshot {
    /// The token, or why it is unusable.
    pub(crate) token: Result<SecretString>,
    /// The region file's value (`None` when the file is absent or empty), or why it is invalid.
    pub(crate) region: Result<Option<String>>,
    /// The user email file's value, when present and readable.
    pub(crate) user_email: Option<String>,
}

/// Where the files of one reading live.
struct Generation {
    /// The directory the files are read from (the resolved Secret version, or the plain directory).
    dir: PathBuf,
    /// The `..data` target this reading started from, when the directory is a kubelet projection.
    data_target: Option<PathBuf>,
}

/// The configured directory and file name of the token.
pub(crate) fn split_token_path(token_file: &Path) -> Result<(PathBuf, String)> {
    let name = token_file
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .ok_or_else(|| {
            Error::Config(format!(
                "token file path {} does not name a file",
                token_file.display()
            ))
        })?;
    let dir = match token_file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name.to_owned()))
}

/// Reads the token, region and user email of one Secret version. `token_file` is the configured path
/// (reported in errors); `dir` and `name` come from [`split_token_path`].
pub(crate) fn read_snapshot(token_file: &Path, dir: &Path, name: &str, now: Timestamp) -> Snapshot {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let generation = resolve(dir);
        let token = read_file(&generation.dir.join(name), token_file, MAX_TOKEN_BYTES);
        // A file that vanished while `..data` moved on belongs to a removed version: read again.
        let vanished = matches!(token, Err(Error::Missing { .. }));
        if vanished && attempt < MAX_ATTEMPTS && generation.changed(dir) {
            continue;
        }
        let region_path = dir.join(REGION_FILE);
        let region = read_small(&generation.dir.join(REGION_FILE), &region_path)
            .and_then(|value| value.map(|v| normalise_region(&region_path, &v)).transpose());
        let user_email = read_small(&generation.dir.join(USER_EMAIL_FILE), &dir.join(USER_EMAIL_FILE))
            .ok()
            .flatten();
        if attempt < MAX_ATTEMPTS && generation.changed(dir) {
            // The version changed while reading; the files may have come from a removed directory.
            continue;
        }
        let token = token.and_then(|raw| parse_token(token_file, raw, now));
        return Snapshot {
            token,
            region,
            user_email,
        };
    }
}

/// Reads only the region file (used once at start-up).
pub(crate) fn read_region(dir: &Path) -> Result<Option<String>> {
    let region_path = dir.join(REGION_FILE);
    for _ in 0..MAX_ATTEMPTS {
        let generation = resolve(dir);
        let value = read_small(&generation.dir.join(REGION_FILE), &region_path);
        if !generation.changed(dir) {
            return value.and_then(|v| v.map(|v| normalise_region(&region_path, &v)).transpose());
        }
    }
    Err(Error::Unreadable {
        path: region_path,
        reason: "the Secret kept changing while it was read".into(),
    })
}

fn resolve(dir: &Path) -> Generation {
    match std::fs::read_link(dir.join(DATA_LINK)) {
        Ok(target) => Generation {
            dir: dir.join(&target),
            data_target: Some(target),
        },
        Err(_) => Generation {
            dir: dir.to_owned(),
            data_target: None,
        },
    }
}

impl Generation {
    /// Whether `..data` now points somewhere else than when this reading started.
    fn changed(&self, dir: &Path) -> bool {
        match &self.data_target {
            Some(target) => std::fs::read_link(dir.join(DATA_LINK)).ok().as_ref() != Some(target),
            None => false,
        }
    }
}

/// Reads at most `limit` bytes of `path`; errors are reported against `shown` (the configured path).
fn read_file(path: &Path, shown: &Path, limit: usize) -> Result<Vec<u8>> {
    // Only regular files: opening a FIFO for reading would block until a writer appears (forever), and
    // a device is no Secret file.
    let meta = std::fs::metadata(path).map_err(|e| Error::from_io(shown.to_owned(), &e))?;
    not_a_file(&meta).map_or(Ok(()), |reason| {
        Err(Error::Unreadable {
            path: shown.to_owned(),
            reason: reason.into(),
        })
    })?;
    let file = File::open(path).map_err(|e| Error::from_io(shown.to_owned(), &e))?;
    let mut buffer = Vec::with_capacity(256);
    // `take(limit + 1)` tells "exactly at the limit" from "over it" without reading a huge file.
    let read = file.take(limit as u64 + 1).read_to_end(&mut buffer);
    if let Err(e) = read {
        buffer.zeroize();
        return Err(Error::from_io(shown.to_owned(), &e));
    }
    if buffer.len() > limit {
        buffer.zeroize();
        return Err(Error::TooLarge {
            path: shown.to_owned(),
            limit,
        });
    }
    Ok(buffer)
}

/// Why `meta` does not describe a regular file, if it does not.
fn not_a_file(meta: &std::fs::Metadata) -> Option<&'static str> {
    let kind = meta.file_type();
    if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("it is a directory, not a regular file")
    } else {
        Some("it is not a regular file (a FIFO, socket or device)")
    }
}

/// A small text file's trimmed content; `None` when it is absent or empty.
fn read_small(path: &Path, shown: &Path) -> Result<Option<String>> {
    let bytes = match read_file(path, shown, MAX_SMALL_FILE_BYTES) {
        Ok(bytes) => bytes,
        Err(Error::Missing { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let text = String::from_utf8(bytes).map_err(|_| Error::NotUtf8 {
        path: shown.to_owned(),
    })?;
    let trimmed = text.trim().trim_start_matches('\u{feff}').trim();
    Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
}

/// Lower-cases and checks a region code read from `path`.
pub(crate) fn normalise_region(path: &Path, value: &str) -> Result<String> {
    let region = value.trim().to_ascii_lowercase();
    cs_auth::validate_region(&region).map_err(|e| Error::InvalidNeighbour {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(region)
}
