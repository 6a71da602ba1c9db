//! `vigil explain --rules PATH... [--json]`: the kernel first-stage filter
//! derived from the rules, per event type, and what each rule contributed
//! (or why it forces pass-all). For open events that includes the path
//! prefixes and suffixes (any open / writes only), "every write" and whether
//! unnormalised raw paths pass. Text lines wrap at 100 columns;
//! `--format json` (or `--json`) gives the whole structure.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::{json, Value};
use vigil_engine::{EventType, FilterSets, RuleSet, TypeFilter};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub rules: crate::RulesArg,
    /// The rule selection `vigil run` would apply (a disabled rule contributes nothing).
    #[command(flatten)]
    pub select: vigil::config::SelectArgs,
    /// JSON output (same as `--format json`).
    #[arg(long)]
    pub json: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutFormat {
    Text,
    Json,
}

/// Text lines longer than this are wrapped (continuations indented).
const WIDTH: usize = 100;

/// Greedy word wrap of `text` to [`WIDTH`]: the first line starts after
/// `first` columns already used, continuation lines are indented by `indent`.
fn wrap(text: &str, first: usize, indent: usize) -> String {
    let mut out = String::new();
    let mut col = first;
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            if col + 1 + word.len() > WIDTH && col > indent {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                col = indent;
            } else {
                out.push(' ');
                col += 1;
            }
        }
        out.push_str(word);
        col += word.len();
    }
    out
}

fn sets_json(s: &FilterSets) -> Value {
    json!({
        "comms": s.comms, "pcomms": s.pcomms, "pids": s.pids, "cgroups": s.cgroups,
        "path_prefixes": s.path_prefixes, "write_prefixes": s.write_prefixes,
        "path_suffixes": s.path_suffixes, "write_suffixes": s.write_suffixes,
        "unclean_paths": s.unclean_paths, "writes": s.writes,
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !args.rules.rules.is_empty(),
        "give at least one --rules PATH"
    );
    let mut rs = RuleSet::load(&args.rules.rules)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("rules failed to load")?;
    let select = vigil::config::Selection {
        config: Default::default(),
        flags: args.select.to_select(),
    };
    select.apply(&mut rs).map_err(|e| anyhow::anyhow!("{e}"))?;
    let f = rs.kernel_filter();
    let contribs = rs.filter_contributions();
    if args.json || args.format == OutFormat::Json {
        let mut types = serde_json::Map::new();
        for t in EventType::ALL {
            let v = match f.for_type(t) {
                TypeFilter::Drop => json!({"mode": "drop"}),
                TypeFilter::PassAll => json!({"mode": "pass_all"}),
                TypeFilter::Match(s) => json!({"mode": "match", "sets": sets_json(s)}),
            };
            types.insert(t.as_str().to_string(), v);
        }
        let rules: Vec<Value> = contribs
            .iter()
            .map(|c| {
                let mut o = json!({
                    "rule": c.rule, "enabled": c.enabled,
                    "events": c.events.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                });
                match &c.term {
                    Ok(s) => o["term"] = sets_json(s),
                    Err(r) => o["pass_all_reason"] = json!(r),
                }
                if let Some(cl) = &c.clause {
                    o["clause"] = json!(cl);
                }
                o
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"hash": rs.hash(), "types": types, "rules": rules})
            )?
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("kernel filter (rule set {}):", rs.hash());
    for t in EventType::ALL {
        let d = match f.for_type(t) {
            TypeFilter::Drop => "drop (no enabled rule takes this event type)".to_string(),
            TypeFilter::PassAll => "pass all".to_string(),
            TypeFilter::Match(s) if s.is_empty() => "match nothing (no rule can match)".to_string(),
            TypeFilter::Match(s) => format!("match: {}", s.describe()),
        };
        println!("  {:<11} {}", t.as_str(), wrap(&d, 14, 16));
    }
    println!("rules:");
    for c in &contribs {
        let ev: Vec<&str> = c.events.iter().map(|t| t.as_str()).collect();
        let what = match &c.term {
            Ok(s) if s.is_empty() => "contributes nothing (condition can never match)".to_string(),
            Ok(s) => match &c.clause {
                Some(cl) => format!("{} (from `{cl}`)", s.describe()),
                None => s.describe(),
            },
            Err(r) => r.clone(),
        };
        let head = format!("  {} [{}]:", c.rule, ev.join(","));
        println!("{head} {}", wrap(&what, head.len() + 1, 6));
    }
    // Falco rules vigil cannot run take no part in the filter; say why.
    for r in rs.rules() {
        if let Some(why) = r.falco.as_ref().and_then(|f| f.inactive.as_deref()) {
            println!("  {} [inactive]: {why}", r.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_wrap_under_the_width() {
        let items: Vec<String> = (0..200).map(|i| format!("\"/etc/item{i}\",")).collect();
        let text = format!("path prefix in {{{}}}", items.join(" "));
        let w = wrap(&text, 14, 16);
        assert!(w.lines().count() > 10);
        for (i, l) in w.lines().enumerate() {
            let len = l.len() + if i == 0 { 14 } else { 0 };
            assert!(len <= WIDTH, "{l}");
            if i > 0 {
                assert!(l.starts_with(&" ".repeat(16)));
            }
        }
        assert_eq!(
            w.split_whitespace().collect::<Vec<_>>(),
            text.split(' ').collect::<Vec<_>>()
        );
        assert_eq!(wrap("short", 14, 16), "short");
    }
}
