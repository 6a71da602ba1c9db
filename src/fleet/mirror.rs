//! The daemon side of the fleet: [`Fleet`] mirrors the `nats-kv://` source
//! bucket into a local directory (see the parent module) and writes the
//! host's status entry. It runs on its own thread with its own small tokio
//! runtime, so the daemon's start-up order and event loop are untouched;
//! the daemon only tells it what it loaded (`loaded`, `reload_failed`,
//! `set_drops`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, kv};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{oneshot, Notify};
use vigil_engine::{LoadErrors, RuleSet};
use vigil_sinks::nats_config::NatsConnection;

use super::{
    content_hash, now_secs, read_dir_files, status_key, HostStatus, KvSource, LastReload,
    PushMarker, PUSH_KEY, STATUS_EVERY,
};

/// Debounce after a bucket change (a push is several writes).
const SETTLE: Duration = Duration::from_millis(200);
/// Safety net beside the watch (one that silently stopped, a missed
/// entry): this often the bucket's last sequence is read, and the bucket
/// re-read when it moved.
const SEQ_CHECK_EVERY: Duration = Duration::from_secs(2);
/// While a push is being written, look again after this long.
const HOLD_RECHECK: Duration = Duration::from_secs(2);

/// State shared between the daemon and the mirror thread.
struct Shared {
    status: Mutex<HostStatus>,
    changed: Notify,
    /// `DIR/current`: the rule path the daemon loads.
    current: PathBuf,
    source: KvSource,
}

/// The running mirror and status writer. Dropping it stops the thread.
pub struct Fleet {
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Fleet {
    /// When `rule_paths` hold a `nats-kv://` source: connects through
    /// `nats`, fetches the bucket into a local directory (waiting for a push
    /// in progress to finish), starts the mirror thread and replaces the
    /// source in `rule_paths` by that directory. None without such a source.
    pub fn attach(
        rule_paths: &mut [PathBuf],
        nats: Option<&NatsConnection>,
        hostname: &str,
    ) -> anyhow::Result<Option<Fleet>> {
        let Some((index, source)) = super::kv_source(rule_paths)? else {
            return Ok(None);
        };
        let conn = nats.with_context(|| {
            format!(
                "rules: {} needs the top-level `nats:` block in the config file",
                source.url()
            )
        })?;
        // Credentials and TLS files are checked now, with a clear error.
        conn.options("vigil")?;
        let dir = tempfile::Builder::new()
            .prefix("vigil-fleet-")
            .tempdir()
            .context("creating the fleet rules directory")?;
        let shared = Arc::new(Shared {
            status: Mutex::new(HostStatus {
                hostname: hostname.to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                source: source.url(),
                ..HostStatus::default()
            }),
            changed: Notify::new(),
            current: dir.path().join("current"),
            source: source.clone(),
        });
        let (init_tx, init_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = Task {
            conn: conn.clone(),
            shared: shared.clone(),
            mirror: Mirror {
                dir: dir.path().to_path_buf(),
                rev: 0,
                applied: None,
            },
        };
        let thread = std::thread::Builder::new()
            .name("vigil-fleet".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = init_tx.send(Err(anyhow::anyhow!("fleet runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(task.run(init_tx, stop_rx));
            })
            .context("starting the fleet thread")?;
        // The thread bounds its own wait; this one only guards against a hang.
        let wait = conn.connect_timeout * 4 + Duration::from_secs(5);
        match init_rx.recv_timeout(wait) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => anyhow::bail!("rules: {}: no answer from NATS", source.url()),
        }
        rule_paths[index] = shared.current.clone();
        tracing::info!(source = %source.url(), dir = %shared.current.display(), "fleet: rules mirrored from NATS KV");
        Ok(Some(Fleet {
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
            _dir: dir,
        }))
    }

    /// The daemon loaded a rule set (at start or a reload).
    pub fn loaded(&self, rules: &RuleSet, event_kinds: Vec<String>) {
        let hash = content_hash(&read_dir_files(&self.shared.current));
        self.update(|s| {
            s.fleet_hash = hash.clone();
            s.rules_hash = rules.hash().to_string();
            s.rule_count = rules.rules().filter(|r| r.enabled).count();
            s.event_kinds = event_kinds;
            s.last_reload = Some(LastReload {
                time: now_secs(),
                ok: true,
                error: None,
                fleet_hash: hash,
            });
        });
    }

    /// A reload failed; the previous rules stay in force.
    pub fn reload_failed(&self, errors: &LoadErrors) {
        let tried = content_hash(&read_dir_files(&self.shared.current));
        let first = errors
            .0
            .first()
            .map(|e| e.to_string())
            .unwrap_or_default()
            // Name the key, not the local mirror path.
            .replace(
                &format!("{}/", self.shared.current.display()),
                &format!("{}/", self.shared.source.url()),
            );
        let error = format!("{} error(s); first: {first}", errors.0.len());
        self.update(|s| {
            s.last_reload = Some(LastReload {
                time: now_secs(),
                ok: false,
                error: Some(error),
                fleet_hash: tried,
            });
        });
    }

    /// Loss counters since start (written with the next heartbeat).
    pub fn set_drops(&self, events: u64, alerts: u64) {
        if let Ok(mut s) = self.shared.status.lock() {
            s.events_dropped = events;
            s.alerts_dropped = alerts;
        }
    }

    fn update(&self, f: impl FnOnce(&mut HostStatus)) {
        if let Ok(mut s) = self.shared.status.lock() {
            f(&mut s);
        }
        self.shared.changed.notify_one();
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The local copy: `DIR/rev-N/` directories and the `DIR/current` symlink.
struct Mirror {
    dir: PathBuf,
    rev: u64,
    /// Content hash of the revision `current` points at.
    applied: Option<String>,
}

impl Mirror {
    /// Makes `current` hold exactly `files` (one atomic symlink swap).
    /// False when it already does.
    fn apply(&mut self, files: &BTreeMap<String, Vec<u8>>) -> std::io::Result<bool> {
        let hash = content_hash(files);
        if self.applied.as_deref() == Some(hash.as_str()) {
            return Ok(false);
        }
        self.rev += 1;
        let name = format!("rev-{}", self.rev);
        let rev_dir = self.dir.join(&name);
        std::fs::create_dir(&rev_dir)?;
        for (file, text) in files {
            std::fs::write(rev_dir.join(file), text)?;
        }
        let tmp = self.dir.join(".current.tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&name, &tmp)?;
        std::fs::rename(&tmp, self.dir.join("current"))?;
        // Keep the previous revision: a load in progress may still read it.
        if self.rev > 2 {
            let _ = std::fs::remove_dir_all(self.dir.join(format!("rev-{}", self.rev - 2)));
        }
        self.applied = Some(hash);
        Ok(true)
    }
}

/// Reads the source's rule files; None while a push is being written.
async fn read_source(
    store: &kv::Store,
    src: &KvSource,
) -> anyhow::Result<Option<BTreeMap<String, Vec<u8>>>> {
    if let Some(m) = store.get(src.key(PUSH_KEY)).await? {
        match serde_json::from_slice::<PushMarker>(&m) {
            Ok(marker) if marker.holds(now_secs()) => return Ok(None),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(source = %src.url(), "fleet: unreadable push marker ignored: {e}")
            }
        }
    }
    let mut keys = store.keys().await?;
    let mut names = Vec::new();
    while let Some(k) = keys.next().await {
        let k = k?;
        if let Some(n) = src.name_of(&k) {
            names.push(n.to_string());
        }
    }
    let mut files = BTreeMap::new();
    for n in names {
        // A key deleted meanwhile is simply not part of this revision.
        if let Some(v) = store.get(src.key(&n)).await? {
            files.insert(n, v.to_vec());
        }
    }
    Ok(Some(files))
}

struct Task {
    conn: NatsConnection,
    shared: Arc<Shared>,
    mirror: Mirror,
}

impl Task {
    async fn run(
        mut self,
        init: std::sync::mpsc::Sender<anyhow::Result<()>>,
        mut stop: oneshot::Receiver<()>,
    ) {
        let url = self.shared.source.url();
        let first = tokio::time::timeout(self.conn.connect_timeout * 3, self.initial()).await;
        let (js, store) = match first {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                let _ = init.send(Err(e.context(format!("rules: {url}"))));
                return;
            }
            Err(_) => {
                let _ = init.send(Err(anyhow::anyhow!(
                    "rules: {url}: cannot read the bucket within {:?} (servers: {})",
                    self.conn.connect_timeout * 3,
                    self.conn.servers.join(", ")
                )));
                return;
            }
        };
        let _ = init.send(Ok(()));
        let host = self
            .shared
            .status
            .lock()
            .map(|s| s.hostname.clone())
            .unwrap_or_default();
        let status_bucket = self.conn.status_bucket.clone();
        let mut status_store: Option<kv::Store> = None;
        let mut watch = store.watch_all().await.ok();
        let mut seq_check = tokio::time::interval(SEQ_CHECK_EVERY);
        let kv_stream = format!("KV_{}", self.shared.source.bucket);
        // Sequence the last successful read saw (0: read at the next check).
        let mut synced_seq = 0u64;
        let mut heartbeat = tokio::time::interval(STATUS_EVERY);
        let mut hold: Option<tokio::time::Instant> = None;
        loop {
            let sync = tokio::select! {
                _ = &mut stop => break,
                ev = next_change(&mut watch) => {
                    if !ev {
                        // The watch ended (connection lost for long): open a new one.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        watch = store.watch_all().await.ok();
                    }
                    // Settle: a push is several writes.
                    tokio::time::sleep(SETTLE).await;
                    if let Some(w) = watch.as_mut() {
                        while let Some(Some(_)) = w.next().now_or_never() {}
                    }
                    true
                }
                _ = seq_check.tick() => {
                    match last_seq(&js, &kv_stream).await {
                        Some(seq) => seq != synced_seq,
                        None => false,
                    }
                }
                _ = sleep_until_opt(hold) => true,
                _ = heartbeat.tick() => {
                    write_status(&js, &mut status_store, &status_bucket, &host, &self.shared).await;
                    false
                }
                _ = self.shared.changed.notified() => {
                    write_status(&js, &mut status_store, &status_bucket, &host, &self.shared).await;
                    false
                }
            };
            if sync {
                hold = None;
                let seq = last_seq(&js, &kv_stream).await;
                match read_source(&store, &self.shared.source).await {
                    Ok(Some(files)) => match self.mirror.apply(&files) {
                        Ok(true) => {
                            synced_seq = seq.unwrap_or(0);
                            tracing::info!(source = %url, files = files.len(), hash = %content_hash(&files), "fleet: new rule revision")
                        }
                        Ok(false) => synced_seq = seq.unwrap_or(0),
                        Err(e) => {
                            tracing::error!(source = %url, "fleet: writing the rules directory: {e}")
                        }
                    },
                    Ok(None) => {
                        tracing::debug!(source = %url, "fleet: a push is being written, waiting");
                        hold = Some(tokio::time::Instant::now() + HOLD_RECHECK);
                    }
                    Err(e) => tracing::warn!(source = %url, "fleet: reading the bucket: {e:#}"),
                }
            }
        }
    }

    /// Connects, opens the bucket and writes the first revision (waiting
    /// for a push in progress).
    async fn initial(&mut self) -> anyhow::Result<(jetstream::Context, kv::Store)> {
        let client = self.conn.connect("vigil fleet").await?;
        let js = jetstream::new(client);
        let store = js
            .get_key_value(&self.shared.source.bucket)
            .await
            .with_context(|| format!("opening KV bucket `{}`", self.shared.source.bucket))?;
        loop {
            if let Some(files) = read_source(&store, &self.shared.source).await? {
                self.mirror.apply(&files)?;
                return Ok((js, store));
            }
            tokio::time::sleep(HOLD_RECHECK).await;
        }
    }
}

/// The last sequence of the bucket's stream (None when unreachable).
async fn last_seq(js: &jetstream::Context, stream: &str) -> Option<u64> {
    let s = js.get_stream_no_info(stream).await.ok()?;
    Some(s.get_info().await.ok()?.state.last_sequence)
}

/// Waits for the next entry of the watch; false when it ended (or none).
async fn next_change(w: &mut Option<kv::Watch>) -> bool {
    match w {
        Some(w) => matches!(w.next().await, Some(Ok(_))),
        None => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            false
        }
    }
}

async fn sleep_until_opt(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Writes the host's status entry, opening (or creating) the bucket first.
async fn write_status(
    js: &jetstream::Context,
    store: &mut Option<kv::Store>,
    bucket: &str,
    host: &str,
    shared: &Shared,
) {
    if store.is_none() {
        match super::open_or_create_bucket(js, bucket, 1).await {
            Ok(s) => *store = Some(s),
            Err(e) => {
                tracing::warn!(bucket, "fleet: status bucket unavailable: {e:#}");
                return;
            }
        }
    }
    let Some(s) = store.as_ref() else { return };
    let body = match shared.status.lock() {
        Ok(mut st) => {
            st.updated = now_secs();
            serde_json::to_vec(&*st).unwrap_or_default()
        }
        Err(_) => return,
    };
    if let Err(e) = s.put(status_key(host), body.into()).await {
        tracing::warn!(bucket, "fleet: writing the status entry: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_swaps_whole_revisions_and_keeps_the_previous_one() {
        let d = tempfile::tempdir().unwrap();
        let mut m = Mirror {
            dir: d.path().to_path_buf(),
            rev: 0,
            applied: None,
        };
        let mut files = BTreeMap::new();
        files.insert("a.yaml".to_string(), b"one".to_vec());
        files.insert("b.yaml".to_string(), b"two".to_vec());
        assert!(m.apply(&files).unwrap());
        assert!(!m.apply(&files).unwrap(), "same content: nothing to do");
        let cur = d.path().join("current");
        assert_eq!(read_dir_files(&cur), files);
        files.remove("a.yaml");
        files.insert("c.yaml".to_string(), b"three".to_vec());
        assert!(m.apply(&files).unwrap());
        assert_eq!(read_dir_files(&cur), files, "a.yaml gone with its revision");
        assert_eq!(std::fs::read_link(&cur).unwrap(), PathBuf::from("rev-2"));
        files.insert("d.yaml".to_string(), b"four".to_vec());
        assert!(m.apply(&files).unwrap());
        assert!(d.path().join("rev-2").is_dir(), "previous revision kept");
        assert!(!d.path().join("rev-1").exists(), "older ones removed");
        assert!(!d.path().join(".current.tmp").exists());
    }
}
