//! `vigil fleet push` (validate rule files like `vigil validate`, refuse on
//! error, write them to a KV bucket as one revision) and `vigil fleet status`
//! (the hosts' status entries beside the latest push, as a table or JSON).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use async_nats::jetstream;
use futures_util::StreamExt;
use serde::Serialize;
use vigil_sinks::nats_config::NatsConnection;

use vigil::fleet::{
    content_hash, is_rule_name, now_secs, HostStatus, KvSource, PushMarker, PushState, PUSH_KEY,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Validate rule files exactly like `vigil validate`, then write them to a
    /// KV bucket as one revision (hosts reading nats-kv://BUCKET[/PREFIX]
    /// load it as a whole). Refused when the rules do not load.
    Push(PushArgs),
    /// The hosts reporting to the status bucket: the rule set each runs,
    /// whether it is the latest push, the last reload, when last seen.
    Status(StatusArgs),
}

/// How to reach NATS.
#[derive(clap::Args, Debug)]
pub struct ConnArgs {
    /// NATS server URL; repeatable. Overrides the config's `nats.servers`.
    #[arg(long = "nats", value_name = "URL")]
    pub nats: Vec<String>,
    /// Take credentials and TLS (and servers) from this config file's `nats:` block.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// Rule files or directories (a directory: its *.yaml / *.yml).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// KV bucket (created when missing).
    #[arg(long, value_name = "BUCKET")]
    pub bucket: String,
    /// Key prefix (hosts read nats-kv://BUCKET/PREFIX).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Status bucket [default: the config's nats.status_bucket, else vigil-status].
    #[arg(long, value_name = "BUCKET")]
    pub status_bucket: Option<String>,
    /// One JSON object per host, in an array.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    match args.cmd {
        Cmd::Push(a) => rt.block_on(push(a)),
        Cmd::Status(a) => rt.block_on(status(a)),
    }
}

fn connection(a: &ConnArgs) -> anyhow::Result<NatsConnection> {
    let mut conn = match &a.config {
        Some(p) => vigil::config::Config::load(p)?
            .nats
            .with_context(|| format!("{}: no `nats:` block", p.display()))?,
        None if a.nats.is_empty() => {
            anyhow::bail!("give --nats URL (or --config FILE with a `nats:` block)")
        }
        None => NatsConnection::plain(Vec::new()),
    };
    if !a.nats.is_empty() {
        for s in &a.nats {
            vigil_sinks::nats_config::check_server(s)
                .map_err(|e| anyhow::anyhow!("--nats: {e}"))?;
        }
        conn.servers = a.nats.clone();
    }
    Ok(conn)
}

async fn jetstream(conn: &NatsConnection) -> anyhow::Result<jetstream::Context> {
    let client = conn.connect("vigil fleet").await?;
    let mut js = jetstream::new(client);
    js.set_timeout(conn.connect_timeout);
    Ok(js)
}

/// The files a push carries: name -> (path, content), each name once.
fn collect(paths: &[PathBuf]) -> anyhow::Result<BTreeMap<String, (PathBuf, Vec<u8>)>> {
    if let Some(p) = paths.iter().find(|p| !p.exists()) {
        anyhow::bail!("{}: no such file or directory", p.display());
    }
    let mut out = BTreeMap::new();
    for p in vigil::reload::list_rule_files(paths) {
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{}: not a file name", p.display()))?
            .to_string();
        if !is_rule_name(&name) {
            anyhow::bail!(
                "{}: a pushed rule file is named *.yaml or *.yml, with letters, digits and `-_=.` only",
                p.display()
            );
        }
        let text = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        if let Some((first, _)) = out.insert(name.clone(), (p.clone(), text)) {
            anyhow::bail!(
                "{} and {} would both be `{name}` in the bucket",
                first.display(),
                p.display()
            );
        }
    }
    if out.is_empty() {
        anyhow::bail!("no rule files (*.yaml, *.yml) in the given paths");
    }
    Ok(out)
}

async fn push(a: PushArgs) -> anyhow::Result<ExitCode> {
    let src = KvSource::parse(&match &a.prefix {
        Some(p) => format!("{}{}/{p}", vigil::fleet::SCHEME, a.bucket),
        None => format!("{}{}", vigil::fleet::SCHEME, a.bucket),
    })
    .unwrap_or_else(|| Err("not a nats-kv source".into()))
    .map_err(|e| anyhow::anyhow!("--bucket/--prefix: {e}"))?;
    let files = collect(&a.paths)?;
    // Validate as hosts will load them: the files in name order.
    let in_order: Vec<PathBuf> = files.values().map(|(p, _)| p.clone()).collect();
    if !crate::commands::validate::check(&in_order, false, false) {
        eprintln!("vigil fleet push: refused, the rules do not validate; nothing was written");
        return Ok(ExitCode::from(1));
    }
    let contents: BTreeMap<String, Vec<u8>> = files
        .iter()
        .map(|(n, (_, t))| (n.clone(), t.clone()))
        .collect();
    let hash = content_hash(&contents);

    let conn = connection(&a.conn)?;
    let js = jetstream(&conn).await?;
    let store = vigil::fleet::open_or_create_bucket(&js, &src.bucket, 5).await?;
    let by = vigil_engine::ruleset::hostname();
    let marker = |state| PushMarker {
        state,
        time: now_secs(),
        hash: hash.clone(),
        files: contents.keys().cloned().collect(),
        by: by.clone(),
    };
    let put_marker = |m: PushMarker| {
        let store = store.clone();
        let key = src.key(PUSH_KEY);
        async move {
            store
                .put(&key, serde_json::to_vec(&m)?.into())
                .await
                .with_context(|| format!("writing {key}"))
        }
    };
    put_marker(marker(PushState::Writing)).await?;
    let mut stale = Vec::new();
    let mut keys = store.keys().await.context("listing the bucket")?;
    while let Some(k) = keys.next().await {
        let k = k.context("listing the bucket")?;
        if let Some(n) = src.name_of(&k) {
            if !contents.contains_key(n) {
                stale.push(k.clone());
            }
        }
    }
    for (name, text) in &contents {
        store
            .put(src.key(name), text.clone().into())
            .await
            .with_context(|| format!("writing {}", src.key(name)))?;
    }
    for k in &stale {
        store
            .delete(k)
            .await
            .with_context(|| format!("deleting {k}"))?;
    }
    put_marker(marker(PushState::Done)).await?;
    println!(
        "pushed {} file(s) to {} ({} removed); revision {}",
        contents.len(),
        src.url(),
        stale.len(),
        hash
    );
    Ok(ExitCode::SUCCESS)
}

/// One row of `fleet status`.
#[derive(Debug, Serialize)]
struct Row {
    #[serde(flatten)]
    status: HostStatus,
    /// Hash of the latest completed push of the host's source.
    latest_push: Option<String>,
    /// Whether the host runs it (None: no push recorded).
    converged: Option<bool>,
    /// Seconds since the host last wrote its status.
    seen_secs_ago: u64,
}

async fn status(a: StatusArgs) -> anyhow::Result<ExitCode> {
    let conn = connection(&a.conn)?;
    let bucket = a
        .status_bucket
        .clone()
        .unwrap_or(conn.status_bucket.clone());
    let js = jetstream(&conn).await?;
    let store = js
        .get_key_value(&bucket)
        .await
        .with_context(|| format!("opening status bucket `{bucket}` (no host has reported yet?)"))?;
    let mut hosts = Vec::new();
    let mut keys = store.keys().await.context("listing the status bucket")?;
    while let Some(k) = keys.next().await {
        let k = k.context("listing the status bucket")?;
        if let Some(v) = store.get(&k).await? {
            match serde_json::from_slice::<HostStatus>(&v) {
                Ok(s) => hosts.push(s),
                Err(e) => eprintln!("vigil fleet status: entry `{k}` unreadable: {e}"),
            }
        }
    }
    // The latest push of every source the hosts read.
    let mut latest: BTreeMap<String, Option<String>> = BTreeMap::new();
    for src in hosts
        .iter()
        .map(|h| h.source.clone())
        .collect::<BTreeSet<_>>()
    {
        let hash = match KvSource::parse(&src) {
            Some(Ok(s)) => latest_push(&js, &s).await,
            _ => None,
        };
        latest.insert(src, hash);
    }
    let now = now_secs();
    let mut rows: Vec<Row> = hosts
        .into_iter()
        .map(|s| {
            let lp = latest.get(&s.source).cloned().flatten();
            Row {
                converged: lp.as_ref().map(|h| *h == s.fleet_hash),
                latest_push: lp,
                seen_secs_ago: now.saturating_sub(s.updated),
                status: s,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.status.hostname.cmp(&b.status.hostname));
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", table(&rows));
    }
    Ok(ExitCode::SUCCESS)
}

async fn latest_push(js: &jetstream::Context, src: &KvSource) -> Option<String> {
    let store = js.get_key_value(&src.bucket).await.ok()?;
    let m = store.get(src.key(PUSH_KEY)).await.ok()??;
    let m: PushMarker = serde_json::from_slice(&m).ok()?;
    (m.state == PushState::Done).then_some(m.hash)
}

fn short(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}

fn table(rows: &[Row]) -> String {
    let mut lines = vec![[
        "HOST".to_string(),
        "VERSION".into(),
        "FLEET HASH".into(),
        "LATEST PUSH".into(),
        "RULES".into(),
        "LAST SEEN".into(),
        "LAST RELOAD".into(),
    ]];
    for r in rows {
        let s = &r.status;
        let reload = match &s.last_reload {
            None => "-".to_string(),
            Some(l) if l.ok => format!("ok {}s ago", now_secs().saturating_sub(l.time)),
            Some(l) => format!(
                "FAILED {}s ago: {}",
                now_secs().saturating_sub(l.time),
                l.error.as_deref().unwrap_or("")
            ),
        };
        lines.push([
            s.hostname.clone(),
            s.version.clone(),
            short(&s.fleet_hash).to_string(),
            match r.converged {
                Some(true) => "yes".into(),
                Some(false) => format!(
                    "NO (latest {})",
                    short(r.latest_push.as_deref().unwrap_or(""))
                ),
                None => "-".into(),
            },
            s.rule_count.to_string(),
            format!("{}s ago", r.seen_secs_ago),
            reload,
        ]);
    }
    let mut width = [0usize; 7];
    for l in &lines {
        for (i, c) in l.iter().enumerate().take(6) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for l in &lines {
        for (i, c) in l.iter().enumerate() {
            if i < 6 {
                out.push_str(&format!("{c:<w$}  ", w = width[i]));
            } else {
                out.push_str(c);
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_carries_each_name_once_and_only_rule_files() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("x.yaml"), "- list: l\n  items: []\n").unwrap();
        std::fs::write(a.join("notes.txt"), "n").unwrap();
        std::fs::write(b.join("y.yml"), "[]").unwrap();
        let files = collect(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(files.keys().collect::<Vec<_>>(), vec!["x.yaml", "y.yml"]);
        std::fs::write(b.join("x.yaml"), "[]").unwrap();
        let e = collect(&[a.clone(), b.clone()]).unwrap_err().to_string();
        assert!(e.contains("would both be `x.yaml`"), "{e}");
        let odd = d.path().join("odd name.yaml");
        std::fs::write(&odd, "[]").unwrap();
        let e = collect(&[odd]).unwrap_err().to_string();
        assert!(
            e.contains("odd name.yaml") && e.contains("letters, digits"),
            "{e}"
        );
        let e = collect(&[d.path().join("empty")]).unwrap_err().to_string();
        assert!(e.contains("empty: no such file"), "{e}");
        let none = d.path().join("none");
        std::fs::create_dir(&none).unwrap();
        let e = collect(&[none]).unwrap_err().to_string();
        assert!(e.contains("no rule files"), "{e}");
    }

    #[test]
    fn the_table_flags_hosts_off_the_latest_push_and_failed_reloads() {
        let st = |host: &str, hash: &str, ok: bool| HostStatus {
            hostname: host.into(),
            version: "0.1.0".into(),
            fleet_hash: hash.into(),
            rule_count: 3,
            last_reload: Some(vigil::fleet::LastReload {
                time: now_secs(),
                ok,
                error: (!ok).then(|| "1 error(s); first: x.yaml:1:1: bad".to_string()),
                fleet_hash: hash.into(),
            }),
            ..HostStatus::default()
        };
        let rows = vec![
            Row {
                status: st("web-01", "aaaaaaaaaaaaaaaa", true),
                latest_push: Some("aaaaaaaaaaaaaaaa".into()),
                converged: Some(true),
                seen_secs_ago: 3,
            },
            Row {
                status: st("web-02", "bbbbbbbbbbbbbbbb", false),
                latest_push: Some("aaaaaaaaaaaaaaaa".into()),
                converged: Some(false),
                seen_secs_ago: 40,
            },
        ];
        let t = table(&rows);
        let l1 = t.lines().find(|l| l.starts_with("web-01")).unwrap();
        assert!(l1.contains(" yes ") && l1.contains("ok "), "{t}");
        let l2 = t.lines().find(|l| l.starts_with("web-02")).unwrap();
        assert!(l2.contains("NO (latest aaaaaaaaaaaa)"), "{t}");
        assert!(
            l2.contains("FAILED") && l2.contains("x.yaml:1:1: bad"),
            "{t}"
        );
        assert!(l2.contains("40s ago"), "{t}");
    }
}
