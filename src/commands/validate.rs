//! `vigil validate PATH...`: load rule files with the daemon's loader, print
//! every error (`file:line:col: rule `X`: message`) of every rule and every
//! warning (a rule that can never fire, a directory without rule files,
//! ...), then a summary with the worst-case condition cost per event
//! (`--costs`: per rule); exit 0 when the rules load, 1 when they do not or
//! when no rule is loaded (unless `--allow-empty`). Paths `vigil run` would
//! refuse for their permissions (`vigil::perms`) are warnings here. Rules
//! from Falco files are listed one per line, active or inactive with the
//! reason; `--strict` makes an inactive Falco rule an error (exit 1).
//! `--format json` (documented in engine/README.md) and `--format sarif`
//! (SARIF 2.1.0, for code-scanning annotations) give the same findings to
//! scripts and CI, on stdout or in `--output FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{json, Value};
use vigil_engine::{LoadError, LoadWarning, Location, RuleSet};

use crate::commands::formats::{error_json, warning_json, write_report};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Rule files or directories (a directory loads its *.yaml in name order).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Also print each rule's worst-case cost per event: condition and
    /// exception nodes evaluated, of them Rhai leaves, expanded text bytes.
    #[arg(long)]
    pub costs: bool,
    /// Fail (exit 1) when a Falco rule is inactive (needs a syscall or a
    /// field vigil does not have).
    #[arg(long)]
    pub strict: bool,
    /// Loading no rule at all is not an error.
    #[arg(long)]
    pub allow_empty: bool,
    /// Report format: text, json (documented in engine/README.md) or sarif
    /// (SARIF 2.1.0, for code-scanning annotations).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the json or sarif report to FILE (the text report still goes
    /// to stdout and stderr).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Sarif,
}

/// Everything one validation found.
struct Findings {
    rules: Option<RuleSet>,
    errors: Vec<LoadError>,
    warnings: Vec<LoadWarning>,
    /// Inactive Falco rules (an error with `--strict`).
    inactive: usize,
}

impl Findings {
    fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Load `paths` and collect the errors and warnings: the loader's, the
/// permission check's, an empty set (unless `allow_empty`) and, with
/// `strict`, inactive Falco rules.
fn find(paths: &[PathBuf], strict: bool, allow_empty: bool) -> Findings {
    let report = RuleSet::check(paths);
    // The daemon's permission check, as warnings: `vigil run` would refuse these.
    let mut warnings: Vec<LoadWarning> = vigil::perms::check(paths, None)
        .into_iter()
        .map(|f| LoadWarning {
            loc: Location {
                file: f.path.display().to_string(),
                line: 0,
                col: 0,
            },
            item: None,
            msg: format!(
                "insecure permissions: {} (`vigil run` refuses it)",
                f.reason
            ),
        })
        .collect();
    warnings.extend(report.warnings);
    let mut out = Findings {
        rules: None,
        errors: Vec::new(),
        warnings,
        inactive: 0,
    };
    let here = |msg: String| LoadError {
        loc: Location {
            file: paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            line: 0,
            col: 0,
        },
        item: None,
        msg,
    };
    match report.result {
        Ok(rs) => {
            out.inactive = rs
                .rules()
                .filter(|r| r.falco.as_ref().is_some_and(|f| f.inactive.is_some()))
                .count();
            if rs.rules().next().is_none() && !allow_empty {
                out.errors.push(here(
                    "no rules loaded: `vigil run` would detect nothing (give rule files, or --allow-empty)"
                        .into(),
                ));
            }
            if strict && out.inactive > 0 {
                out.errors.push(here(format!(
                    "{} inactive Falco rule(s) (--strict)",
                    out.inactive
                )));
            }
            out.rules = Some(rs);
        }
        Err(errs) => out.errors = errs.0,
    }
    out
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.format != Format::Text || args.output.is_none(),
        "--output writes the json or sarif report: give --format json or --format sarif"
    );
    let f = find(&args.paths, args.strict, args.allow_empty);
    match args.format {
        Format::Text => print_text(&f, args.costs),
        other => {
            let body = if other == Format::Json {
                json_report(&f)
            } else {
                sarif_report(&f)
            };
            write_report(args.output.as_deref(), &body)?;
            if args.output.is_some() {
                print_text(&f, args.costs);
            }
        }
    }
    Ok(if f.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Loads `paths`, prints errors, warnings, per-rule costs when `costs`, each
/// Falco rule's status, and the summary; true when the rules load (and, with
/// `strict`, no Falco rule is inactive). Also used by `vigil fleet push`.
pub fn check(paths: &[PathBuf], costs: bool, strict: bool) -> bool {
    let f = find(paths, strict, false);
    print_text(&f, costs);
    f.ok()
}

/// Errors and warnings on stderr; costs, Falco statuses and the summary on
/// stdout.
fn print_text(f: &Findings, costs: bool) {
    for w in &f.warnings {
        eprintln!("{w}");
    }
    if let Some(rs) = &f.rules {
        if costs {
            println!("{:>7} {:>5} {:>8}  rule", "nodes", "rhai", "bytes");
            for (name, c) in rs.costs() {
                println!("{:>7} {:>5} {:>8}  {name}", c.nodes, c.rhai_leaves, c.bytes);
            }
        }
        print_falco_status(rs);
        println!("{}", summary(rs));
    }
    for e in &f.errors {
        eprintln!("{e}");
    }
    if f.rules.is_none() {
        eprintln!("{} error(s); rules not loaded", f.errors.len());
    }
}

/// The JSON report (`"format": "vigil-validate/1"`).
fn json_report(f: &Findings) -> String {
    let rules: Vec<Value> = f
        .rules
        .iter()
        .flat_map(|rs| rs.rules().zip(rs.costs().map(|(_, c)| c)))
        .map(|(r, c)| {
            json!({
                "name": r.name,
                "enabled": r.enabled,
                "priority": r.priority.to_string(),
                "events": r.events.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                "tags": r.tags,
                "cost": {"nodes": c.nodes, "rhai_leaves": c.rhai_leaves, "bytes": c.bytes},
                "falco": r.falco.as_ref().map(|st| json!({
                    "active": st.inactive.is_none(),
                    "inactive_reason": st.inactive,
                    "notes": st.notes,
                })),
            })
        })
        .collect();
    let v = json!({
        "format": "vigil-validate/1",
        "ok": f.ok(),
        "errors": f.errors.iter().map(error_json).collect::<Vec<_>>(),
        "warnings": f.warnings.iter().map(warning_json).collect::<Vec<_>>(),
        "summary": f.rules.as_ref().map(|rs| {
            let (rules, macros, lists, files) = rs.counts();
            json!({
                "rules": rules,
                "enabled": rs.rules().filter(|r| r.enabled).count(),
                "macros": macros,
                "lists": lists,
                "files": files,
                "hash": rs.hash(),
                "inactive_falco_rules": f.inactive,
            })
        }),
        "rules": rules,
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

/// A file path as a SARIF artifact URI: relative paths stay relative (to
/// the directory vigil ran in, the repository root in CI), absolute ones
/// become `file://` URIs; characters a URI cannot hold are percent-encoded.
fn artifact_uri(path: &str) -> String {
    let mut out = String::new();
    if path.starts_with('/') {
        out.push_str("file://");
    }
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// One SARIF result.
fn sarif_result(
    rule_id: &str,
    level: &str,
    loc: &Location,
    item: Option<&str>,
    msg: &str,
) -> Value {
    let text = match item {
        Some(i) => format!("{i}: {msg}"),
        None => msg.to_string(),
    };
    let mut physical = json!({"artifactLocation": {"uri": artifact_uri(&loc.file)}});
    if loc.line > 0 {
        physical["region"] = json!({"startLine": loc.line, "startColumn": loc.col.max(1)});
    }
    json!({
        "ruleId": rule_id,
        "level": level,
        "message": {"text": text},
        "locations": [{"physicalLocation": physical}],
    })
}

/// The SARIF 2.1.0 log: one run of the `vigil` tool, a result per error
/// (`vigil.load-error`, level error) and warning (`vigil.load-warning`,
/// level warning), each at its file, line and column.
fn sarif_report(f: &Findings) -> String {
    let results: Vec<Value> = f
        .errors
        .iter()
        .map(|e| {
            sarif_result(
                "vigil.load-error",
                "error",
                &e.loc,
                e.item.as_deref(),
                &e.msg,
            )
        })
        .chain(f.warnings.iter().map(|w| {
            sarif_result(
                "vigil.load-warning",
                "warning",
                &w.loc,
                w.item.as_deref(),
                &w.msg,
            )
        }))
        .collect();
    let v = json!({
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "vigil",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": [
                    {
                        "id": "vigil.load-error",
                        "name": "RuleLoadError",
                        "shortDescription": {"text": "A rule file does not load"},
                        "fullDescription": {"text": "An error in a rule, list or macro: the rule set is refused whole (vigil run keeps the rules in force)."},
                        "defaultConfiguration": {"level": "error"},
                    },
                    {
                        "id": "vigil.load-warning",
                        "name": "RuleLoadWarning",
                        "shortDescription": {"text": "A rule file loads with a warning"},
                        "fullDescription": {"text": "The rules load, but something is likely wrong: a rule that can never fire, a directory without rule files, an insecure permission."},
                        "defaultConfiguration": {"level": "warning"},
                    },
                ],
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

/// One line per Falco rule: `falco: NAME: active` / `... inactive: REASON`
/// (plus what vigil covers only partly). Returns the number inactive.
fn print_falco_status(rs: &RuleSet) -> usize {
    let mut inactive = 0;
    for r in rs.rules() {
        let Some(st) = &r.falco else { continue };
        let mut line = match &st.inactive {
            Some(why) => {
                inactive += 1;
                format!("falco: {}: inactive: {why}", r.name)
            }
            None if !st.enabled => format!("falco: {}: active, disabled by its file", r.name),
            None => format!("falco: {}: active", r.name),
        };
        if !st.notes.is_empty() {
            line.push_str(&format!(" (note: {})", st.notes.join("; ")));
        }
        println!("{line}");
    }
    inactive
}

/// "12 rules (11 enabled), 4 macros, 3 lists from 2 files; hash ...;
/// worst case 310 condition nodes per event (largest: 42 in `X`)"
pub fn summary(rs: &RuleSet) -> String {
    let (rules, macros, lists, files) = rs.counts();
    let enabled = rs.rules().filter(|r| r.enabled).count();
    let warn = match rs.warnings().len() {
        0 => String::new(),
        n => format!("; {n} warning(s)"),
    };
    let enabled_costs = rs
        .costs()
        .zip(rs.rules())
        .filter(|(_, info)| info.enabled)
        .map(|(c, _)| c);
    let (mut total, mut max) = (0usize, None::<(&str, usize)>);
    for (name, c) in enabled_costs {
        total = total.saturating_add(c.nodes);
        if max.is_none_or(|(_, m)| c.nodes > m) {
            max = Some((name, c.nodes));
        }
    }
    let cost = match max {
        Some((name, n)) => {
            format!("; worst case {total} condition nodes per event (largest: {n} in `{name}`)")
        }
        None => String::new(),
    };
    format!(
        "{rules} rules ({enabled} enabled), {macros} macros, {lists} lists from {files} files; hash {}{warn}{cost}",
        rs.hash()
    )
}
