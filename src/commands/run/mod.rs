//! `vigil run`: the daemon's flags, handed to [`vigil::daemon::run`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub rules: crate::RulesArg,
    /// Configuration file (rules, outputs, limits; see sinks/CONFIG.md).
    /// Default: /etc/vigil/vigil.yaml when it exists. Flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print alerts on stdout as JSON lines (Falco's keys) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9376).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Userspace event queue capacity (records) [config: event_queue; default 65536].
    #[arg(long)]
    pub queue: Option<usize>,
    /// Maximum processes tracked [config: max_procs; default 65536].
    #[arg(long)]
    pub max_procs: Option<usize>,
    /// Load rule files, rule directories and a config that users other than
    /// root can change, with a warning, instead of refusing them.
    #[arg(long)]
    pub insecure_permissions: bool,
    /// Override a config key, e.g. `-o outputs.webhook.url=https://h/x` or
    /// `-o select.min_priority=warning`; the value is YAML; repeatable.
    #[arg(short = 'o', long = "option", value_name = "KEY.PATH=VALUE")]
    pub overrides: Vec<vigil::config::Override>,
    #[command(flatten)]
    pub select: vigil::config::SelectArgs,
    /// List the loaded rules (name, priority, tags, events, enabled in the
    /// file, active after the selection) and exit.
    #[arg(short = 'L', long)]
    pub list_rules: bool,
    /// Load the config and rules, start (and stop) the outputs, derive the
    /// kernel filter, attach nothing; exit 0 when all of it worked.
    #[arg(long)]
    pub dry_run: bool,
    /// Stop after this long (`30s`, `5m`, or seconds), as on SIGTERM.
    #[arg(long, value_name = "DURATION", value_parser = vigil_sinks::config::parse_duration)]
    pub duration: Option<Duration>,
    /// Start even when no rule is enabled (e.g. all disabled by the selection).
    #[arg(long)]
    pub allow_empty: bool,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let code = vigil::daemon::run(vigil::daemon::Options {
        rules: a.rules.rules,
        config: a.config,
        json: a.json,
        metrics: a.metrics,
        queue: a.queue,
        max_procs: a.max_procs,
        insecure_permissions: a.insecure_permissions,
        overrides: a.overrides,
        select: a.select.to_select(),
        list_rules: a.list_rules,
        dry_run: a.dry_run,
        duration: a.duration,
        allow_empty: a.allow_empty,
    })?;
    Ok(code)
}
