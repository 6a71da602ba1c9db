//! Hot reload: watches the rule paths and the config file, decides when their
//! content really changed (SHA-256 over a re-listed snapshot) and reloads them
//! with a caller-supplied `load` closure on a dedicated thread, off the event
//! path. Results (new value + diff + timing, or the error with the old value
//! kept) go to the caller over a tokio channel.
//!
//! What counts as a change: a debounced filesystem event in a watched
//! directory (each rule directory non-recursively, the parent directory of each
//! rule path and of the config file) on a name that can matter (see
//! [`Relevant`]), an explicit [`ReloadHandle::trigger`] (SIGHUP; always
//! reloads) and a slow periodic re-hash as a safety net. Every "maybe changed"
//! re-lists `*.yaml`/`*.yml` (following symlinks, skipping names that start
//! with `.` such as Kubernetes' `..data`) and hashes names, contents, owners and
//! modes, so editors that save by rename, `mv`, atomically swapped symlinked
//! directories (ConfigMap `..data` swaps) and a `chmod`/`chown` are all seen,
//! and a touch or an identical rewrite reloads nothing.
//!
//! The watcher never watches itself: events on other names (a log file, an
//! alert output file, an editor's swap file, even vigil's own stderr
//! redirected into a rules directory) are dropped in the inotify callback
//! without waking the reload thread and without a log line per event (only a
//! rate-limited debug summary), so vigil's own writes cannot feed a loop.
//! Requests are coalesced flags, not a queue: a flood of events costs no
//! memory and never delays a stop.
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
//! //              evaluator.swap_rules(r.value.clone()); reload::log_reloaded(&r, old_hash)
//! //            Failed(f)   -> reload::log_failed(&f);
//! //              router.submit(Arc::new(reload::reload_failed_alert(host.clone(), &f)))
//! ```
//!
//! Why one file past ~800 lines (about 850 of code, the rest unit tests):
//! the relevance filter, the coalescing inbox, the worker's
//! hash-compare-load loop and the snapshot it hashes keep one set of
//! invariants about what counts as a change, and are read together; the
//! loader and the diff are the caller's (`crate::daemon`).

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
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
/// At most one log line per this interval about ignored events or watcher errors.
const EVENT_LOG_INTERVAL: Duration = Duration::from_secs(10);

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

/// What has been asked of the worker since it last looked: flags, so any number of
/// requests costs nothing and a stop is never queued behind them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Pending {
    files: bool,
    rescan: bool,
    trigger: bool,
    stop: bool,
}

impl Pending {
    fn is_empty(&self) -> bool {
        *self == Pending::default()
    }
}

#[derive(Default)]
struct InboxState {
    pending: Pending,
    /// The worker has exited: requests go nowhere.
    closed: bool,
}

/// The worker's mailbox: the pending flags and a condition variable to wake it.
#[derive(Default)]
struct Inbox {
    state: Mutex<InboxState>,
    wake: Condvar,
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, InboxState> {
        // A panic elsewhere while holding the lock leaves plain flags: still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets flags and wakes the worker. Returns false once the worker has exited.
    fn post(&self, set: impl FnOnce(&mut Pending)) -> bool {
        let mut g = self.lock();
        set(&mut g.pending);
        self.wake.notify_one();
        !g.closed
    }

    /// Waits up to `timeout` for a request; returns (and clears) what is pending,
    /// empty on timeout.
    fn wait(&self, timeout: Duration) -> Pending {
        let deadline = Instant::now() + timeout;
        let mut g = self.lock();
        loop {
            if !g.pending.is_empty() {
                return std::mem::take(&mut g.pending);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Pending::default();
            }
            g = self
                .wake
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn close(&self) {
        self.lock().closed = true;
    }
}

/// Where the caller receives reload reports.
pub type ReloadReceiver<T, E, D> = tokio_mpsc::Receiver<ReloadEvent<T, E, D>>;

/// A cheap, cloneable way to ask the watcher for a reload (e.g. from the SIGHUP handler).
#[derive(Clone)]
pub struct ReloadHandle {
    inbox: Arc<Inbox>,
}

impl ReloadHandle {
    /// Reload now, even if the content hash is unchanged. Returns false if the watcher has stopped.
    pub fn trigger(&self) -> bool {
        self.inbox.post(|p| p.trigger = true)
    }

    /// Re-hash now and reload only if the content changed (e.g. after logrotate's SIGHUP,
    /// where a forced reload would only reset rule state). Returns false if stopped.
    pub fn rescan(&self) -> bool {
        self.inbox.post(|p| p.rescan = true)
    }
}

/// Which filesystem events can change what the watcher hashes: those on a name a
/// rule path, the config or a watched directory has, on a rule file name
/// (`*.yaml`/`*.yml`, see [`vigil_engine::rules::is_rule_file_name`]), on a
/// `..`-prefixed name (a ConfigMap `..data` swap), and those without a usable name
/// (a watched directory's own events, queue overflow). Everything else (logs,
/// alert files, swap files, vigil's own stderr) is ignored.
#[derive(Debug, Clone, Default)]
pub struct Relevant {
    names: HashSet<OsString>,
}

impl Relevant {
    pub fn new(cfg: &WatchConfig) -> Relevant {
        let mut names = HashSet::new();
        let mut add = |p: &Path| {
            let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
            if let Some(n) = abs.file_name() {
                names.insert(n.to_os_string());
            }
        };
        for p in &cfg.rule_paths {
            add(p);
            add(&parent_dir(p));
        }
        if let Some(c) = &cfg.config_path {
            add(c);
            add(&parent_dir(c));
        }
        Relevant { names }
    }

    /// Whether `event` may change the rules or the config.
    pub fn matches(&self, event: &notify::Event) -> bool {
        event.need_rescan()
            || event.paths.is_empty()
            || event.paths.iter().any(|p| self.path_matches(p))
    }

    fn path_matches(&self, p: &Path) -> bool {
        let Some(name) = p.file_name() else {
            return true;
        };
        self.names.contains(name)
            || name.as_bytes().starts_with(b"..")
            || name
                .to_str()
                .is_some_and(vigil_engine::rules::is_rule_file_name)
    }
}

/// Lets one log line through per interval and counts the occurrences in between.
#[derive(Debug)]
struct RateLimit {
    every: Duration,
    last: Option<Instant>,
    count: u64,
}

impl RateLimit {
    fn new(every: Duration) -> RateLimit {
        RateLimit {
            every,
            last: None,
            count: 0,
        }
    }

    /// Counts one occurrence; `Some(n)` (occurrences since the last line, this one
    /// included) when a line may be logged now.
    fn hit(&mut self, now: Instant) -> Option<u64> {
        self.count += 1;
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < self.every)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

/// The running watcher. Dropping it stops the thread (without waiting).
pub struct Watcher {
    inbox: Arc<Inbox>,
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
        let inbox = Arc::new(Inbox::default());
        let fs_inbox = inbox.clone();
        let relevant = Relevant::new(&cfg);
        let mut ignored = RateLimit::new(EVENT_LOG_INTERVAL);
        let mut errors = RateLimit::new(EVENT_LOG_INTERVAL);
        // Runs for every raw event: no log line per event (a log file in a watched
        // directory would feed itself), only the rate-limited summaries.
        let inotify = notify::RecommendedWatcher::new(
            move |res: notify::Result<notify::Event>| match res {
                Ok(event) if relevant.matches(&event) => {
                    fs_inbox.post(|p| p.files = true);
                }
                Ok(event) => {
                    if let Some(n) = ignored.hit(Instant::now()) {
                        debug!(
                            events = n,
                            last = ?event.paths,
                            "reload: ignored filesystem events on files that are not rules or config"
                        );
                    }
                }
                Err(e) => {
                    if let Some(n) = errors.hit(Instant::now()) {
                        warn!(errors = n, "reload: file watcher error (re-hashing): {e}");
                    }
                    fs_inbox.post(|p| p.files = true);
                }
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
        let worker_inbox = inbox.clone();
        let thread = std::thread::Builder::new()
            .name("vigil-reload".into())
            .spawn(move || {
                worker.run(&worker_inbox, changed_since_load);
                worker_inbox.close();
            })
            .map_err(WatchError::Thread)?;
        Ok((
            Watcher {
                inbox,
                thread: Some(thread),
            },
            out_rx,
        ))
    }

    /// Reload now, even if nothing changed (SIGHUP).
    pub fn trigger(&self) -> bool {
        self.inbox.post(|p| p.trigger = true)
    }

    /// Re-hash now; reload only if the content changed.
    pub fn rescan(&self) -> bool {
        self.inbox.post(|p| p.rescan = true)
    }

    /// A cloneable trigger for other tasks.
    pub fn handle(&self) -> ReloadHandle {
        ReloadHandle {
            inbox: self.inbox.clone(),
        }
    }

    /// Stops the watcher and waits for a load in progress to finish.
    pub fn stop(mut self) {
        self.inbox.post(|p| p.stop = true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Stops the watcher, waiting at most `timeout` for a load in progress (the
    /// daemon's shutdown must not hang on a slow rule set). Returns false when the
    /// thread was still busy and was left to finish on its own.
    pub fn stop_within(mut self, timeout: Duration) -> bool {
        self.inbox.post(|p| p.stop = true);
        let Some(t) = self.thread.take() else {
            return true;
        };
        let deadline = Instant::now() + timeout;
        while !t.is_finished() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = t.join();
        true
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.inbox.post(|p| p.stop = true);
    }
}

struct Worker<T, E, D, L, Df> {
    cfg: WatchConfig,
    /// Change-only inotify watches (see the module doc); relevant events set the `files` flag.
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
    fn run(mut self, inbox: &Inbox, changed_since_load: bool) {
        let mut next = changed_since_load.then_some(Cause::Startup);
        loop {
            let mut cause = match next.take() {
                Some(c) => c,
                None => {
                    let p = inbox.wait(self.cfg.rehash_interval);
                    if p.stop {
                        return;
                    } else if p.trigger {
                        Cause::Trigger
                    } else if p.files {
                        Cause::Files
                    } else if p.rescan {
                        Cause::Rescan
                    } else {
                        Cause::Periodic
                    }
                }
            };
            // Debounce filesystem events: wait until they stay quiet for one window
            // (an editor's save is several events), then coalesce whatever else
            // came meanwhile into this round.
            if cause == Cause::Files && !self.settle(inbox, &mut cause) {
                return;
            }
            let p = inbox.wait(Duration::ZERO);
            if p.stop {
                return;
            }
            if p.trigger {
                cause = Cause::Trigger;
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
    fn settle(&self, inbox: &Inbox, cause: &mut Cause) -> bool {
        let deadline = Instant::now() + self.cfg.debounce * MAX_DEBOUNCE_WINDOWS;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            let p = inbox.wait(self.cfg.debounce.min(left));
            if p.stop {
                return false;
            }
            if p.trigger {
                *cause = Cause::Trigger;
                return true;
            }
            if p.is_empty() {
                return true;
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
                    content = %short(&snap.hash),
                    previous = %short(&previous_hash),
                    files = snap.files.len(),
                    load_ms = %millis(load_time),
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
                    content = %short(&snap.hash),
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

pub fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// The rule files the paths stand for, in load order: a file as given, a directory's
/// `*.yaml` / `*.yml` entries in name order (symlinks followed; names starting with `.` skipped).
/// The engine's own listing, quietly: the loader warns about what it skips (a symlink
/// loop), once per load rather than once per re-hash.
pub fn list_rule_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(
                vigil_engine::rules::list_dir_report(p, &mut |_, _| {}).unwrap_or_default(),
            );
        } else {
            files.push(p.clone());
        }
    }
    files
}

/// Lists and hashes the rule paths and the config. Never fails: an unreadable or missing
/// file hashes as its error kind, so the loader (not the watcher) reports it.
pub fn snapshot(rule_paths: &[PathBuf], config_path: Option<&Path>) -> Snapshot {
    let mut h = Sha256::new();
    let files = list_rule_files(rule_paths);
    for p in rule_paths {
        h.update(b"root\0");
        h.update(p.as_os_str().as_encoded_bytes());
        if p.is_dir() {
            h.update(b"\0dir\0");
            hash_owner_mode(&mut h, p);
        } else {
            h.update(b"\0file\0");
        }
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

/// Owner, group and mode (symlinks followed): who may change the file is part of
/// what was loaded, so a `chmod`/`chown` is a change (the permission check runs again).
fn hash_owner_mode(h: &mut Sha256, path: &Path) {
    if let Ok(m) = fs::metadata(path) {
        h.update(m.uid().to_le_bytes());
        h.update(m.gid().to_le_bytes());
        h.update(m.mode().to_le_bytes());
    }
}

fn hash_file(h: &mut Sha256, tag: &[u8], path: &Path) {
    h.update(tag);
    h.update(path.as_os_str().as_encoded_bytes());
    h.update(b"\0");
    hash_owner_mode(h, path);
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

/// A load time in milliseconds with one decimal (`9.7`), for the logs.
pub fn millis(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// Logs a successful rule reload: content and rule-set hashes, what changed,
/// load time. A round that changed no rule (a config-only edit: the watcher
/// hashes the config too) is logged at debug only.
pub fn log_reloaded(r: &Reloaded<RuleSet, RuleSetDiff>, old_rules_hash: &str) {
    if r.diff.is_empty() && r.value.hash() == old_rules_hash {
        tracing::debug!(content = %short(&r.hash), "reload: no rule changed");
        return;
    }
    info!(
        cause = ?r.cause,
        rules_hash = r.value.hash(),
        content = %short(&r.hash),
        previous = %short(&r.previous_hash),
        added = ?r.diff.added,
        removed = ?r.diff.removed,
        changed = ?r.diff.changed,
        files = r.files.len(),
        load_ms = %millis(r.load_time),
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
    fn chmod_and_chown_change_the_hash() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let paths = vec![d.path().to_path_buf()];
        let f = d.path().join("a.yaml");
        fs::write(&f, "one").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        let s1 = snapshot(&paths, None);
        fs::set_permissions(&f, fs::Permissions::from_mode(0o666)).unwrap();
        let s2 = snapshot(&paths, None);
        assert_ne!(s1.hash, s2.hash, "file mode");
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o777)).unwrap();
        assert_ne!(s2.hash, snapshot(&paths, None).hash, "rule directory mode");
    }

    fn event(paths: &[&str]) -> notify::Event {
        let mut e = notify::Event::new(notify::EventKind::Modify(notify::event::ModifyKind::Any));
        for p in paths {
            e = e.add_path(PathBuf::from(p));
        }
        e
    }

    #[test]
    fn only_events_on_rule_and_config_names_are_relevant() {
        let cfg = WatchConfig::new(
            vec![
                PathBuf::from("/etc/vigil/rules.d"),
                PathBuf::from("/srv/local-rules"),
            ],
            Some(PathBuf::from("/etc/vigil/vigil.conf")),
        );
        let r = Relevant::new(&cfg);
        for p in [
            "/etc/vigil/rules.d/a.yaml",
            "/etc/vigil/rules.d/b.yml",
            "/etc/vigil/rules.d/..data",
            "/etc/vigil/rules.d/..data_tmp",
            "/etc/vigil/vigil.conf",
            "/etc/vigil/rules.d",
            "/srv/local-rules",
            "/etc/vigil",
        ] {
            assert!(r.matches(&event(&[p])), "{p} is relevant");
        }
        for p in [
            "/etc/vigil/rules.d/vigil.log",
            "/etc/vigil/rules.d/.a.yaml.swp",
            "/etc/vigil/rules.d/4913",
            "/etc/vigil/alerts.jsonl",
            "/srv/out.txt",
        ] {
            assert!(!r.matches(&event(&[p])), "{p} is not relevant");
        }
        // A rename reports both names: relevant if either is.
        assert!(r.matches(&event(&[
            "/etc/vigil/rules.d/.a.yaml.swp",
            "/etc/vigil/rules.d/a.yaml"
        ])));
        // No path, or an overflow: re-hash to be safe.
        assert!(r.matches(&event(&[])));
        let overflow =
            event(&["/etc/vigil/rules.d/vigil.log"]).set_flag(notify::event::Flag::Rescan);
        assert!(r.matches(&overflow));
    }

    #[test]
    fn rate_limit_lets_one_line_per_interval_and_counts_the_rest() {
        let mut rl = RateLimit::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(rl.hit(t0), Some(1));
        for i in 1..1000 {
            assert_eq!(rl.hit(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(rl.hit(t0 + Duration::from_secs(10)), Some(1000));
        assert_eq!(rl.hit(t0 + Duration::from_secs(11)), None);
    }

    #[test]
    fn requests_coalesce_and_stop_is_never_behind_them() {
        let inbox = Inbox::default();
        for _ in 0..100_000 {
            inbox.post(|p| p.files = true);
        }
        inbox.post(|p| p.stop = true);
        let p = inbox.wait(Duration::ZERO);
        assert!(p.files && p.stop && !p.trigger);
        assert!(inbox.wait(Duration::ZERO).is_empty(), "taken once");
        assert!(
            inbox.post(|p| p.trigger = true),
            "open until the worker exits"
        );
        inbox.close();
        assert!(!inbox.post(|p| p.trigger = true));
    }

    #[test]
    fn stop_within_does_not_wait_for_a_load_in_progress() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("a.yaml"), "1").unwrap();
        let paths = vec![d.path().to_path_buf()];
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let (w, _rx) = Watcher::spawn(
            WatchConfig::new(paths.clone(), None),
            Arc::new(0u32),
            snapshot(&paths, None).hash,
            move |_: &[PathBuf]| -> Result<u32, String> {
                let _ = started_tx.send(());
                // Blocks until the test lets go (a slow rule set).
                let _ = release_rx.lock().map(|r| r.recv());
                Ok(1)
            },
            |_: &u32, _: &u32| (),
        )
        .unwrap();
        assert!(w.trigger());
        started_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the load started");
        assert!(
            !w.stop_within(Duration::from_millis(50)),
            "reports the busy thread instead of waiting for it"
        );
        drop(release_tx);

        let (w, _rx) = Watcher::spawn(
            WatchConfig::new(paths.clone(), None),
            Arc::new(0u32),
            snapshot(&paths, None).hash,
            |_: &[PathBuf]| -> Result<u32, String> { Ok(1) },
            |_: &u32, _: &u32| (),
        )
        .unwrap();
        assert!(
            w.stop_within(Duration::from_secs(30)),
            "an idle watcher stops"
        );
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
