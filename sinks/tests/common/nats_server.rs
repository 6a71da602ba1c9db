//! Real `nats-server` processes (Debian's `nats-server` package) for tests:
//! one JetStream server or a 3-node JetStream cluster on loopback ports
//! picked free, store directories in a temp dir. Shared by the sink tests
//! and the `vigil` binary's fleet tests (included there by `#[path]`).
//! Without the binary a test skips, or fails under VIGIL_REQUIRE_LIVE=1.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server binary, or None (with a printed reason; a panic under
/// VIGIL_REQUIRE_LIVE=1).
pub fn nats_server_bin() -> Option<PathBuf> {
    for p in ["/usr/sbin/nats-server", "/usr/bin/nats-server"] {
        if Path::new(p).exists() {
            return Some(PathBuf::from(p));
        }
    }
    vigil_testkit::cannot_run("nats-server is not installed (apt-get install nats-server)");
    None
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// One `nats-server -js` process; killed on drop.
pub struct NatsNode {
    pub name: String,
    pub port: u16,
    conf: PathBuf,
    bin: PathBuf,
    child: Option<Child>,
}

impl NatsNode {
    /// `nats://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = self.conf.with_extension("log");
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.conf)
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!(
                        "nats-server {} exited ({st}): {}",
                        self.name,
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "nats-server {} never listened",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process (SIGKILL: no graceful leadership hand-off) and waits.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and store directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for NatsNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One server or a cluster, with its temp dir.
pub struct NatsCluster {
    pub nodes: Vec<NatsNode>,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    /// One JetStream server. None when nats-server is not installed.
    pub fn single() -> Option<NatsCluster> {
        NatsCluster::start(1)
    }

    /// `n` JetStream servers; with n > 1 a cluster (routes between all).
    pub fn start(n: usize) -> Option<NatsCluster> {
        NatsCluster::start_with(n, "")
    }

    /// Like [`start`](Self::start), `extra` appended to each server's config.
    pub fn start_with(n: usize, extra: &str) -> Option<NatsCluster> {
        let bin = nats_server_bin()?;
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let mut nodes = Vec::new();
        for (i, (port, cport)) in ports.iter().enumerate() {
            let name = format!("n{i}");
            let store = dir.path().join(&name);
            let mut conf = format!(
                "server_name: {name}\nlisten: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\" }}\n",
                store.display()
            );
            if n > 1 {
                let routes: Vec<String> = ports
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, (_, c))| format!("\"nats-route://127.0.0.1:{c}\""))
                    .collect();
                conf.push_str(&format!(
                    "cluster {{ name: vigiltest, listen: 127.0.0.1:{cport}, routes: [{}] }}\n",
                    routes.join(", ")
                ));
            }
            conf.push_str(extra);
            let path = dir.path().join(format!("{name}.conf"));
            std::fs::write(&path, conf).unwrap();
            nodes.push(NatsNode {
                name,
                port: *port,
                conf: path,
                bin: bin.clone(),
                child: None,
            });
        }
        for node in &mut nodes {
            node.spawn();
        }
        Some(NatsCluster { nodes, _dir: dir })
    }

    /// Every node's URL.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(NatsNode::url).collect()
    }

    pub fn node(&mut self, name: &str) -> &mut NatsNode {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// The temp dir holding configs and stores.
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// The server log of a node (for failure messages).
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.nodes[i].conf.with_extension("log")).unwrap_or_default()
    }
}

/// One stored message: subject, `Nats-Msg-Id`, JSON payload.
pub struct Stored {
    pub subject: String,
    pub msg_id: String,
    pub json: serde_json::Value,
}

/// Every message of `stream`, in stream order, read through `urls` (none
/// while the stream does not exist).
pub async fn read_stream(urls: Vec<String>, stream: &str) -> Vec<Stored> {
    let client = async_nats::connect(urls).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let Ok(stream) = js.get_stream(stream).await else {
        return Vec::new();
    };
    let info = stream.get_info().await.unwrap();
    let mut out = Vec::new();
    if info.state.messages == 0 {
        return out;
    }
    for seq in info.state.first_sequence..=info.state.last_sequence {
        let m = stream.get_raw_message(seq).await.unwrap();
        out.push(Stored {
            subject: m.subject.to_string(),
            msg_id: m
                .headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .map(|v| v.as_str().to_string())
                .unwrap_or_default(),
            json: serde_json::from_slice(&m.payload).unwrap(),
        });
    }
    out
}
