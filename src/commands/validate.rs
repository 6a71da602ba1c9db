//! `vigil validate PATH...`: load rule files with the daemon's loader, print
//! every error (`file:line:col: rule `X`: message`) and warning, then a
//! summary; exit 0 when the rules load, 1 when they do not.

use std::path::PathBuf;
use std::process::ExitCode;

use vigil_engine::RuleSet;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Rule files or directories (a directory loads its *.yaml in name order).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    Ok(if check(&args.paths) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Loads `paths`, prints errors, warnings and the summary; true when the
/// rules load (also used by `vigil fleet push`).
pub fn check(paths: &[PathBuf]) -> bool {
    match RuleSet::load(paths) {
        Ok(rs) => {
            for w in rs.warnings() {
                eprintln!("{w}");
            }
            println!("{}", summary(&rs));
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

/// "12 rules (11 enabled), 4 macros, 3 lists from 2 files; hash ..."
pub fn summary(rs: &RuleSet) -> String {
    let (rules, macros, lists, files) = rs.counts();
    let enabled = rs.rules().filter(|r| r.enabled).count();
    let warn = match rs.warnings().len() {
        0 => String::new(),
        n => format!("; {n} warning(s)"),
    };
    format!(
        "{rules} rules ({enabled} enabled), {macros} macros, {lists} lists from {files} files; hash {}{warn}",
        rs.hash()
    )
}
