//! `vigil completions SHELL` and the hidden `vigil man DIR`: shell completion
//! scripts (clap_complete) and man pages (clap_mangen) generated from the
//! command definitions themselves, so they never drift from `--help`.
//! scripts/build-deb.sh installs both.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}

#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Directory the pages are written to (vigil.1, vigil-run.1, ...).
    pub dir: PathBuf,
}

/// Prints the completion script for `shell` on stdout.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = crate::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "vigil", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// Writes `vigil.1` and one `vigil-SUB.1` a subcommand (hidden ones skipped).
pub fn man(args: ManArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let cmd = crate::Cli::command();
    let version = cmd.get_version().unwrap_or_default().to_string();
    write_page(&args.dir, "vigil", cmd.clone())?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("vigil-{}", sub.get_name());
        let page = sub.clone().name(name.clone()).version(version.clone());
        write_page(&args.dir, &name, page)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_page(dir: &Path, name: &str, cmd: clap::Command) -> anyhow::Result<()> {
    let path = dir.join(format!("{name}.1"));
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .with_context(|| format!("rendering {name}.1"))?;
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_for_vigil_and_each_subcommand() {
        let d = tempfile::tempdir().unwrap();
        man(ManArgs {
            dir: d.path().to_path_buf(),
        })
        .unwrap();
        for n in [
            "vigil",
            "vigil-run",
            "vigil-snoop",
            "vigil-explain",
            "vigil-completions",
        ] {
            let t = std::fs::read_to_string(d.path().join(format!("{n}.1"))).unwrap();
            assert!(t.starts_with(".ie") || t.contains(".TH"), "{n}: {t}");
            assert!(t.contains(&format!(".TH {n} 1")), "{n}");
        }
        let run = std::fs::read_to_string(d.path().join("vigil-run.1")).unwrap();
        assert!(
            run.contains("dry\\-run") && run.contains("min\\-priority"),
            "{run}"
        );
        assert!(!d.path().join("vigil-man.1").exists(), "hidden");
    }
}
