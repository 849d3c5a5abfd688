//! docs/configuration.md names every flag and environment variable of both binaries, and no flag
//! that no longer exists (read from the clap definitions in the sources).
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

/// `(flag, env)` of every `#[arg(long ...)]` field of a clap derive source.
fn clap_args(source: &str) -> Vec<(String, Option<String>)> {
    let lines: Vec<&str> = source.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if !line.starts_with("#[arg(") {
            i += 1;
            continue;
        }
        // The attribute may span lines: collect until the field declaration.
        let mut attr = String::new();
        while i < lines.len() && !is_field(lines[i]) {
            attr.push_str(lines[i].trim());
            attr.push(' ');
            i += 1;
        }
        let field = lines[i].trim().trim_start_matches("pub ");
        let name = field.split(':').next().unwrap().trim();
        if attr.contains("long") {
            let flag = match attr.split("long = \"").nth(1) {
                Some(rest) => format!("--{}", rest.split('"').next().unwrap()),
                None => format!("--{}", name.replace('_', "-")),
            };
            let env = attr
                .split("env = \"")
                .nth(1)
                .map(|rest| rest.split('"').next().unwrap().to_owned());
            out.push((flag, env));
        }
        i += 1;
    }
    out
}

fn is_field(line: &str) -> bool {
    let t = line.trim().trim_start_matches("pub ");
    !t.starts_with("#[")
        && !t.starts_with("//")
        && t.split(':').next().is_some_and(|n| {
            !n.is_empty() && n.chars().all(|c| c.is_ascii_lowercase() || c == '_') && t.contains(':')
        })
}

/// The flags named in the first column of the tables of a markdown section.
fn documented_flags(section: &str) -> BTreeSet<String> {
    section
        .lines()
        .filter(|l| l.starts_with("| `--"))
        .map(|l| l.trim_start_matches("| `").split('`').next().unwrap().to_owned())
        .collect()
}

fn section<'a>(doc: &'a str, start: &str, end: &str) -> &'a str {
    let from = doc.find(start).unwrap_or_else(|| panic!("no section {start}"));
    let to = doc[from..].find(end).map_or(doc.len(), |e| from + e);
    &doc[from..to]
}

#[test]
fn configuration_reference_lists_every_flag_and_env_of_both_binaries() {
    let doc = common::read("docs/configuration.md");
    let ccm_src = common::read("bins/ccm/src/args.rs");
    let csi_src = common::read("bins/csi-controller/src/main.rs");
    for (binary, src, section) in [
        ("ccm", ccm_src, section(&doc, "\n## ccm", "\n## csi-controller")),
        (
            "csi-controller",
            csi_src,
            section(&doc, "\n## csi-controller", "\n## Rendering options"),
        ),
    ] {
        let args = clap_args(&src);
        assert!(
            args.len() >= 10,
            "{binary}: only {} flags parsed from the source",
            args.len()
        );
        let documented = documented_flags(section);
        for (flag, env) in &args {
            let row = section
                .lines()
                .find(|l| l.starts_with(&format!("| `{flag}`")))
                .unwrap_or_else(|| panic!("docs/configuration.md, {binary}: no row for {flag}"));
            if let Some(env) = env {
                assert!(
                    row.contains(&format!("`{env}`")),
                    "{binary} {flag}: the row lacks `{env}`: {row}"
                );
            }
        }
        let in_source: BTreeSet<String> = args.into_iter().map(|(f, _)| f).collect();
        let stale: Vec<_> = documented.difference(&in_source).collect();
        assert!(
            stale.is_empty(),
            "{binary}: documented flags that do not exist: {stale:?}"
        );
    }
}

#[test]
fn clap_parser_of_this_test_reads_multi_line_attributes() {
    let src = r#"
    /// Doc.
    #[arg(long, env = "A_B", default_value = "x",
          num_args = 0..=1)]
    pub a_b: bool,
    #[arg(long = "other-name")]
    c: Option<String>,
    #[command(flatten)]
    pub nested: Nested,
    #[arg(value_enum)]
    positional: Mode,
"#;
    assert_eq!(
        clap_args(src),
        vec![
            ("--a-b".to_owned(), Some("A_B".to_owned())),
            ("--other-name".to_owned(), None)
        ]
    );
}
