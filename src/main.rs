//! The `vigil` command line: argument parsing and dispatch to one module per
//! subcommand (`commands::*`), each calling the `vigil` library (`src/lib.rs`).
//! Logging goes to stderr through `tracing`.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// vigil: policy-driven Linux runtime detection (eBPF sensors, Rhai rules, alert sinks).
#[derive(Parser, Debug)]
#[command(name = "vigil", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the detector: load rules, attach the eBPF sensors, raise alerts.
    Run(commands::run::Args),
    /// Load rule files and report every error; exit non-zero if any.
    Validate(commands::validate::Args),
    /// Run rule test cases: events in, expected rule hits out.
    Test(commands::test::Args),
    /// Evaluate recorded JSONL events against rules, alerts out.
    Replay(commands::replay::Args),
    /// Per-rule evaluation cost on recorded events, slowest first.
    Profile(commands::profile::Args),
    /// Capture live events to JSONL (the format `replay` reads).
    Record(commands::record::Args),
    /// Live table of one event type, like the BCC tools.
    Snoop(commands::snoop::Args),
    /// Print the kernel first-stage filter derived from rules.
    Explain(commands::explain::Args),
    /// List the fields rules can read.
    Fields(commands::fields::Args),
    /// A fleet over NATS: push rule sets to a KV bucket, show hosts' status.
    Fleet(commands::fleet::Args),
    /// Print a shell completion script (e.g. `vigil completions bash > /etc/bash_completion.d/vigil`).
    Completions(commands::docs::CompletionsArgs),
    /// Write the man pages (vigil.1, vigil-run.1, ...) into DIR.
    #[command(hide = true)]
    Man(commands::docs::ManArgs),
}

/// Rule paths given with `--rules`; shared by several subcommands.
#[derive(clap::Args, Debug, Clone)]
pub struct RulesArg {
    /// Rule file or directory (its *.yaml in name order); repeatable.
    #[arg(long = "rules", short = 'r', value_name = "PATH")]
    pub rules: Vec<PathBuf>,
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run(_)) {
        restore_sigpipe();
    }
    let result = match cli.command {
        Command::Run(a) => commands::run::run(a),
        Command::Validate(a) => commands::validate::run(a),
        Command::Test(a) => commands::test::run(a),
        Command::Replay(a) => commands::replay::run(a),
        Command::Profile(a) => commands::profile::run(a),
        Command::Record(a) => commands::record::run(a),
        Command::Snoop(a) => commands::snoop::run(a),
        Command::Explain(a) => commands::explain::run(a),
        Command::Fields(a) => commands::fields::run(a),
        Command::Fleet(a) => commands::fleet::run(a),
        Command::Completions(a) => commands::docs::completions(a),
        Command::Man(a) => commands::docs::man(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vigil: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Rust ignores SIGPIPE, so `vigil explain | head` would panic on the closed
/// pipe. The one-shot commands take the default action (exit quietly) like
/// other command-line tools; the daemon keeps ignoring it (its sinks count
/// write errors instead of dying).
fn restore_sigpipe() {
    // SAFETY: setting a signal disposition to SIG_DFL before any threads start.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Logs to stderr; `VIGIL_LOG` (or `RUST_LOG`) sets the filter, default `info`.
/// The file-watcher crate's own per-event trace lines stay off unless the filter
/// names `notify`: with stderr in a watched directory each would be an event.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let mut filter = std::env::var("VIGIL_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
    if !filter.contains("notify") {
        filter.push_str(",notify=warn");
    }
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        // Plain text when stderr is not a terminal (journald, CI logs).
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
