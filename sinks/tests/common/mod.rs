//! Test helpers: alert builders and small real servers on loopback (an HTTP
//! server recording POSTs, an SMTP server recording mail) started by the
//! tests themselves.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value as Json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use vigil_engine::{Alert, Priority};
use vigil_sinks::OutputsConfig;

/// Generous upper bound for waiting on deliveries (not a timing assertion:
/// tests only fail on it when something never arrives).
pub const WAIT: Duration = Duration::from_secs(30);

pub fn alert(rule: &str, priority: Priority, i: i64) -> Arc<Alert> {
    let mut f = Map::new();
    f.insert("proc.name".into(), Json::from("bash"));
    f.insert("proc.pid".into(), Json::from(1000 + i));
    f.insert(
        "proc.cmdline".into(),
        Json::from(format!("bash -c echo {i}")),
    );
    f.insert("user.name".into(), Json::from("root"));
    Arc::new(Alert {
        time: 1_795_000_000_000_000_000 + i * 1_000,
        rule: Arc::from(rule),
        priority,
        output: format!("Shell bash spawned (pid={} n={i})", 1000 + i),
        output_fields: f,
        tags: Arc::from(vec!["process".to_string(), "mitre_execution".to_string()]),
        source: "syscall",
        hostname: Arc::from("testhost"),
    })
}

pub fn outputs(yaml: &str) -> OutputsConfig {
    serde_yaml_ng::from_str(yaml).expect("test config parses")
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("timed out waiting for delivery")
        .expect("server gone")
}

/// Polls `f` until it returns Some (or WAIT passes).
pub async fn eventually<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let end = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "condition never became true"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Debug)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// The status the server answered.
    pub status: u16,
}

pub struct HttpServer {
    pub addr: SocketAddr,
    pub rx: mpsc::UnboundedReceiver<HttpRequest>,
    /// Status answered to every request...
    pub status: Arc<AtomicU16>,
    /// ...except that while this is above zero a request gets 503 and takes one off.
    pub fail_next: Arc<AtomicUsize>,
}

impl HttpServer {
    pub async fn start(addr: &str) -> HttpServer {
        let l = TcpListener::bind(addr).await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let status = Arc::new(AtomicU16::new(200));
        let fail_next = Arc::new(AtomicUsize::new(0));
        let replies = Replies {
            status: status.clone(),
            fail_next: fail_next.clone(),
        };
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else { return };
                tokio::spawn(http_conn(s, tx.clone(), replies.clone()));
            }
        });
        HttpServer {
            addr,
            rx,
            status,
            fail_next,
        }
    }
}

/// Any byte stream a test server speaks over (TCP or TLS).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// What a test HTTP server answers: 503 while `fail_next` counts down
/// (one request each), else `status`.
#[derive(Clone, Default)]
pub struct Replies {
    pub status: Arc<AtomicU16>,
    pub fail_next: Arc<AtomicUsize>,
}

impl Replies {
    fn next(&self) -> u16 {
        let failed = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failed {
            503
        } else {
            self.status.load(Ordering::SeqCst)
        }
    }
}

/// Serves HTTP/1.1 requests on one connection (keep-alive).
pub async fn http_conn<S: Io + 'static>(
    s: S,
    tx: mpsc::UnboundedSender<HttpRequest>,
    replies: Replies,
) {
    let (r, mut w) = tokio::io::split(s);
    let mut r = BufReader::new(r);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).await.unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if r.read_exact(&mut body).await.is_err() {
            return;
        }
        let code = replies.next();
        let _ = tx.send(HttpRequest {
            method,
            path,
            headers,
            body,
            status: code,
        });
        let resp = format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n");
        if w.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub rcpt: Vec<String>,
    pub data: String,
    /// Received after STARTTLS.
    pub tls: bool,
    /// `:user:password` from AUTH PLAIN, if the client authenticated.
    pub auth: Option<String>,
}

impl Mail {
    /// Header value (unfolded), by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<String> {
        let (head, _) = self.data.split_once("\r\n\r\n")?;
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.split("\r\n").find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    /// The body, decoded from quoted-printable or base64 when so declared.
    pub fn body(&self) -> String {
        let (_, body) = self.data.split_once("\r\n\r\n").unwrap_or(("", ""));
        match self
            .header("content-transfer-encoding")
            .map(|s| s.to_ascii_lowercase())
            .as_deref()
        {
            Some("quoted-printable") => decode_qp(body),
            Some("base64") => decode_b64(body),
            _ => body.to_string(),
        }
    }
}

fn decode_qp(s: &str) -> String {
    let s = s.replace("=\r\n", "");
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn decode_b64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let Some(v) = A.iter().position(|&x| x == c) else {
            continue;
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub struct SmtpServer {
    pub addr: SocketAddr,
    pub rx: mpsc::UnboundedReceiver<Mail>,
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        SmtpServer::from_listener(TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    pub fn from_listener(l: TcpListener) -> SmtpServer {
        SmtpServer::with_tls(l, None)
    }

    /// A server offering STARTTLS with `tls` (and refusing mail before it).
    pub fn with_tls(l: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>) -> SmtpServer {
        let addr = l.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else { return };
                tokio::spawn(smtp_conn(Box::new(s), tx.clone(), tls.clone()));
            }
        });
        SmtpServer { addr, rx }
    }
}

async fn smtp_conn(
    s: Box<dyn Io>,
    tx: mpsc::UnboundedSender<Mail>,
    mut tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let mut r = BufReader::new(s);
    let mut secure = false;
    let offers_tls = tls.is_some();
    if r.get_mut()
        .write_all(b"220 test.invalid ESMTP ready\r\n")
        .await
        .is_err()
    {
        return;
    }
    let mut from = String::new();
    let mut rcpt = Vec::new();
    let mut auth = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let must_tls = offers_tls && !secure;
        let reply: &[u8] = if upper.starts_with("EHLO") {
            if offers_tls {
                if secure {
                    b"250-test.invalid\r\n250-8BITMIME\r\n250 AUTH PLAIN\r\n"
                } else {
                    b"250-test.invalid\r\n250-8BITMIME\r\n250 STARTTLS\r\n"
                }
            } else {
                b"250-test.invalid\r\n250-8BITMIME\r\n250-AUTH PLAIN\r\n250 SIZE 10000000\r\n"
            }
        } else if upper == "STARTTLS" {
            let Some(acceptor) = tls.take() else {
                let _ = r.get_mut().write_all(b"502 no\r\n").await;
                continue;
            };
            if r.get_mut().write_all(b"220 go ahead\r\n").await.is_err() {
                return;
            }
            let inner = r.into_inner();
            let Ok(t) = acceptor.accept(inner).await else {
                return;
            };
            r = BufReader::new(Box::new(t) as Box<dyn Io>);
            secure = true;
            continue;
        } else if upper.starts_with("AUTH PLAIN ") {
            // base64("\0user\0password")
            auth = Some(decode_b64(&cmd[11..]).replace('\0', ":"));
            b"235 authenticated\r\n"
        } else if upper.starts_with("HELO") {
            b"250 test.invalid\r\n"
        } else if must_tls && (upper.starts_with("MAIL") || upper.starts_with("RCPT")) {
            b"530 must issue STARTTLS first\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = cmd[10..].trim().to_string();
            rcpt.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            rcpt.push(cmd[8..].trim().to_string());
            b"250 OK\r\n"
        } else if upper == "DATA" {
            if r.get_mut().write_all(b"354 go ahead\r\n").await.is_err() {
                return;
            }
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).await.unwrap_or(0) == 0 {
                    return;
                }
                if l == ".\r\n" {
                    break;
                }
                let l = l.strip_prefix('.').map(str::to_string).unwrap_or(l);
                data.push_str(&l);
            }
            let _ = tx.send(Mail {
                from: from.clone(),
                rcpt: rcpt.clone(),
                data,
                tls: secure,
                auth: auth.clone(),
            });
            b"250 OK queued\r\n"
        } else if upper == "QUIT" {
            let _ = r.get_mut().write_all(b"221 bye\r\n").await;
            return;
        } else if upper == "RSET" || upper == "NOOP" {
            b"250 OK\r\n"
        } else {
            b"502 not implemented\r\n"
        };
        if r.get_mut().write_all(reply).await.is_err() {
            return;
        }
    }
}

/// A self-signed certificate for 127.0.0.1 / localhost: (CA PEM, acceptor).
pub fn tls_server() -> (String, tokio_rustls::TlsAcceptor) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert_pem = ck.cert.pem();
    let cert_der: CertificateDer<'static> = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key)
        .unwrap();
    (cert_pem, tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// A TCP listener on loopback with a small receive buffer (inherited by the
/// accepted sockets), so a receiver that does not read fills up at once.
pub fn small_window_listener(port: u16) -> TcpListener {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_reuseaddr(true).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .unwrap();
    sock.listen(16).unwrap()
}
