//! [`run`]: the daemon (`vigil run`). Reads the config file (`--config`, default
//! `/etc/vigil/vigil.yaml` when present), loads rules, attaches the sensors,
//! writes the kernel filter, evaluates rules on live events and hands alerts
//! to the sinks router (`vigil_sinks::Router`: stdout, file, syslog, webhook,
//! email). Rule files hot-reload through [`crate::reload`] (and on SIGHUP, which
//! also reopens output files); so do the config file's `outputs` (a new router
//! is started, swapped in, and the old one drains in the background) and its
//! `select:` (the rules are loaded again with the new selection); other
//! changed keys are logged as needing a restart. `--metrics` serves
//! Prometheus text. `READY=1` goes to `$NOTIFY_SOCKET` once every sensor is
//! attached; SIGTERM/SIGINT flush the queued alerts and exit 0; a second one
//! exits at once (128 + its number). Rule files, rule directories, the config and the
//! directories above them must not be writable by users other than root (or
//! the user vigil runs as): [`crate::perms`] checks them at start and on every
//! reload, and `--insecure-permissions` turns a refusal into a warning.
//!
//! Why one file past ~800 lines (about 760 of code, the rest unit tests):
//! the daemon's main loop and the handler of its events (alerts, rule and
//! config reloads, signals) share one state; the pipeline, reload watcher,
//! health and metrics are modules beside.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use vigil_bpf::RawKind;
use vigil_engine::ruleset::{hostname, Evaluator, RuleSet};
use vigil_engine::{Alert, Priority};
use vigil_sinks::config::Format;
use vigil_sinks::Router;

use super::health::{metrics_exposure_warning, shutdown_summary, EventLoss, OutputHealth};
use crate::config::{Config, ConfigError, Override, Select, Selection};
use crate::daemon::{notify, DaemonSignal, NotifyState, Signals};
use crate::metrics::Metrics;
use crate::pipeline::{Live, LiveOptions};

/// What `vigil run` was asked to do (its command-line flags; see
/// `vigil run --help` for each).
#[derive(Debug, Default)]
pub struct Options {
    /// `--rules`: rule files or directories, instead of the config's `rules:`.
    pub rules: Vec<PathBuf>,
    /// `--config`; default /etc/vigil/vigil.yaml when it exists.
    pub config: Option<PathBuf>,
    /// `--json`: alerts on stdout as JSON lines.
    pub json: bool,
    /// `--metrics`: serve Prometheus text (and `/healthz`) here.
    pub metrics: Option<SocketAddr>,
    /// `--queue`: userspace event queue capacity.
    pub queue: Option<usize>,
    /// `--max-procs`: processes tracked.
    pub max_procs: Option<usize>,
    /// `--insecure-permissions`: warn instead of refusing.
    pub insecure_permissions: bool,
    /// `-o KEY.PATH=VALUE` config overrides.
    pub overrides: Vec<Override>,
    /// `--min-priority`, `-T`, `-t`, `-D`: the command line's layer of the
    /// rule [`Selection`] (over the config's `select:`).
    pub select: Select,
    /// `-L`: list the rules and exit.
    pub list_rules: bool,
    /// `--dry-run`: check everything, attach nothing.
    pub dry_run: bool,
    /// `--duration`: stop after this long.
    pub duration: Option<Duration>,
    /// `--allow-empty`: start with no enabled rule.
    pub allow_empty: bool,
}

/// Why `vigil run` did not start, or stopped on an error (a signal or
/// `--duration` is a normal stop).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "no rules: give a rule file or directory with --rules PATH, or `rules:` in the config file"
    )]
    NoRules,
    /// The `nats-kv://` rules source could not be mirrored.
    #[error("{0:#}")]
    Fleet(anyhow::Error),
    #[error("{0}\nthe rules did not load ({n} error(s))", n = .0.0.len())]
    Rules(vigil_engine::LoadErrors),
    #[error(
        "refusing to start: users other than root can change what configures detection:\n{}\n{}",
        .0.iter().map(|f| format!("  {f}")).collect::<Vec<_>>().join("\n"),
        crate::perms::FIX_HINT
    )]
    Insecure(Vec<crate::perms::Insecure>),
    #[error(
        "no enabled rule ({total} loaded from {paths}; the files or the selection disable the rest): \
         nothing would be detected. Give rules with --rules PATH, loosen -T/-t/-D/--min-priority, \
         or pass --allow-empty to start anyway"
    )]
    NoEnabledRule { total: usize, paths: String },
    #[error("starting the tokio runtime")]
    Runtime(#[source] std::io::Error),
    #[error("installing signal handlers")]
    Signals(#[source] std::io::Error),
    #[error("starting the alert outputs")]
    Outputs(#[source] vigil_sinks::SinkError),
    #[error(transparent)]
    Sensors(#[from] vigil_bpf::SensorError),
    #[error("serving metrics on {addr}")]
    Metrics {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the rule watcher")]
    Watcher(#[source] crate::reload::WatchError),
}

/// What `run` settled on from the flags and the config file.
struct Settings {
    rule_paths: Vec<PathBuf>,
    /// Whether `--rules` overrode the config's `rules:`.
    rules_from_flags: bool,
    /// `--json` (re-applied to a reloaded config).
    json: bool,
    config_path: Option<PathBuf>,
    cfg: Config,
    metrics: Option<SocketAddr>,
    queue: usize,
    max_procs: usize,
    /// `--insecure-permissions`: warn about unsafe permissions instead of refusing.
    insecure_permissions: bool,
    /// `-o` overrides and selection flags (re-applied to a reloaded config).
    overrides: Vec<Override>,
    select_flags: Select,
    duration: Option<Duration>,
}

impl Settings {
    /// The rule selection: the config's `select:` under the flags.
    fn selection(&self) -> Selection {
        Selection {
            config: self.cfg.select.clone(),
            flags: self.select_flags.clone(),
        }
    }
}

/// Merge flags over the config file. Without a config file, alerts go to
/// stdout as text (JSON with `--json`); with one, its outputs apply and
/// `--json` switches a configured stdout output to JSON. `-o` overrides
/// apply to either.
fn settings(args: &Options) -> Result<Settings, RunError> {
    let no_file = if args.json {
        "outputs: { stdout: { format: json } }"
    } else {
        "outputs: { stdout: { format: text } }"
    };
    let (mut cfg, config_path) =
        Config::load_or_default(args.config.as_deref(), &args.overrides, no_file)?;
    apply_flags(&mut cfg, args.json);
    let rule_paths = if args.rules.is_empty() {
        cfg.rules.clone()
    } else {
        args.rules.clone()
    };
    if rule_paths.is_empty() && !args.allow_empty {
        return Err(RunError::NoRules);
    }
    Ok(Settings {
        rule_paths,
        rules_from_flags: !args.rules.is_empty(),
        json: args.json,
        config_path,
        metrics: args.metrics.or(cfg.metrics),
        queue: args.queue.unwrap_or(cfg.event_queue),
        max_procs: args.max_procs.unwrap_or(cfg.max_procs),
        insecure_permissions: args.insecure_permissions,
        overrides: args.overrides.clone(),
        select_flags: args.select.clone(),
        duration: args.duration,
        cfg,
    })
}

/// The flags that adjust a (re)loaded config: `--json` switches a configured
/// stdout output to JSON.
fn apply_flags(cfg: &mut Config, json: bool) {
    if json {
        if let Some(s) = cfg.outputs.stdout.as_mut() {
            s.format = Format::Json;
        }
    }
}

/// What a changed config file means for the running daemon.
#[derive(Debug, Default, PartialEq)]
struct ConfigChange {
    /// The outputs differ: start a new router with these.
    outputs: bool,
    /// Keys that changed but only take effect at the next start.
    need_restart: Vec<&'static str>,
}

/// Compares the config in force with a freshly read one (flags applied).
fn config_change(old: &Config, new: &Config, rules_from_flags: bool) -> ConfigChange {
    let mut need_restart = Vec::new();
    if !rules_from_flags && old.rules != new.rules {
        need_restart.push("rules");
    }
    if old.metrics != new.metrics {
        need_restart.push("metrics");
    }
    if old.hostname != new.hostname {
        need_restart.push("hostname");
    }
    if old.event_queue != new.event_queue {
        need_restart.push("event_queue");
    }
    if old.max_procs != new.max_procs {
        need_restart.push("max_procs");
    }
    if old.compat_syscalls != new.compat_syscalls {
        need_restart.push("compat_syscalls");
    }
    if old.output_fields != new.output_fields {
        need_restart.push("output_fields");
    }
    if old.proc_env != new.proc_env {
        need_restart.push("proc_env");
    }
    ConfigChange {
        outputs: old.outputs != new.outputs,
        need_restart,
    }
}

/// The "vigil config reload failed" alert: the file did not parse or its new
/// outputs did not start; the previous outputs stay in force.
pub(super) fn config_failed_alert(host: &Arc<str>, path: &Path, error: &str) -> Alert {
    let mut fields = serde_json::Map::new();
    fields.insert(
        "vigil.config.file".into(),
        path.display().to_string().into(),
    );
    fields.insert("vigil.config.error".into(), error.into());
    Alert::internal(
        "vigil config reload failed",
        Priority::Error,
        "reload",
        format!("vigil config reload failed, previous outputs kept: {error}"),
        fields,
        host.clone(),
    )
}

/// The permission check (`crate::perms`) on `rule_paths` and `config`: Ok when
/// they are safe, or unsafe but allowed by `--insecure-permissions` (each
/// finding logged as a warning); otherwise the findings.
fn check_permissions(
    rule_paths: &[PathBuf],
    config: Option<&Path>,
    allow_insecure: bool,
) -> Result<(), Vec<crate::perms::Insecure>> {
    let found = crate::perms::check(rule_paths, config);
    if found.is_empty() {
        return Ok(());
    }
    if !allow_insecure {
        return Err(found);
    }
    for f in &found {
        tracing::warn!("insecure permissions (loaded anyway: --insecure-permissions): {f}");
    }
    Ok(())
}

/// The config file in force, as the logs name it.
fn config_name(path: Option<&Path>) -> String {
    path.map_or_else(|| "none".to_string(), |p| p.display().to_string())
}

/// Loads the rules and applies the selection: what the daemon (and every
/// reload) runs.
fn load_rules(paths: &[PathBuf], select: &Selection) -> Result<RuleSet, vigil_engine::LoadErrors> {
    let mut rs = RuleSet::load(paths)?;
    select.apply(&mut rs)?;
    Ok(rs)
}

/// `--list-rules`: one row a rule, `enabled` as the file says, `active`
/// after the selection.
fn list_rules(loaded: &RuleSet, selected: &RuleSet) -> String {
    let rows: Vec<[String; 6]> = loaded
        .rules()
        .zip(selected.rules())
        .map(|(f, a)| {
            let ev: Vec<&str> = f.events.iter().map(|t| t.as_str()).collect();
            [
                f.name,
                f.priority.as_str().to_string(),
                f.tags.join(","),
                ev.join(","),
                if f.enabled { "yes" } else { "no" }.to_string(),
                if a.enabled { "yes" } else { "no" }.to_string(),
            ]
        })
        .collect();
    let head = ["NAME", "PRIORITY", "TAGS", "EVENTS", "ENABLED", "ACTIVE"];
    let mut w: [usize; 6] = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(head.map(String::from)).chain(rows) {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

pub fn run(args: Options) -> Result<ExitCode, RunError> {
    let mut st = settings(&args)?;
    // A nats-kv:// rules source becomes a local mirror directory (crate::fleet).
    let host_name = st.cfg.hostname.clone().unwrap_or_else(hostname);
    let fleet = crate::fleet::Fleet::attach(&mut st.rule_paths, st.cfg.nats.as_ref(), &host_name)
        .map_err(RunError::Fleet)?;
    if args.list_rules {
        let loaded = RuleSet::load(&st.rule_paths).map_err(RunError::Rules)?;
        let selected = load_rules(&st.rule_paths, &st.selection()).map_err(RunError::Rules)?;
        print!("{}", list_rules(&loaded, &selected));
        return Ok(ExitCode::SUCCESS);
    }
    check_permissions(
        &st.rule_paths,
        st.config_path.as_deref(),
        st.insecure_permissions,
    )
    .map_err(RunError::Insecure)?;
    tracing::info!(config = %config_name(st.config_path.as_deref()), "config file in force");
    // Hash before loading: a change made during the load is then seen by the watcher.
    let snap = crate::reload::snapshot(&st.rule_paths, st.config_path.as_deref());
    let rules = Arc::new(load_rules(&st.rule_paths, &st.selection()).map_err(RunError::Rules)?);
    let total = rules.rules().count();
    let active = rules.rules().filter(|r| r.enabled).count();
    if active == 0 && !args.allow_empty {
        let paths: Vec<String> = st
            .rule_paths
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        return Err(RunError::NoEnabledRule {
            total,
            paths: paths.join(", "),
        });
    }
    let rt = crate::pipeline::runtime().map_err(RunError::Runtime)?;
    if args.dry_run {
        return rt.block_on(dry_run(&st, &rules));
    }
    rt.block_on(run_async(st, rules, snap.hash, fleet))
}

/// `--dry-run`: everything `run` checks before attaching, then exit.
async fn dry_run(st: &Settings, rules: &RuleSet) -> Result<ExitCode, RunError> {
    let host = st.cfg.hostname.clone().unwrap_or_else(hostname);
    let router = Router::start(&st.cfg.outputs, &host).map_err(RunError::Outputs)?;
    let outputs: Vec<String> = router.stats().iter().map(|s| s.name.to_string()).collect();
    router.shutdown(Duration::from_secs(1)).await;
    let filter = rules.kernel_filter();
    let active = rules.rules().filter(|r| r.enabled).count();
    println!("dry run: config {}", config_name(st.config_path.as_deref()));
    println!(
        "  rules: {active} active of {} loaded (rule set {})",
        rules.rules().count(),
        rules.hash()
    );
    println!("  outputs: {}", outputs.join(", "));
    for t in vigil_engine::EventType::ALL {
        let d = match filter.for_type(t) {
            vigil_engine::TypeFilter::Drop => "drop",
            vigil_engine::TypeFilter::PassAll => "pass all",
            vigil_engine::TypeFilter::Match(_) => "match (see vigil explain)",
        };
        println!("  kernel filter {:<11} {d}", t.as_str());
    }
    println!("dry run OK: nothing attached");
    Ok(ExitCode::SUCCESS)
}

/// Evaluates eligible events and hands alerts to the sink.
struct Handler {
    evaluator: Evaluator,
    sink: Router,
    alerts: Vec<Alert>,
    per_rule: BTreeMap<(String, String), u64>,
    evaluated: u64,
}

impl Handler {
    fn handle(&mut self, le: crate::pipeline::LiveEvent) {
        if !le.eligible {
            return;
        }
        self.evaluated += 1;
        self.evaluator.evaluate(&le.event, &mut self.alerts);
        for mut a in self.alerts.drain(..) {
            if le.event.proc.incomplete {
                a.output_fields
                    .insert("proc.incomplete".into(), true.into());
            }
            if le.truncated {
                a.output_fields
                    .insert("vigil.truncated".into(), true.into());
            }
            *self
                .per_rule
                .entry((a.rule.to_string(), a.priority.falco_name().to_string()))
                .or_default() += 1;
            self.sink.submit(Arc::new(a));
        }
    }
}

/// Re-reads the config file after a reload round. Returns a started router when
/// the outputs changed (the caller swaps it in and drains the old one); a file
/// that does not parse, or outputs that do not start, keep what is in force and
/// raise "vigil config reload failed" through the current outputs.
fn reload_config(
    path: &Path,
    active: &mut Config,
    failing: &mut bool,
    st: &Settings,
    host: &Arc<str>,
    sink: &Router,
) -> Option<Router> {
    let fail = |failing: &mut bool, msg: String| {
        // Every message names the file once.
        let shown = path.display().to_string();
        let msg = if msg.contains(&shown) {
            msg
        } else {
            format!("{shown}: {msg}")
        };
        tracing::error!("config reload: {msg}; the previous config stays in force");
        sink.submit(Arc::new(config_failed_alert(host, path, &msg)));
        *failing = true;
    };
    if let Err(found) = check_permissions(&[], Some(path), st.insecure_permissions) {
        let list: Vec<String> = found.iter().map(|f| f.to_string()).collect();
        fail(
            failing,
            format!("insecure permissions, not loaded: {}", list.join("; ")),
        );
        return None;
    }
    let mut new = match Config::load_with(path, &st.overrides) {
        Ok(c) => c,
        Err(e) => {
            fail(failing, format!("{e:#}"));
            return None;
        }
    };
    apply_flags(&mut new, st.json);
    if std::mem::take(failing) {
        tracing::info!(config = %path.display(), "config reload: the config loads again and is in force");
    }
    if new == *active {
        return None;
    }
    tracing::info!(config = %path.display(), "config reload: config file changed");
    let change = config_change(active, &new, st.rules_from_flags);
    if !change.need_restart.is_empty() {
        tracing::warn!(keys = ?change.need_restart, "config reload: these keys changed and take effect at the next start");
    }
    let mut router = None;
    if change.outputs {
        match Router::start(&new.outputs, host) {
            Ok(r) => {
                tracing::info!(file = %path.display(), "config reload: outputs restarted with the new settings");
                router = Some(r);
            }
            Err(e) => {
                fail(failing, format!("the new outputs did not start: {e}"));
                new.outputs = active.outputs.clone();
            }
        }
    }
    *active = new;
    router
}

async fn run_async(
    st: Settings,
    rules: Arc<RuleSet>,
    initial_hash: String,
    fleet: Option<crate::fleet::Fleet>,
) -> Result<ExitCode, RunError> {
    let mut signals = Signals::install().map_err(RunError::Signals)?;
    let filter = rules.kernel_filter();
    let host: Arc<str> = Arc::from(st.cfg.hostname.clone().unwrap_or_else(hostname));
    let mut evaluator = Evaluator::new(rules.clone(), &host);
    evaluator.set_output_fields(st.cfg.output_fields);
    let mut live = Live::start(
        &filter,
        LiveOptions {
            queue: st.queue,
            max_procs: st.max_procs,
            compat_syscalls: st.cfg.compat_syscalls,
            proc_env: st.cfg.proc_env.clone(),
        },
    )?;
    let router = Router::start(&st.cfg.outputs, &host).map_err(RunError::Outputs)?;
    let metrics = Arc::new(Metrics::default());
    // The sinks' counters, refreshed every tick, appended to each scrape.
    let sink_metrics = Arc::new(std::sync::Mutex::new(String::new()));
    {
        let sink_metrics = sink_metrics.clone();
        metrics.add_source(Box::new(move || {
            sink_metrics.lock().map(|s| s.clone()).unwrap_or_default()
        }));
    }
    let metrics_task = match st.metrics {
        Some(addr) => {
            if let Some(w) = metrics_exposure_warning(addr) {
                tracing::warn!("{w}");
            }
            let (local, task) = crate::metrics::serve(addr, metrics.clone())
                .await
                .map_err(|source| RunError::Metrics { addr, source })?;
            tracing::info!(addr = %local, "metrics at http://{local}/metrics");
            Some(task)
        }
        None => None,
    };
    let n_rules = rules.rules().filter(|r| r.enabled).count();
    tracing::info!(
        rules = n_rules,
        loaded = rules.rules().count(),
        config = %config_name(st.config_path.as_deref()),
        content = %crate::reload::short(&initial_hash),
        rules_hash = rules.hash(),
        hooks = ?live.hooks(),
        "vigil running"
    );
    live.note_inactive_rules(&rules);
    for (rule, reason) in crate::metrics::inactive_rules(&rules) {
        tracing::info!(rule = %rule, reason = %reason, "rule inactive");
    }
    let allow_insecure = st.insecure_permissions;
    if let Some(f) = &fleet {
        f.loaded(&rules, live.hooks());
    }
    // The selection in force: the config's layer follows config reloads.
    let selection = Arc::new(std::sync::Mutex::new(st.selection()));
    let select = selection.clone();
    let (watcher, mut reloads) = crate::reload::Watcher::spawn(
        crate::reload::WatchConfig::new(st.rule_paths.clone(), st.config_path.clone()),
        rules.clone(),
        initial_hash,
        move |p: &[PathBuf]| {
            // Every reload re-checks who can change the files: one that became
            // writable by others fails the whole reload (the old rules stay).
            check_permissions(p, None, allow_insecure)
                .map_err(|found| crate::perms::load_errors(&found))?;
            let select = select.lock().unwrap_or_else(|e| e.into_inner()).clone();
            load_rules(p, &select)
        },
        |new: &RuleSet, old: &RuleSet| new.diff(old),
    )
    .map_err(RunError::Watcher)?;
    let status = format!("watching with {n_rules} rules");
    if let Err(e) = notify(&[NotifyState::Ready, NotifyState::Status(&status)]) {
        tracing::warn!(error = %e, "sd_notify READY failed");
    }

    let mut h = Handler {
        evaluator,
        sink: router,
        alerts: Vec::new(),
        per_rule: BTreeMap::new(),
        evaluated: 0,
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut event_loss = EventLoss::default();
    let mut active_cfg = st.cfg.clone();
    let mut config_failing = false;
    let mut output_health = OutputHealth::default();
    let mut last_kernel = vigil_bpf::KernelCounters::default();
    let stop_at = tokio::time::sleep(
        st.duration
            .unwrap_or(Duration::from_secs(86_400 * 365 * 100)),
    );
    tokio::pin!(stop_at);
    let drops = live.queue_drops();

    loop {
        tokio::select! {
            sig = signals.recv() => match sig {
                DaemonSignal::Shutdown(which) => {
                    tracing::info!("{which}: shutting down");
                    break;
                }
                DaemonSignal::Reload => {
                    tracing::info!("SIGHUP: reloading rules and reopening output files");
                    h.sink.reopen_files();
                    watcher.trigger();
                }
            },
            _ = &mut stop_at, if st.duration.is_some() => {
                tracing::info!("--duration reached: shutting down");
                break;
            }
            Some(ev) = reloads.recv() => {
                match ev {
                    crate::reload::ReloadEvent::Reloaded(r) => {
                        let _ = notify(&[NotifyState::Reloading]);
                        // Filter first: it is a superset per generation flip, so
                        // no event the new rules match is dropped meanwhile.
                        match live.set_filter(&r.value.kernel_filter()) {
                            Ok(()) => {
                                let old_hash = h.evaluator.rules().hash().to_string();
                                h.evaluator.swap_rules(r.value.clone());
                                crate::reload::log_reloaded(&r, &old_hash);
                                live.note_inactive_rules(&r.value);
                                if let Some(f) = &fleet {
                                    f.loaded(&r.value, live.hooks());
                                }
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "reload: writing the kernel filter failed; old rules kept");
                            }
                        }
                        let _ = notify(&[NotifyState::Ready]);
                    }
                    crate::reload::ReloadEvent::Failed(f) => {
                        crate::reload::log_failed(&f);
                        if let Some(fl) = &fleet {
                            fl.reload_failed(&f.error);
                        }
                        h.sink.submit(Arc::new(crate::reload::reload_failed_alert(host.clone(), &f)));
                    }
                }
                // The config file is part of what the watcher hashes: re-read it too.
                if let Some(path) = &st.config_path {
                    let select_before = active_cfg.select.clone();
                    if let Some(router) = reload_config(path, &mut active_cfg, &mut config_failing, &st, &host, &h.sink) {
                        let old = std::mem::replace(&mut h.sink, router);
                        let timeout = active_cfg.shutdown_timeout;
                        tokio::spawn(async move {
                            let report = old.shutdown(timeout).await;
                            if report.undelivered > 0 {
                                tracing::warn!(undelivered = report.undelivered, "config reload: the previous outputs did not deliver every queued alert in time");
                            }
                        });
                    }
                    // This round loaded the rules with the old selection: load them again with the new.
                    if active_cfg.select != select_before {
                        tracing::info!(select = ?active_cfg.select, "config reload: the rule selection changed; reloading the rules with it");
                        selection.lock().unwrap_or_else(|e| e.into_inner()).config = active_cfg.select.clone();
                        watcher.trigger();
                    }
                }
            }
            ev = live.next() => {
                let Some(le) = ev else {
                    tracing::error!("the event reader stopped");
                    break;
                };
                h.handle(le);
                // batch: take what is already queued before flushing
                for _ in 0..1024 {
                    match live.try_next() {
                        Some(le) => h.handle(le),
                        None => break,
                    }
                }
            }
            _ = tick.tick() => {
                let kernel = live.counters().unwrap_or_default();
                let qd: [u64; RawKind::COUNT] = std::array::from_fn(|i| {
                    drops.as_ref().map_or(0, |d| d.per_kind[i].load(std::sync::atomic::Ordering::Relaxed))
                });
                let mut by_type = BTreeMap::new();
                let mut total = 0;
                for k in RawKind::ALL {
                    let n = kernel.get(k).lost + qd[k as usize];
                    if n > 0 {
                        by_type.insert(k.as_str(), n);
                    }
                    total += n;
                }
                if let Some(a) = event_loss.observe(&host, total, &by_type, std::time::Instant::now()) {
                    h.sink.submit_notice(Arc::new(a));
                }
                if let Some(f) = &fleet {
                    let lost: u64 = h.sink.stats().iter().map(|s| s.dropped + s.abandoned).sum();
                    f.set_drops(total, lost);
                }
                if let Ok(mut m) = sink_metrics.lock() {
                    *m = h.sink.render_metrics();
                }
                let failing_outputs = output_health.observe(&h.sink.stats());
                last_kernel = kernel;
                let stats = h.evaluator.stats();
                let table = live.table_stats();
                metrics.update(|s| {
                    s.kernel = kernel;
                    s.queue_drops = qd;
                    s.decode_errors = drops.as_ref().map_or(0, |d| d.decode_errors.load(std::sync::atomic::Ordering::Relaxed));
                    s.proc_table_size = table.size;
                    s.proc_table_cap = st.max_procs;
                    s.incomplete_events = table.incomplete_events;
                    s.events_evaluated = h.evaluated;
                    s.alerts = h.per_rule.clone();
                    s.eval_errors = stats.errors.clone();
                    s.rules_loaded = h.evaluator.rules().rules().filter(|r| r.enabled).count();
                    s.rules_inactive = crate::metrics::inactive_rules(h.evaluator.rules());
                    s.attached = true;
                    s.hooks = live.hooks();
                    s.unavailable_kinds = live.unavailable_kinds().iter().map(|k| k.as_str().to_string()).collect();
                    s.failing_outputs = failing_outputs;
                });
            }
        }
    }
    let _ = notify(&[NotifyState::Stopping]);
    // A second SIGTERM/SIGINT skips the flush (exit status 128 + its number).
    signals.exit_on_second_shutdown();
    // A rule load still running (a huge rule set) is not waited for.
    if !watcher.stop_within(Duration::from_millis(500)) {
        tracing::warn!("shutdown: a rule reload is still running; not waiting for it");
    }
    if let Ok(k) = live.counters() {
        last_kernel = k;
    }
    // Drain what the kernel already handed over, bounded in time.
    live.stop().await;
    let deadline = std::time::Instant::now() + Duration::from_millis(1000);
    while std::time::Instant::now() < deadline {
        match live.try_next() {
            Some(le) => h.handle(le),
            None => break,
        }
    }
    let report = h.sink.shutdown(active_cfg.shutdown_timeout).await;
    if report.undelivered > 0 {
        tracing::warn!(
            undelivered = report.undelivered,
            "shutdown: some queued alerts were not delivered in time"
        );
    }
    shutdown_summary(&last_kernel, &h.per_rule, event_loss.reported);
    if let Some(t) = metrics_task {
        t.abort();
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        Config::parse(text, std::path::Path::new("/etc/vigil/vigil.yaml")).unwrap()
    }

    #[test]
    fn config_change_separates_outputs_from_restart_keys() {
        let old = cfg("rules: [/a]\noutputs:\n  file:\n    path: /tmp/one.jsonl\n");
        let same = config_change(&old, &old.clone(), false);
        assert_eq!(same, ConfigChange::default());
        let new = cfg("rules: [/a]\noutputs:\n  file:\n    path: /tmp/two.jsonl\n");
        let c = config_change(&old, &new, false);
        assert!(c.outputs);
        assert!(c.need_restart.is_empty());
        let new = cfg("rules: [/b]\nmax_procs: 10\noutputs:\n  file:\n    path: /tmp/one.jsonl\n");
        let c = config_change(&old, &new, false);
        assert!(!c.outputs);
        assert_eq!(c.need_restart, vec!["rules", "max_procs"]);
        // --rules overrides the config's list: a change there needs nothing.
        assert!(config_change(&old, &new, true).need_restart == vec!["max_procs"]);
        // A changed selection reloads the rules instead (the event loop).
        let new = cfg("rules: [/a]\nselect: { enable_tags: [x] }\noutputs:\n  file:\n    path: /tmp/one.jsonl\n");
        assert_eq!(config_change(&old, &new, false), ConfigChange::default());
    }

    #[test]
    fn json_flag_applies_to_a_reloaded_stdout_output() {
        let mut c = cfg("rules: [/a]\noutputs:\n  stdout:\n    format: text\n");
        apply_flags(&mut c, false);
        assert_eq!(c.outputs.stdout.as_ref().unwrap().format, Format::Text);
        apply_flags(&mut c, true);
        assert_eq!(c.outputs.stdout.as_ref().unwrap().format, Format::Json);
    }

    #[test]
    fn config_failed_alert_names_file_and_error() {
        let host: Arc<str> = Arc::from("h");
        let a = config_failed_alert(
            &host,
            Path::new("/etc/vigil/vigil.yaml"),
            "line 3: unknown field `x`",
        );
        assert_eq!(&*a.rule, "vigil config reload failed");
        assert_eq!(a.priority, Priority::Error);
        assert_eq!(
            a.output_fields["vigil.config.file"],
            "/etc/vigil/vigil.yaml"
        );
        assert!(a.output.contains("unknown field `x`"));
    }
}
