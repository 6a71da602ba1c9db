//! The fleet on NATS JetStream: rule sets from a KV bucket and host status.
//!
//! A rules source `nats-kv://BUCKET[/PREFIX]` (in `rules:` or `--rules`)
//! names a KV bucket whose keys `PREFIX/NAME.yaml` (or `NAME.yaml` without a
//! prefix) are rule files. The daemon does not load from NATS directly: a
//! [`mirror`] thread keeps a local directory equal to the bucket and the
//! daemon's rule path points at it (`DIR/current`, a symlink swapped
//! atomically to a fresh `rev-N` directory for each change). The file
//! watcher of `crate::reload` then sees one change and reloads it like any
//! rule directory: gapless, a broken set rejected whole, the last good one
//! kept, the reload-failed alert raised.
//!
//! `vigil fleet push` writes a revision as: the `_push` marker in state
//! `writing`, the files, deletes of files no longer in it, then the marker in
//! state `done` carrying the revision's [`content_hash`]. Hosts hold back
//! while a push is `writing` (for at most [`PUSH_STALE_SECS`]), so they never
//! load half a push; a key written directly applies at once.
//!
//! Each host writes its [`HostStatus`] to a KV bucket (`vigil-status` by
//! default, key = host name) after every load or reload and every
//! [`STATUS_EVERY`]; `vigil fleet status` (the binary's `commands::fleet`)
//! shows them side by side with the latest push.

mod mirror;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use mirror::Fleet;

/// The rules-source scheme.
pub const SCHEME: &str = "nats-kv://";
/// Key (under the prefix) of the push marker.
pub const PUSH_KEY: &str = "_push";
/// A push marker in state `writing` older than this is ignored (the pusher died).
pub const PUSH_STALE_SECS: u64 = 60;
/// Status heartbeat: `fleet status` shows how long ago a host last wrote.
pub const STATUS_EVERY: Duration = Duration::from_secs(10);

/// A `nats-kv://BUCKET[/PREFIX]` rules source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvSource {
    pub bucket: String,
    pub prefix: Option<String>,
}

fn bucket_ok(b: &str) -> bool {
    !b.is_empty()
        && b.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Characters NATS allows in a KV key.
fn key_ok(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with('.')
        && !k.ends_with('.')
        && !k.contains("..")
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-/_=.".contains(c))
}

/// Whether `name` can be a rule file of a source: `*.yaml`/`*.yml`, no `/`,
/// not hidden, characters a KV key allows.
pub fn is_rule_name(name: &str) -> bool {
    (name.ends_with(".yaml") || name.ends_with(".yml")) && !name.contains('/') && key_ok(name)
}

impl KvSource {
    /// None when `s` is not a `nats-kv://` URL; else the parsed source or
    /// what is wrong with it.
    pub fn parse(s: &str) -> Option<Result<KvSource, String>> {
        let rest = s.strip_prefix(SCHEME)?;
        let rest = rest.trim_end_matches('/');
        let (bucket, prefix) = match rest.split_once('/') {
            Some((b, p)) => (b, Some(p)),
            None => (rest, None),
        };
        Some(if !bucket_ok(bucket) {
            Err(format!(
                "`{s}`: bucket name `{bucket}` must be letters, digits, `_` and `-`"
            ))
        } else if prefix.is_some_and(|p| !key_ok(p) || p.contains("//")) {
            Err(format!(
                "`{s}`: prefix must be letters, digits and `-/_=.` (no leading or trailing `.`)"
            ))
        } else {
            Ok(KvSource {
                bucket: bucket.to_string(),
                prefix: prefix.map(str::to_string),
            })
        })
    }

    /// The KV key of a rule file (or of [`PUSH_KEY`]).
    pub fn key(&self, name: &str) -> String {
        match &self.prefix {
            Some(p) => format!("{p}/{name}"),
            None => name.to_string(),
        }
    }

    /// The rule file name a key stands for, if it is one of this source's.
    pub fn name_of<'a>(&self, key: &'a str) -> Option<&'a str> {
        let name = match &self.prefix {
            Some(p) => key.strip_prefix(p.as_str())?.strip_prefix('/')?,
            None => key,
        };
        is_rule_name(name).then_some(name)
    }

    pub fn url(&self) -> String {
        match &self.prefix {
            Some(p) => format!("{SCHEME}{}/{p}", self.bucket),
            None => format!("{SCHEME}{}", self.bucket),
        }
    }
}

/// The `nats-kv://` source among rule paths (at most one), checked.
pub fn kv_source(paths: &[PathBuf]) -> anyhow::Result<Option<(usize, KvSource)>> {
    let mut found = None;
    for (i, p) in paths.iter().enumerate() {
        let Some(s) = p.to_str() else { continue };
        if let Some(r) = KvSource::parse(s) {
            let src = r.map_err(|e| anyhow::anyhow!("rules: {e}"))?;
            if found.is_some() {
                anyhow::bail!("rules: only one nats-kv:// source is supported, `{s}` is a second");
            }
            found = Some((i, src));
        }
    }
    Ok(found)
}

/// Hex SHA-256 over the rule files of a revision (names and contents, in
/// name order): what `fleet push` records and each host reports, so the two
/// compare whatever directory the files sit in.
pub fn content_hash(files: &BTreeMap<String, Vec<u8>>) -> String {
    let mut h = Sha256::new();
    for (name, text) in files {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((text.len() as u64).to_le_bytes());
        h.update(text);
    }
    hex(&h.finalize())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The rule files of a local directory as [`content_hash`] sees them.
pub fn read_dir_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    crate::reload::list_rule_files(&[dir.to_path_buf()])
        .into_iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            Some((name, std::fs::read(&p).ok()?))
        })
        .collect()
}

/// State of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushState {
    Writing,
    Done,
}

/// The `_push` marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushMarker {
    pub state: PushState,
    /// Unix seconds the marker was written.
    pub time: u64,
    /// [`content_hash`] of the pushed files.
    pub hash: String,
    /// File names of the revision.
    pub files: Vec<String>,
    /// Host that pushed.
    pub by: String,
}

impl PushMarker {
    /// Whether hosts should wait: a push is being written (and not stale).
    pub fn holds(&self, now: u64) -> bool {
        self.state == PushState::Writing && now.saturating_sub(self.time) < PUSH_STALE_SECS
    }
}

/// The last load or reload of a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastReload {
    /// Unix seconds.
    pub time: u64,
    pub ok: bool,
    /// The first error and the count, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// [`content_hash`] of the fleet files it tried.
    pub fleet_hash: String,
}

/// What a host writes to the status bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HostStatus {
    pub hostname: String,
    pub version: String,
    /// The rules source URL.
    pub source: String,
    /// [`content_hash`] of the fleet rule files in force.
    pub fleet_hash: String,
    /// The whole rule set's hash (`vigil validate` prints it).
    pub rules_hash: String,
    pub rule_count: usize,
    #[serde(default)]
    pub last_reload: Option<LastReload>,
    /// The sensors' attached hooks (what `vigil run` logs as `hooks`): the
    /// event kinds this host can see.
    pub event_kinds: Vec<String>,
    /// Events lost (kernel ring buffer or queue full) since start.
    pub events_dropped: u64,
    /// Alerts dropped or given up by the outputs since start.
    pub alerts_dropped: u64,
    /// Unix seconds of this write.
    pub updated: u64,
}

/// Opens a KV bucket, creating it (one replica, `history` values a key)
/// when missing. The stream is created directly with the KV layout
/// (`KV_<bucket>`, `$KV.<bucket>.>`, as `nats kv add` does): async-nats'
/// own `create_key_value` first reads account info in a shape nats-server
/// 2.9 does not send.
pub async fn open_or_create_bucket(
    js: &async_nats::jetstream::Context,
    bucket: &str,
    history: i64,
) -> anyhow::Result<async_nats::jetstream::kv::Store> {
    use async_nats::jetstream::stream;
    if let Ok(s) = js.get_key_value(bucket).await {
        return Ok(s);
    }
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: history,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("creating KV bucket `{bucket}`: {e}"))?;
    js.get_key_value(bucket)
        .await
        .map_err(|e| anyhow::anyhow!("opening KV bucket `{bucket}`: {e}"))
}

/// Unix seconds now.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The status key of a host: its name with characters a key cannot hold
/// replaced by `_`.
pub fn status_key(hostname: &str) -> String {
    let k: String = hostname
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if k.is_empty() {
        "_".into()
    } else {
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_and_map_keys() {
        assert!(KvSource::parse("/etc/vigil/rules.d").is_none());
        let s = KvSource::parse("nats-kv://rules").unwrap().unwrap();
        assert_eq!((s.bucket.as_str(), s.prefix.as_deref()), ("rules", None));
        assert_eq!(s.key("a.yaml"), "a.yaml");
        assert_eq!(s.name_of("a.yaml"), Some("a.yaml"));
        assert_eq!(s.name_of("prod/a.yaml"), None, "another prefix's file");
        assert_eq!(s.name_of("_push"), None);
        let s = KvSource::parse("nats-kv://rules/prod/web")
            .unwrap()
            .unwrap();
        assert_eq!(s.prefix.as_deref(), Some("prod/web"));
        assert_eq!(s.key("_push"), "prod/web/_push");
        assert_eq!(s.name_of("prod/web/x.yml"), Some("x.yml"));
        assert_eq!(s.name_of("prod/web/sub/x.yml"), None);
        assert_eq!(s.name_of("prod/webx/x.yml"), None);
        assert_eq!(s.url(), "nats-kv://rules/prod/web");
        let e = KvSource::parse("nats-kv://ru.les").unwrap().unwrap_err();
        assert!(e.contains("bucket name"), "{e}");
        let e = KvSource::parse("nats-kv:///x").unwrap().unwrap_err();
        assert!(e.contains("bucket name"), "{e}");
        let e = KvSource::parse("nats-kv://b/a b").unwrap().unwrap_err();
        assert!(e.contains("prefix"), "{e}");
    }

    #[test]
    fn only_one_kv_source() {
        let p = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
        assert_eq!(kv_source(&p(&["/a", "/b"])).unwrap(), None);
        let (i, s) = kv_source(&p(&["/a", "nats-kv://r"])).unwrap().unwrap();
        assert_eq!((i, s.bucket.as_str()), (1, "r"));
        let e = kv_source(&p(&["nats-kv://r", "nats-kv://s"])).unwrap_err();
        assert!(e.to_string().contains("only one"), "{e}");
    }

    #[test]
    fn content_hash_covers_names_and_contents() {
        let mut a = BTreeMap::new();
        a.insert("a.yaml".to_string(), b"x".to_vec());
        let h1 = content_hash(&a);
        a.insert("a.yaml".to_string(), b"y".to_vec());
        assert_ne!(h1, content_hash(&a));
        let mut b = BTreeMap::new();
        b.insert("b.yaml".to_string(), b"y".to_vec());
        assert_ne!(content_hash(&a), content_hash(&b));
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("b.yaml"), "y").unwrap();
        std::fs::write(d.path().join("notes.txt"), "n").unwrap();
        assert_eq!(content_hash(&read_dir_files(d.path())), content_hash(&b));
    }

    #[test]
    fn a_writing_push_holds_until_stale() {
        let m = PushMarker {
            state: PushState::Writing,
            time: 1000,
            hash: String::new(),
            files: vec![],
            by: "h".into(),
        };
        assert!(m.holds(1010));
        assert!(!m.holds(1000 + PUSH_STALE_SECS));
        let done = PushMarker {
            state: PushState::Done,
            ..m
        };
        assert!(!done.holds(1010));
    }

    #[test]
    fn status_keys_are_valid_kv_keys() {
        assert_eq!(status_key("web-01.example.com"), "web-01_example_com");
        assert_eq!(status_key(""), "_");
    }
}
