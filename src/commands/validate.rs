//! `vigil validate PATH...`: load rule files with the daemon's loader, print
//! every error (`file:line:col: rule `X`: message`) and warning, then a
//! summary with the worst-case condition cost per event (`--costs`: per
//! rule); exit 0 when the rules load, 1 when they do not. Paths `vigil run`
//! would refuse for their permissions (`vigil::perms`) are warnings here.
//! Rules from Falco files are listed one per line, active or inactive with
//! the reason; `--strict` makes an inactive Falco rule an error (exit 1).

use std::path::PathBuf;
use std::process::ExitCode;

use vigil_engine::RuleSet;

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
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // The daemon's permission check, as warnings: `vigil run` would refuse these.
    for f in vigil::perms::check(&args.paths, None) {
        eprintln!(
            "{}: warning: insecure permissions: {} (`vigil run` refuses it)",
            f.path.display(),
            f.reason
        );
    }
    Ok(if check(&args.paths, args.costs, args.strict) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Loads `paths`, prints errors, warnings, per-rule costs when `costs`, each
/// Falco rule's status, and the summary; true when the rules load (and, with
/// `strict`, no Falco rule is inactive). Also used by `vigil fleet push`.
pub fn check(paths: &[PathBuf], costs: bool, strict: bool) -> bool {
    match RuleSet::load(paths) {
        Ok(rs) => {
            for w in rs.warnings() {
                eprintln!("{w}");
            }
            if costs {
                println!("{:>7} {:>5} {:>8}  rule", "nodes", "rhai", "bytes");
                for (name, c) in rs.costs() {
                    println!("{:>7} {:>5} {:>8}  {name}", c.nodes, c.rhai_leaves, c.bytes);
                }
            }
            let inactive = print_falco_status(&rs);
            println!("{}", summary(&rs));
            if strict && inactive > 0 {
                eprintln!("{inactive} inactive Falco rule(s) (--strict)");
                return false;
            }
            true
        }
        Err(errs) => {
            for e in errs.iter() {
                eprintln!("{e}");
            }
            eprintln!("{} error(s); rules not loaded", errs.len());
            false
        }
    }
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
