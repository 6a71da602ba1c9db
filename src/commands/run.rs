//! `vigil run`: the daemon. Reads the config file (`--config`, default
//! `/etc/vigil/vigil.yaml` when present), loads rules, attaches the sensors,
//! writes the kernel filter, evaluates rules on live events and hands alerts
//! to the sinks router (`vigil_sinks::Router`: stdout, file, syslog, webhook,
//! email). Rule files hot-reload through `crate::reload` (and on SIGHUP, which
//! also reopens output files); so do the config file's `outputs` (a new router
//! is started, swapped in, and the old one drains in the background; other
//! changed keys are logged as needing a restart). `--metrics` serves
//! Prometheus text. `READY=1` goes to `$NOTIFY_SOCKET` once every sensor is
//! attached; SIGTERM/SIGINT flush the queued alerts and exit 0; a second one
//! exits at once. Rule files, rule directories, the config and the
//! directories above them must not be writable by users other than root (or
//! the user vigil runs as): `crate::perms` checks them at start and on every
//! reload, and `--insecure-permissions` turns a refusal into a warning.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use vigil_bpf::RawKind;
use vigil_engine::ruleset::{hostname, Evaluator, RuleSet};
use vigil_engine::{Alert, Priority};
use vigil_sinks::config::Format;
use vigil_sinks::Router;

use crate::config::{Config, Override, SelectArgs};
use crate::daemon::{notify, NotifyState};
use crate::metrics::Metrics;
use crate::pipeline::{Live, LiveOptions};

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
    pub overrides: Vec<Override>,
    #[command(flatten)]
    pub select: SelectArgs,
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
    select_flags: SelectArgs,
    duration: Option<Duration>,
}

/// Merge flags over the config file. Without a config file, alerts go to
/// stdout as text (JSON with `--json`); with one, its outputs apply and
/// `--json` switches a configured stdout output to JSON. `-o` overrides
/// apply to either.
fn settings(args: &Args) -> anyhow::Result<Settings> {
    let no_file = if args.json {
        "outputs: { stdout: { format: json } }"
    } else {
        "outputs: { stdout: { format: text } }"
    };
    let (mut cfg, config_path) =
        Config::load_or_default(args.config.as_deref(), &args.overrides, no_file)?;
    apply_flags(&mut cfg, args.json, &args.select);
    let rule_paths = if args.rules.rules.is_empty() {
        cfg.rules.clone()
    } else {
        args.rules.rules.clone()
    };
    if rule_paths.is_empty() && !args.allow_empty {
        anyhow::bail!(
            "no rules: give a rule file or directory with --rules PATH, or `rules:` in the config file"
        );
    }
    Ok(Settings {
        rule_paths,
        rules_from_flags: !args.rules.rules.is_empty(),
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
/// stdout output to JSON; the selection flags add to `select:`.
fn apply_flags(cfg: &mut Config, json: bool, select: &SelectArgs) {
    if json {
        if let Some(s) = cfg.outputs.stdout.as_mut() {
            s.format = Format::Json;
        }
    }
    select.merge_into(&mut cfg.select);
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
    if old.proc_env != new.proc_env {
        need_restart.push("proc_env");
    }
    if old.select != new.select {
        need_restart.push("select");
    }
    ConfigChange {
        outputs: old.outputs != new.outputs,
        need_restart,
    }
}

/// The "vigil config reload failed" alert: the file did not parse or its new
/// outputs did not start; the previous outputs stay in force.
fn config_failed_alert(host: &Arc<str>, path: &Path, error: &str) -> Alert {
    let mut fields = serde_json::Map::new();
    fields.insert(
        "vigil.config.file".into(),
        path.display().to_string().into(),
    );
    fields.insert("vigil.config.error".into(), error.into());
    let now = vigil_bpf::time::boottime_ns() + vigil_bpf::time::boot_to_epoch_offset();
    Alert {
        time: now,
        rule: Arc::from("vigil config reload failed"),
        priority: Priority::Error,
        output: format!("vigil config reload failed, previous outputs kept: {error}"),
        output_fields: fields,
        tags: Arc::from(vec!["vigil".to_string(), "reload".to_string()]),
        source: "internal",
        hostname: host.clone(),
    }
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

/// The warning for a metrics address other hosts can reach, or None for loopback.
fn metrics_exposure_warning(addr: SocketAddr) -> Option<String> {
    let ip = addr.ip().to_canonical();
    if ip.is_loopback() {
        return None;
    }
    Some(format!(
        "metrics served on {addr}, reachable from other hosts: it exposes vigil's internals \
         (rule names, alert counts per rule, event drop counters, evaluation errors) to anyone \
         who can connect; bind to 127.0.0.1 or firewall the port"
    ))
}

/// The config file in force, as the logs name it.
fn config_name(path: Option<&Path>) -> String {
    path.map_or_else(|| "none".to_string(), |p| p.display().to_string())
}

/// Loads the rules and applies the selection: what the daemon (and every
/// reload) runs.
fn load_rules(
    paths: &[PathBuf],
    select: &crate::config::Select,
) -> Result<RuleSet, vigil_engine::LoadErrors> {
    let mut rs = RuleSet::load(paths)?;
    select.apply(&mut rs);
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

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut st = settings(&args)?;
    // A nats-kv:// rules source becomes a local mirror directory (crate::fleet).
    let host_name = st.cfg.hostname.clone().unwrap_or_else(hostname);
    let fleet = crate::fleet::Fleet::attach(&mut st.rule_paths, st.cfg.nats.as_ref(), &host_name)?;
    if args.list_rules {
        let loaded = RuleSet::load(&st.rule_paths).map_err(|e| anyhow::anyhow!("{e}"))?;
        let selected =
            load_rules(&st.rule_paths, &st.cfg.select).map_err(|e| anyhow::anyhow!("{e}"))?;
        print!("{}", list_rules(&loaded, &selected));
        return Ok(ExitCode::SUCCESS);
    }
    if let Err(found) = check_permissions(
        &st.rule_paths,
        st.config_path.as_deref(),
        st.insecure_permissions,
    ) {
        let list: Vec<String> = found.iter().map(|f| format!("  {f}")).collect();
        anyhow::bail!(
            "refusing to start: users other than root can change what configures detection:\n{}\n{}",
            list.join("\n"),
            crate::perms::FIX_HINT
        );
    }
    tracing::info!(config = %config_name(st.config_path.as_deref()), "config file in force");
    // Hash before loading: a change made during the load is then seen by the watcher.
    let snap = crate::reload::snapshot(&st.rule_paths, st.config_path.as_deref());
    let rules = match load_rules(&st.rule_paths, &st.cfg.select) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            eprintln!("{e}");
            anyhow::bail!("the rules did not load ({} error(s))", e.0.len());
        }
    };
    let total = rules.rules().count();
    let active = rules.rules().filter(|r| r.enabled).count();
    if active == 0 && !args.allow_empty {
        anyhow::bail!(
            "no enabled rule ({total} loaded from {}; the files or the selection disable the rest): \
             nothing would be detected. Give rules with --rules PATH, loosen -T/-t/-D/--min-priority, \
             or pass --allow-empty to start anyway",
            st.rule_paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let rt = crate::pipeline::runtime().context("starting the tokio runtime")?;
    if args.dry_run {
        return rt.block_on(dry_run(&st, &rules));
    }
    rt.block_on(run_async(st, rules, snap.hash, fleet))
}

/// `--dry-run`: everything `run` checks before attaching, then exit.
async fn dry_run(st: &Settings, rules: &RuleSet) -> anyhow::Result<ExitCode> {
    let host = st.cfg.hostname.clone().unwrap_or_else(hostname);
    let router = Router::start(&st.cfg.outputs, &host).context("starting the alert outputs")?;
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

/// The "events lost" alert raised when the kernel or the queue dropped
/// events: `total` (and the per-type counts) since start, `new` since the
/// previous notice. Cumulative, so a notice that replaces an undelivered
/// older one in the sinks' notice slots loses nothing.
fn loss_alert(
    host: &Arc<str>,
    what: &str,
    total: u64,
    new: u64,
    by_type: &BTreeMap<&'static str, u64>,
) -> Alert {
    let mut fields = serde_json::Map::new();
    fields.insert("vigil.lost".into(), total.into());
    fields.insert("vigil.lost_new".into(), new.into());
    for (t, c) in by_type {
        fields.insert(format!("vigil.lost.{t}"), (*c).into());
    }
    let now = vigil_bpf::time::boottime_ns() + vigil_bpf::time::boot_to_epoch_offset();
    Alert {
        time: now,
        rule: Arc::from("vigil events lost"),
        priority: Priority::Warning,
        output: format!("vigil lost {total} events since start ({new} new; {what}): {by_type:?}"),
        output_fields: fields,
        tags: Arc::from(vec!["vigil".to_string(), "loss".to_string()]),
        source: "syscall",
        hostname: host.clone(),
    }
}

/// Minimum time between two "events lost" warnings in the log.
const LOSS_LOG_EVERY: Duration = Duration::from_secs(10);

/// When to raise (and log) the "vigil events lost" notice. The notice goes
/// through `Router::submit_notice`, which no full queue can drop, so the
/// reported total may advance as soon as the notice is handed over.
#[derive(Default)]
struct EventLoss {
    /// The total carried by the last notice.
    reported: u64,
    /// When the last warning was logged, and the losses since then.
    logged_at: Option<std::time::Instant>,
    unlogged: u64,
}

impl EventLoss {
    /// A notice when `total` grew since the last one; the growth is also
    /// logged as a warning, at most every [`LOSS_LOG_EVERY`].
    fn observe(
        &mut self,
        host: &Arc<str>,
        total: u64,
        by_type: &BTreeMap<&'static str, u64>,
        now: std::time::Instant,
    ) -> Option<Alert> {
        if total <= self.reported {
            return None;
        }
        let new = total - self.reported;
        self.reported = total;
        self.unlogged += new;
        if self
            .logged_at
            .is_none_or(|t| now.duration_since(t) >= LOSS_LOG_EVERY)
        {
            tracing::warn!(
                lost = self.unlogged,
                total,
                by_type = ?by_type,
                "events lost: kernel ring buffer or userspace queue full"
            );
            self.logged_at = Some(now);
            self.unlogged = 0;
        }
        Some(loss_alert(
            host,
            "kernel ring buffer or userspace queue full",
            total,
            new,
            by_type,
        ))
    }
}

/// Which outputs are failing beyond their retry budget, for `/healthz`: an
/// output that abandoned alerts is failing until it delivers again. Fed the
/// router's counters every tick (a new router after a config reload starts
/// from zero).
#[derive(Default)]
struct OutputHealth {
    /// (sent, abandoned) per output at the previous tick.
    last: BTreeMap<String, (u64, u64)>,
    failing: std::collections::BTreeSet<String>,
}

impl OutputHealth {
    fn observe(&mut self, stats: &[vigil_sinks::SinkStats]) -> Vec<String> {
        for s in stats {
            let (sent, abandoned) = self.last.get(&s.name).copied().unwrap_or_default();
            let (sent, abandoned) = if s.sent < sent || s.abandoned < abandoned {
                (0, 0)
            } else {
                (sent, abandoned)
            };
            if s.abandoned > abandoned {
                if self.failing.insert(s.name.clone()) {
                    tracing::warn!(output = %s.name, abandoned = s.abandoned, "output failing: alerts given up after the retry budget (/healthz reports 503)");
                }
            } else if s.sent > sent && self.failing.remove(&s.name) {
                tracing::info!(output = %s.name, "output delivering again");
            }
            self.last.insert(s.name.clone(), (s.sent, s.abandoned));
        }
        self.failing
            .iter()
            .map(|n| {
                format!("output {n}: alerts abandoned after the retry budget, none delivered since")
            })
            .collect()
    }
}

/// The one line logged at shutdown: events the kernel saw per kind, alerts
/// raised per priority, events lost.
fn shutdown_summary(
    kernel: &vigil_bpf::KernelCounters,
    per_rule: &BTreeMap<(String, String), u64>,
    lost: u64,
) {
    let seen: BTreeMap<&str, u64> = RawKind::ALL
        .iter()
        .map(|k| (k.as_str(), kernel.get(*k).seen))
        .collect();
    let mut alerts: BTreeMap<&str, u64> = BTreeMap::new();
    for ((_, prio), n) in per_rule {
        *alerts.entry(prio.as_str()).or_default() += n;
    }
    tracing::info!(events_seen = ?seen, alerts = ?alerts, lost, "shutdown summary");
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
    apply_flags(&mut new, st.json, &st.select_flags);
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
) -> anyhow::Result<ExitCode> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigterm = signal(SignalKind::terminate()).context("installing signal handlers")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing signal handlers")?;
    let mut sighup = signal(SignalKind::hangup()).context("installing signal handlers")?;
    let filter = rules.kernel_filter();
    let host: Arc<str> = Arc::from(st.cfg.hostname.clone().unwrap_or_else(hostname));
    let evaluator = Evaluator::new(rules.clone(), &host);
    let mut live = Live::start(
        &filter,
        LiveOptions {
            queue: st.queue,
            max_procs: st.max_procs,
            compat_syscalls: st.cfg.compat_syscalls,
            proc_env: st.cfg.proc_env.clone(),
        },
    )?;
    let router = Router::start(&st.cfg.outputs, &host).context("starting the alert outputs")?;
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
                .with_context(|| format!("serving metrics on {addr}"))?;
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
    let allow_insecure = st.insecure_permissions;
    if let Some(f) = &fleet {
        f.loaded(&rules, live.hooks());
    }
    let select = st.cfg.select.clone();
    let (watcher, mut reloads) = crate::reload::Watcher::spawn(
        crate::reload::WatchConfig::new(st.rule_paths.clone(), st.config_path.clone()),
        rules.clone(),
        initial_hash,
        move |p: &[PathBuf]| {
            // Every reload re-checks who can change the files: one that became
            // writable by others fails the whole reload (the old rules stay).
            check_permissions(p, None, allow_insecure)
                .map_err(|found| crate::perms::load_errors(&found))?;
            load_rules(p, &select)
        },
        |new: &RuleSet, old: &RuleSet| new.diff(old),
    )
    .context("starting the rule watcher")?;
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
            _ = sigterm.recv() => {
                tracing::info!("SIGTERM: shutting down");
                break;
            }
            _ = sigint.recv() => {
                tracing::info!("SIGINT: shutting down");
                break;
            }
            _ = &mut stop_at, if st.duration.is_some() => {
                tracing::info!("--duration reached: shutting down");
                break;
            }
            _ = sighup.recv() => {
                tracing::info!("SIGHUP: reloading rules and reopening output files");
                h.sink.reopen_files();
                watcher.trigger();
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
                    s.attached = true;
                    s.failing_outputs = failing_outputs;
                });
            }
        }
    }
    let _ = notify(&[NotifyState::Stopping]);
    // A second SIGTERM/SIGINT skips the flush.
    tokio::spawn(async move {
        tokio::select! {
            _ = sigterm.recv() => {},
            _ = sigint.recv() => {},
        }
        std::process::exit(130);
    });
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
    }

    #[test]
    fn json_flag_applies_to_a_reloaded_stdout_output() {
        let mut c = cfg("rules: [/a]\noutputs:\n  stdout:\n    format: text\n");
        apply_flags(&mut c, false, &SelectArgs::default());
        assert_eq!(c.outputs.stdout.as_ref().unwrap().format, Format::Text);
        apply_flags(&mut c, true, &SelectArgs::default());
        assert_eq!(c.outputs.stdout.as_ref().unwrap().format, Format::Json);
    }

    #[test]
    fn metrics_on_a_non_loopback_address_warns() {
        for a in [
            "127.0.0.1:9376",
            "127.8.0.1:1",
            "[::1]:9376",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert_eq!(metrics_exposure_warning(a.parse().unwrap()), None, "{a}");
        }
        for a in ["0.0.0.0:9376", "192.0.2.7:9376", "[::]:9376"] {
            let w = metrics_exposure_warning(a.parse().unwrap()).unwrap_or_default();
            assert!(w.contains(a) && w.contains("exposes"), "{a}: {w}");
        }
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

    #[test]
    fn loss_alert_names_counts_per_type() {
        let host: Arc<str> = Arc::from("h");
        let by_type: BTreeMap<&'static str, u64> = [("open", 3), ("exec", 2)].into_iter().collect();
        let a = loss_alert(&host, "queue full", 5, 2, &by_type);
        assert_eq!(&*a.rule, "vigil events lost");
        assert_eq!(a.priority, Priority::Warning);
        assert_eq!(a.output_fields["vigil.lost"], 5);
        assert_eq!(a.output_fields["vigil.lost_new"], 2);
        assert_eq!(a.output_fields["vigil.lost.open"], 3);
        assert!(a
            .output
            .contains("lost 5 events since start (2 new; queue full)"));
        let j: serde_json::Value = serde_json::from_str(&a.to_json_line()).unwrap();
        assert_eq!(j["rule"], "vigil events lost");
    }

    #[test]
    fn event_loss_notices_carry_cumulative_totals_and_log_rate_limited() {
        let host: Arc<str> = Arc::from("h");
        let t0 = std::time::Instant::now();
        let mut el = EventLoss::default();
        assert!(el.observe(&host, 0, &BTreeMap::new(), t0).is_none());
        let by: BTreeMap<&'static str, u64> = [("open", 5)].into_iter().collect();
        let a = el.observe(&host, 5, &by, t0).expect("first loss");
        assert_eq!(a.output_fields["vigil.lost"], 5);
        assert_eq!(a.output_fields["vigil.lost_new"], 5);
        assert_eq!(el.logged_at, Some(t0));
        assert!(el.observe(&host, 5, &by, t0).is_none(), "no new loss");
        // More losses a second later: a notice with the running total (it
        // supersedes the first if that is still undelivered); the warning
        // waits for the log interval.
        let by: BTreeMap<&'static str, u64> = [("open", 9), ("exec", 3)].into_iter().collect();
        let t1 = t0 + Duration::from_secs(1);
        let a = el.observe(&host, 12, &by, t1).expect("more loss");
        assert_eq!(a.output_fields["vigil.lost"], 12);
        assert_eq!(a.output_fields["vigil.lost_new"], 7);
        assert_eq!(a.output_fields["vigil.lost.open"], 9);
        assert_eq!(a.output_fields["vigil.lost.exec"], 3);
        assert_eq!((el.logged_at, el.unlogged), (Some(t0), 7));
        let t2 = t0 + LOSS_LOG_EVERY;
        el.observe(&host, 13, &by, t2).expect("more loss");
        assert_eq!((el.logged_at, el.unlogged), (Some(t2), 0));
    }

    /// Regression (issue 17, item 6): in an alert storm the "events lost"
    /// alert was submitted like any alert, dropped by the full queue, and
    /// never repeated. Now it takes the notice path: with the only sink's
    /// queue full, it is still delivered, first, with the total.
    #[tokio::test(flavor = "current_thread")]
    async fn events_lost_notice_survives_a_full_queue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        let outputs: vigil_sinks::OutputsConfig = serde_yaml_ng::from_str(&format!(
            "loss_alert_interval: 0s\nfile: {{ path: {}, queue_size: 4 }}\n",
            path.display()
        ))
        .unwrap();
        let router = Router::start(&outputs, "h").unwrap();
        let host: Arc<str> = Arc::from("h");
        let storm = config_failed_alert(&host, Path::new("/x"), "an ordinary alert");
        for _ in 0..100 {
            router.submit(Arc::new(storm.clone()));
        }
        assert_eq!(router.stats()[0].dropped, 96, "the queue is full");
        let mut el = EventLoss::default();
        let by: BTreeMap<&'static str, u64> = [("open", 95_683)].into_iter().collect();
        let now = std::time::Instant::now();
        let a = el.observe(&host, 95_683, &by, now).unwrap();
        router.submit_notice(Arc::new(a));
        let report = router.shutdown(Duration::from_secs(5)).await;
        assert_eq!(report.undelivered, 0);
        let text = std::fs::read_to_string(&path).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["rule"], "vigil events lost");
        assert_eq!(first["output_fields"]["vigil.lost"], 95_683);
        assert_eq!(first["output_fields"]["vigil.lost.open"], 95_683);
        assert_eq!(
            text.lines().count(),
            5,
            "the notice and the 4 queued alerts"
        );
    }

    #[test]
    fn an_output_fails_when_it_abandons_and_recovers_when_it_delivers() {
        let st = |sent, abandoned| vigil_sinks::SinkStats {
            name: "webhook".into(),
            sent,
            failed: 0,
            dropped: 0,
            abandoned,
            unflushed: 0,
            queued: 0,
            retries: 0,
            capacity: 10,
            immediate: 0,
            digests: 0,
        };
        let mut h = OutputHealth::default();
        assert!(h.observe(&[st(3, 0)]).is_empty());
        let f = h.observe(&[st(3, 1)]);
        assert_eq!(f.len(), 1);
        assert!(f[0].starts_with("output webhook:"), "{f:?}");
        assert_eq!(
            h.observe(&[st(3, 1)]).len(),
            1,
            "still failing: nothing delivered"
        );
        assert!(h.observe(&[st(4, 1)]).is_empty(), "delivered again");
        // A new router (config reload) starts its counters at zero.
        assert!(h.observe(&[st(0, 0)]).is_empty());
        assert_eq!(h.observe(&[st(0, 2)]).len(), 1);
    }
}
