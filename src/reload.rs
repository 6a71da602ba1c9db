//! Hot reload: watches the rule paths and the config file, decides when their
//! content really changed (SHA-256 over a re-listed snapshot) and reloads them
//! with a caller-supplied `load` closure on a dedicated thread, off the event
//! path. Results (new value + diff + timing, or the error with the old value
//! kept) go to the caller over a tokio channel.
//!
//! What counts as a change: any debounced filesystem event in a watched
//! directory (each rule directory non-recursively, the parent directory of each
//! rule path and of the config file), an explicit [`ReloadHandle::trigger`]
//! (SIGHUP; always reloads) and a slow periodic re-hash as a safety net. Every
//! "maybe changed" re-lists `*.yaml`/`*.yml` (following symlinks, skipping names that
//! start with `.` such as Kubernetes' `..data`) and hashes names and contents,
//! so editors that save by rename, `mv`, and atomically swapped symlinked
//! directories (ConfigMap `..data` swaps) are all seen, and a touch or an
//! identical rewrite reloads nothing.
//!
//! The inotify watches ask only for changes (create, delete, move, modify,
//! attribute): never `IN_OPEN`/`IN_ACCESS`/`IN_CLOSE_NOWRITE`, which would charge
//! every open of any file next to a watched rule file (say `--rules
//! /etc/foo.yaml`, which watches `/etc`) and wake this thread for nothing.
//!
//! Wiring (in `vigil run`):
//! ```ignore
//! let snap = reload::snapshot(&rule_paths, config_path.as_deref());
//! let rules = Arc::new(RuleSet::load(&rule_paths)?);
//! let (watcher, mut rx) = reload::Watcher::spawn(
//!     reload::WatchConfig::new(rule_paths.clone(), config_path.clone()),
//!     rules.clone(), snap.hash,
//!     |paths: &[PathBuf]| RuleSet::load(paths),
//!     |new: &RuleSet, old: &RuleSet| new.diff(old),
//! )?;
//! // SIGHUP: watcher.trigger();
//! // rx.recv(): Reloaded(r) -> live.set_filter(&r.value.kernel_filter()) then
//! //              evaluator.swap_rules(r.value.clone()); reload::log_reloaded(&r)
//! //            Failed(f)   -> reload::log_failed(&f);
//! //              router.submit(Arc::new(reload::reload_failed_alert(host.clone(), &f)))
//! ```

// The daemon wires in only part of this API; the rest is used by tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{Config as NotifyConfig, EventKindMask, RecursiveMode, Watcher as _};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc as tokio_mpsc;
use tracing::{debug, info, warn};
use vigil_engine::{Alert, LoadErrors, Priority, RuleSet, RuleSetDiff};

/// Default debounce window: events closer together than this are one change.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(250);
/// Default safety-net re-hash interval (missed inotify events, NFS, overflow).
pub const DEFAULT_REHASH_INTERVAL: Duration = Duration::from_secs(60);
/// A burst of filesystem events never delays a reload by more than this many debounce windows.
const MAX_DEBOUNCE_WINDOWS: u32 = 8;
/// How often a load is retried when the files change while it runs.
const MAX_UNSTABLE_RETRIES: usize = 3;
/// Capacity of the result channel to the caller.
const EVENT_QUEUE: usize = 16;

/// What to watch and how.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// Rule files and directories, in load order (as given to the loader).
    pub rule_paths: Vec<PathBuf>,
    /// The daemon's config file; its content is part of the hash.
    pub config_path: Option<PathBuf>,
    /// Debounce window for filesystem events.
    pub debounce: Duration,
    /// Safety-net re-hash interval.
    pub rehash_interval: Duration,
}

impl WatchConfig {
    /// Watch `rule_paths` and `config_path` with the default timings.
    pub fn new(rule_paths: Vec<PathBuf>, config_path: Option<PathBuf>) -> WatchConfig {
        WatchConfig {
            rule_paths,
            config_path,
            debounce: DEFAULT_DEBOUNCE,
            rehash_interval: DEFAULT_REHASH_INTERVAL,
        }
    }
}

/// Errors setting up the watcher.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot start the file watcher: {0}")]
    Notify(#[from] notify::Error),
    #[error("cannot start the reload thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Why a reload round ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The content differed already when the watcher started (changed after the
    /// caller's snapshot, before the watches were set).
    Startup,
    /// A debounced filesystem event.
    Files,
    /// [`ReloadHandle::trigger`] (SIGHUP): reloads even if nothing changed.
    Trigger,
    /// [`ReloadHandle::rescan`]: re-hash now, reload only if the content changed.
    Rescan,
    /// The periodic safety-net re-hash.
    Periodic,
}

/// A consistent view of what the rule paths and config contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Hex SHA-256 over the listed file names and contents (and the config).
    pub hash: String,
    /// Rule files found, in load order.
    pub files: Vec<PathBuf>,
}

/// A successful reload: the new value is now current.
#[derive(Debug)]
pub struct Reloaded<T, D> {
    pub value: Arc<T>,
    /// `diff(new, old)` from the caller's diff closure.
    pub diff: D,
    pub hash: String,
    pub previous_hash: String,
    pub files: Vec<PathBuf>,
    /// Wall time the `load` closure took.
    pub load_time: Duration,
    pub cause: Cause,
}

/// A failed reload: the previous value stays current.
#[derive(Debug)]
pub struct ReloadFailed<E> {
    pub error: E,
    /// Hash of the content that failed to load.
    pub hash: String,
    /// Hash of the content still in force.
    pub kept_hash: String,
    pub files: Vec<PathBuf>,
    pub load_time: Duration,
    pub cause: Cause,
}

/// What the watcher reports to the caller.
#[derive(Debug)]
pub enum ReloadEvent<T, E, D> {
    Reloaded(Reloaded<T, D>),
    Failed(ReloadFailed<E>),
}

enum Msg {
    Files,
    Rescan,
    Trigger,
    Stop,
}

/// Where the caller receives reload reports.
pub type ReloadReceiver<T, E, D> = tokio_mpsc::Receiver<ReloadEvent<T, E, D>>;

/// A cheap, cloneable way to ask the watcher for a reload (e.g. from the SIGHUP handler).
#[derive(Clone)]
pub struct ReloadHandle {
    tx: std_mpsc::Sender<Msg>,
}

impl ReloadHandle {
    /// Reload now, even if the content hash is unchanged. Returns false if the watcher has stopped.
    pub fn trigger(&self) -> bool {
        self.tx.send(Msg::Trigger).is_ok()
    }

    /// Re-hash now and reload only if the content changed (e.g. after logrotate's SIGHUP,
    /// where a forced reload would only reset rule state). Returns false if stopped.
    pub fn rescan(&self) -> bool {
        self.tx.send(Msg::Rescan).is_ok()
    }
}

/// The running watcher. Dropping it stops the thread (without waiting).
pub struct Watcher {
    tx: std_mpsc::Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts watching. `initial` is the value loaded at startup and `initial_hash` the
    /// [`snapshot`] hash taken *before* that load; if the content has changed since, the
    /// first round reloads at once (cause [`Cause::Startup`]).
    ///
    /// `load` receives `cfg.rule_paths` and runs on the watcher's own thread. `diff(new, old)`
    /// describes a successful reload.
    pub fn spawn<T, E, D, L, Df>(
        cfg: WatchConfig,
        initial: Arc<T>,
        initial_hash: String,
        load: L,
        diff: Df,
    ) -> Result<(Watcher, ReloadReceiver<T, E, D>), WatchError>
    where
        T: Send + Sync + 'static,
        E: Send + 'static,
        D: Send + 'static,
        L: Fn(&[PathBuf]) -> Result<T, E> + Send + 'static,
        Df: Fn(&T, &T) -> D + Send + 'static,
    {
        let (tx, rx) = std_mpsc::channel::<Msg>();
        let fs_tx = tx.clone();
        let inotify = notify::RecommendedWatcher::new(
            move |res: notify::Result<notify::Event>| {
                match res {
                    Ok(event) => {
                        debug!(kind = ?event.kind, paths = ?event.paths, "reload: filesystem event")
                    }
                    Err(e) => warn!("reload: file watcher error (re-hashing): {e}"),
                }
                let _ = fs_tx.send(Msg::Files);
            },
            NotifyConfig::default().with_event_kinds(EventKindMask::CORE),
        )?;
        let (out_tx, out_rx) = tokio_mpsc::channel(EVENT_QUEUE);
        let mut worker = Worker {
            cfg,
            inotify,
            watched: BTreeMap::new(),
            current: initial,
            good_hash: initial_hash.clone(),
            last_hash: initial_hash,
            load,
            diff,
            out: out_tx,
        };
        // Watches first, then the check: a change after this point raises an event, one
        // before it shows in the hash.
        worker.rewatch();
        let config = worker.cfg.config_path.clone();
        let changed_since_load =
            snapshot(&worker.cfg.rule_paths, config.as_deref()).hash != worker.last_hash;
        let thread = std::thread::Builder::new()
            .name("vigil-reload".into())
            .spawn(move || worker.run(rx, changed_since_load))
            .map_err(WatchError::Thread)?;
        Ok((
            Watcher {
                tx,
                thread: Some(thread),
            },
            out_rx,
        ))
    }

    /// Reload now, even if nothing changed (SIGHUP).
    pub fn trigger(&self) -> bool {
        self.tx.send(Msg::Trigger).is_ok()
    }

    /// Re-hash now; reload only if the content changed.
    pub fn rescan(&self) -> bool {
        self.tx.send(Msg::Rescan).is_ok()
    }

    /// A cloneable trigger for other tasks.
    pub fn handle(&self) -> ReloadHandle {
        ReloadHandle {
            tx: self.tx.clone(),
        }
    }

    /// Stops the watcher and waits for a load in progress to finish.
    pub fn stop(mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
    }
}

struct Worker<T, E, D, L, Df> {
    cfg: WatchConfig,
    /// Change-only inotify watches (see the module doc); events arrive as `Msg::Files`.
    inotify: notify::RecommendedWatcher,
    /// Watched directory -> (device, inode) it had when the watch was set.
    watched: BTreeMap<PathBuf, (u64, u64)>,
    current: Arc<T>,
    /// Hash of the content `current` was loaded from.
    good_hash: String,
    /// Hash of the content last loaded (successfully or not): unchanged content is not retried.
    last_hash: String,
    load: L,
    diff: Df,
    out: tokio_mpsc::Sender<ReloadEvent<T, E, D>>,
}

impl<T, E, D, L, Df> Worker<T, E, D, L, Df>
where
    T: Send + Sync + 'static,
    E: Send + 'static,
    D: Send + 'static,
    L: Fn(&[PathBuf]) -> Result<T, E>,
    Df: Fn(&T, &T) -> D,
{
    fn run(mut self, rx: std_mpsc::Receiver<Msg>, changed_since_load: bool) {
        let mut next = changed_since_load.then_some(Cause::Startup);
        loop {
            let cause = match next.take() {
                Some(c) => c,
                None => match rx.recv_timeout(self.cfg.rehash_interval) {
                    Ok(Msg::Files) => Cause::Files,
                    Ok(Msg::Rescan) => Cause::Rescan,
                    Ok(Msg::Trigger) => Cause::Trigger,
                    Ok(Msg::Stop) | Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
                    Err(std_mpsc::RecvTimeoutError::Timeout) => Cause::Periodic,
                },
            };
            // Debounce filesystem events: wait until they stay quiet for one window
            // (an editor's save is several events), then coalesce whatever else
            // queued up meanwhile into this round.
            let mut cause = cause;
            if cause == Cause::Files && !self.settle(&rx, &mut cause) {
                return;
            }
            loop {
                match rx.try_recv() {
                    Ok(Msg::Files) | Ok(Msg::Rescan) => {}
                    Ok(Msg::Trigger) => cause = Cause::Trigger,
                    Ok(Msg::Stop) => return,
                    Err(std_mpsc::TryRecvError::Empty) => break,
                    Err(std_mpsc::TryRecvError::Disconnected) => return,
                }
            }
            if !self.round(cause) {
                debug!("reload: receiver gone, watcher stops");
                return;
            }
        }
    }

    /// Waits until no filesystem event arrived for one debounce window, at most
    /// [`MAX_DEBOUNCE_WINDOWS`] windows in all (a file rewritten non-stop still
    /// reloads). A trigger ends the wait at once. Returns false on stop.
    fn settle(&self, rx: &std_mpsc::Receiver<Msg>, cause: &mut Cause) -> bool {
        let deadline = Instant::now() + self.cfg.debounce * MAX_DEBOUNCE_WINDOWS;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            match rx.recv_timeout(self.cfg.debounce.min(left)) {
                Ok(Msg::Files) | Ok(Msg::Rescan) => {}
                Ok(Msg::Trigger) => {
                    *cause = Cause::Trigger;
                    return true;
                }
                Ok(Msg::Stop) | Err(std_mpsc::RecvTimeoutError::Disconnected) => return false,
                Err(std_mpsc::RecvTimeoutError::Timeout) => return true,
            }
        }
    }

    /// One "maybe changed" round. Returns false when the caller dropped the receiver.
    fn round(&mut self, cause: Cause) -> bool {
        self.rewatch();
        let config = self.cfg.config_path.clone();
        let mut snap = snapshot(&self.cfg.rule_paths, config.as_deref());
        if cause != Cause::Trigger && snap.hash == self.last_hash {
            debug!(?cause, hash = %short(&snap.hash), "reload: content unchanged");
            return true;
        }
        let mut attempt = 0;
        let (result, load_time) = loop {
            let started = Instant::now();
            let result = (self.load)(&self.cfg.rule_paths);
            let load_time = started.elapsed();
            let after = snapshot(&self.cfg.rule_paths, config.as_deref());
            attempt += 1;
            if after.hash == snap.hash || attempt > MAX_UNSTABLE_RETRIES {
                break (result, load_time);
            }
            debug!("reload: files changed during the load, loading again");
            snap = after;
        };
        self.last_hash = snap.hash.clone();
        let event = match result {
            Ok(value) => {
                let value = Arc::new(value);
                let diff = (self.diff)(&value, &self.current);
                let previous_hash = std::mem::replace(&mut self.good_hash, snap.hash.clone());
                self.current = value.clone();
                info!(
                    ?cause,
                    hash = %short(&snap.hash),
                    previous = %short(&previous_hash),
                    files = snap.files.len(),
                    load_ms = load_time.as_secs_f64() * 1000.0,
                    "reload: loaded new content"
                );
                ReloadEvent::Reloaded(Reloaded {
                    value,
                    diff,
                    hash: snap.hash,
                    previous_hash,
                    files: snap.files,
                    load_time,
                    cause,
                })
            }
            Err(error) => {
                warn!(
                    ?cause,
                    hash = %short(&snap.hash),
                    kept = %short(&self.good_hash),
                    "reload: load failed, keeping the previous content"
                );
                ReloadEvent::Failed(ReloadFailed {
                    error,
                    hash: snap.hash,
                    kept_hash: self.good_hash.clone(),
                    files: snap.files,
                    load_time,
                    cause,
                })
            }
        };
        self.out.blocking_send(event).is_ok()
    }

    /// (Re)establishes the inotify watches: each rule directory, the parent of every rule
    /// path and of the config. A directory whose inode changed (replaced by `mv`, or a
    /// symlink now pointing elsewhere) is watched afresh; vanished ones are dropped and
    /// picked up again when they reappear (the periodic re-hash covers the gap).
    fn rewatch(&mut self) {
        let mut wanted: Vec<PathBuf> = Vec::new();
        for p in &self.cfg.rule_paths {
            if p.is_dir() {
                wanted.push(p.clone());
            }
            wanted.push(parent_dir(p));
        }
        if let Some(c) = &self.cfg.config_path {
            wanted.push(parent_dir(c));
        }
        wanted.sort();
        wanted.dedup();

        let stale: Vec<PathBuf> = self
            .watched
            .keys()
            .filter(|p| !wanted.contains(p))
            .cloned()
            .collect();
        for p in stale {
            let _ = self.inotify.unwatch(&p);
            self.watched.remove(&p);
        }
        for p in wanted {
            let id = match fs::metadata(&p) {
                Ok(m) if m.is_dir() => (m.dev(), m.ino()),
                _ => {
                    if self.watched.remove(&p).is_some() {
                        let _ = self.inotify.unwatch(&p);
                        debug!(path = %p.display(), "reload: watched directory vanished");
                    }
                    continue;
                }
            };
            match self.watched.get(&p) {
                Some(old) if *old == id => continue,
                Some(_) => {
                    let _ = self.inotify.unwatch(&p);
                }
                None => {}
            }
            match self.inotify.watch(&p, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    debug!(path = %p.display(), "reload: watching");
                    self.watched.insert(p, id);
                }
                Err(e) => {
                    warn!(path = %p.display(), "reload: cannot watch: {e}");
                    self.watched.remove(&p);
                }
            }
        }
    }
}

fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// The rule files the paths stand for, in load order: a file as given, a directory's
/// `*.yaml` / `*.yml` entries in name order (symlinks followed; names starting with `.` skipped).
pub fn list_rule_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(list_dir(p));
        } else {
            files.push(p.clone());
        }
    }
    files
}

fn list_dir(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    // Same selection as the engine's loader: UTF-8 names, no leading dot, *.yaml / *.yml.
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.') && (n.ends_with(".yaml") || n.ends_with(".yml")))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| dir.join(n))
        .filter(|p| fs::metadata(p).map(|m| m.is_file()).unwrap_or(false))
        .collect()
}

/// Lists and hashes the rule paths and the config. Never fails: an unreadable or missing
/// file hashes as its error kind, so the loader (not the watcher) reports it.
pub fn snapshot(rule_paths: &[PathBuf], config_path: Option<&Path>) -> Snapshot {
    let mut h = Sha256::new();
    let files = list_rule_files(rule_paths);
    for p in rule_paths {
        h.update(b"root\0");
        h.update(p.as_os_str().as_encoded_bytes());
        h.update(if p.is_dir() {
            &b"\0dir\0"[..]
        } else {
            &b"\0file\0"[..]
        });
    }
    for f in &files {
        hash_file(&mut h, b"rule\0", f);
    }
    if let Some(c) = config_path {
        hash_file(&mut h, b"config\0", c);
    }
    let hash = h
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    Snapshot { hash, files }
}

fn hash_file(h: &mut Sha256, tag: &[u8], path: &Path) {
    h.update(tag);
    h.update(path.as_os_str().as_encoded_bytes());
    h.update(b"\0");
    let mut buf = Vec::new();
    match fs::File::open(path).and_then(|mut f| f.read_to_end(&mut buf)) {
        Ok(n) => {
            h.update((n as u64).to_le_bytes());
            h.update(&buf);
        }
        Err(e) => {
            h.update(b"\xffERR:");
            h.update(format!("{:?}", e.kind()).as_bytes());
        }
    }
    h.update(b"\0");
}

// --- rule-set specifics: what the daemon logs and alerts on a reload ---------------------

/// Rule name of the alert raised when a reload fails.
pub const RELOAD_FAILED_RULE: &str = "vigil rule reload failed";

/// Logs a successful rule reload: content and rule-set hashes, what changed, load time.
pub fn log_reloaded(r: &Reloaded<RuleSet, RuleSetDiff>) {
    info!(
        cause = ?r.cause,
        rules_hash = r.value.hash(),
        content = %short(&r.hash),
        previous = %short(&r.previous_hash),
        added = ?r.diff.added,
        removed = ?r.diff.removed,
        changed = ?r.diff.changed,
        files = r.files.len(),
        load_ms = r.load_time.as_secs_f64() * 1000.0,
        "rules reloaded"
    );
}

/// Logs a failed rule reload, one line per error with its file, line and item.
pub fn log_failed(f: &ReloadFailed<LoadErrors>) {
    warn!(
        cause = ?f.cause,
        errors = f.error.0.len(),
        kept = %short(&f.kept_hash),
        "rules did not load; the previous rules stay in force"
    );
    for e in &f.error.0 {
        tracing::error!(
            file = %e.loc.file,
            line = e.loc.line,
            col = e.loc.col,
            item = e.item.as_deref().unwrap_or(""),
            "rule reload: {}",
            e.msg
        );
    }
}

/// The "vigil rule reload failed" alert for the sinks: priority Error, source
/// `internal`, every error (file, line, column, item, message) in
/// `output_fields["vigil.reload.errors"]`.
pub fn reload_failed_alert(hostname: Arc<str>, f: &ReloadFailed<LoadErrors>) -> Alert {
    use serde_json::{json, Map, Value};
    let errors: Vec<Value> = f
        .error
        .0
        .iter()
        .map(|e| {
            json!({
                "file": e.loc.file,
                "line": e.loc.line,
                "col": e.loc.col,
                "item": e.item,
                "msg": e.msg,
            })
        })
        .collect();
    let first = f.error.0.first().map(|e| e.to_string()).unwrap_or_default();
    let mut fields = Map::new();
    fields.insert("vigil.reload.errors".into(), Value::Array(errors));
    fields.insert("vigil.reload.error_count".into(), f.error.0.len().into());
    fields.insert("vigil.reload.hash".into(), f.hash.clone().into());
    fields.insert("vigil.reload.kept_hash".into(), f.kept_hash.clone().into());
    fields.insert("vigil.reload.cause".into(), format!("{:?}", f.cause).into());
    fields.insert(
        "vigil.reload.files".into(),
        f.files
            .iter()
            .map(|p| Value::String(p.display().to_string()))
            .collect::<Vec<_>>()
            .into(),
    );
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Alert {
        time,
        rule: Arc::from(RELOAD_FAILED_RULE),
        priority: Priority::Error,
        output: format!(
            "vigil rule reload failed ({} error(s)); the previous rules stay in force. First: {first}",
            f.error.0.len()
        ),
        output_fields: fields,
        tags: Arc::from(vec!["vigil".to_string(), "reload".to_string()]),
        source: "internal",
        hostname,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn listing_skips_dot_names_and_non_yaml_and_follows_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("..2026_11_25_1");
        fs::create_dir(&data).unwrap();
        fs::write(data.join("b.yaml"), "b").unwrap();
        symlink("..2026_11_25_1", d.path().join("..data")).unwrap();
        symlink("..data/b.yaml", d.path().join("b.yaml")).unwrap();
        fs::write(d.path().join("a.yaml"), "a").unwrap();
        fs::write(d.path().join(".hidden.yaml"), "h").unwrap();
        fs::write(d.path().join("notes.txt"), "n").unwrap();
        fs::write(d.path().join("c.yaml.swp"), "s").unwrap();
        fs::write(d.path().join("c.yml"), "c").unwrap();
        symlink("missing.yaml", d.path().join("dangling.yaml")).unwrap();
        let files = list_rule_files(&[d.path().to_path_buf()]);
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["a.yaml", "b.yaml", "c.yml"]);
    }

    #[test]
    fn hash_changes_with_content_and_name_not_with_rewrite() {
        let d = tempfile::tempdir().unwrap();
        let paths = vec![d.path().to_path_buf()];
        fs::write(d.path().join("a.yaml"), "one").unwrap();
        let s1 = snapshot(&paths, None);
        fs::write(d.path().join("a.yaml"), "one").unwrap();
        assert_eq!(s1, snapshot(&paths, None), "identical rewrite");
        fs::write(d.path().join("a.yaml"), "two").unwrap();
        let s2 = snapshot(&paths, None);
        assert_ne!(s1.hash, s2.hash, "content change");
        fs::rename(d.path().join("a.yaml"), d.path().join("b.yaml")).unwrap();
        let s3 = snapshot(&paths, None);
        assert_ne!(s2.hash, s3.hash, "rename changes load order / names");
        let cfg = d.path().join("vigil.yaml.conf");
        fs::write(&cfg, "x: 1").unwrap();
        let s4 = snapshot(&paths, Some(&cfg));
        assert_ne!(s3.hash, s4.hash, "config is part of the hash");
        fs::write(&cfg, "x: 2").unwrap();
        assert_ne!(s4.hash, snapshot(&paths, Some(&cfg)).hash);
    }

    #[test]
    fn missing_paths_hash_without_error_and_differ_from_empty() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("rules.yaml");
        let missing = snapshot(std::slice::from_ref(&f), None);
        fs::write(&f, "").unwrap();
        let empty = snapshot(std::slice::from_ref(&f), None);
        assert_ne!(missing.hash, empty.hash);
        assert_eq!(empty.files, vec![f]);
    }

    #[test]
    fn parent_of_relative_file_is_cwd() {
        assert_eq!(parent_dir(Path::new("rules.yaml")), PathBuf::from("."));
        assert_eq!(
            parent_dir(Path::new("/etc/vigil/x.yaml")),
            PathBuf::from("/etc/vigil")
        );
    }
}
