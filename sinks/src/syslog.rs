//! The syslog sink: an own RFC 5424 (or RFC 3164) writer over tokio sockets:
//! unix datagram (`/dev/log`), UDP, or TCP with RFC 6587 octet-counting
//! framing (`<len> <msg>`) or LF framing. Structured data
//! `[vigil@32473 rule=".." priority=".." ...]` carries the rule and key
//! fields. A failed send drops the connection; the router's retry backoff
//! paces the reconnects. Before each TCP write the socket is checked for a
//! peer close, so a restarted receiver does not swallow a message.
//!
//! Over TCP and TLS a message counts as delivered only once the peer's TCP
//! stack has acknowledged it, not when it is in the local socket buffer: the
//! sink writes what is queued (up to [`STREAM_BATCH`] alerts, with a small
//! send buffer, [`STREAM_SNDBUF`]), then waits until `SIOCOUTQ` (bytes not
//! yet acknowledged) is zero. No acknowledgement progress within `timeout`,
//! or a connection reset, fails the whole batch: the connection is dropped
//! and the router re-sends the batch on a new one (so a receiver may see a
//! message twice; never none). A receiver that accepts and never reads thus
//! produces counted failures (and, after `retry.max_attempts` or a full
//! queue, a loss alert), never "sent".

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket, UnixDatagram};
use vigil_engine::Alert;

use crate::config::{
    Facility, SyslogAddress, SyslogConfig, SyslogFormat, SyslogPayload, TcpFraming,
};
use crate::router::{Batch, BatchPolicy, Sink};
use crate::{DeliveryError, SinkError};

/// Private enterprise number in the SD-ID (RFC 5612's documentation number).
pub const SD_ID: &str = "vigil@32473";

/// `SO_SNDBUF` of a TCP/TLS connection (the kernel doubles it for its own
/// bookkeeping): bounds what can sit unacknowledged in the kernel for a
/// receiver that stopped reading.
pub const STREAM_SNDBUF: usize = 64 * 1024;

/// Alerts written per delivery over TCP/TLS before waiting for the peer's
/// acknowledgement of all of them.
pub const STREAM_BATCH: usize = 256;

/// Messages acknowledged on a TCP/TLS connection that are kept (the newest,
/// by rendered size) and re-sent when the connection ends in a reset: a
/// receiver that dies with unread data resets it, and its kernel may have
/// acknowledged that much without the process ever reading it (Linux's
/// default receive buffer of a reader that never reads is 128 KiB).
pub const REPLAY_BYTES: usize = 256 * 1024;

/// Longest pause between two checks of the unacknowledged byte count.
const ACK_POLL_MAX: Duration = Duration::from_millis(50);

/// Output fields copied into the structured data when present.
const SD_FIELDS: [&str; 12] = [
    "proc.name",
    "proc.pid",
    "proc.exe",
    "proc.pname",
    "user.name",
    "proc.uid",
    "container.id",
    "proc.unit",
    "file.path",
    "net.daddr",
    "net.dport",
    "vigil.count",
];

/// The PRI value: facility * 8 + severity of the alert's priority.
pub fn pri(facility: Facility, a: &Alert) -> u8 {
    facility.0 * 8 + a.priority.syslog_severity()
}

/// Printable US-ASCII without spaces, at most `max` bytes, or `-`.
fn header_token(s: &str, max: usize) -> String {
    let t: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if t.is_empty() {
        "-".into()
    } else {
        t
    }
}

fn sd_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
}

fn payload(a: &Alert, p: SyslogPayload) -> String {
    match p {
        SyslogPayload::Text => a.output.clone(),
        SyslogPayload::Json => a.to_json_line(),
    }
}

/// One RFC 5424 message (no framing):
/// `<PRI>1 TIMESTAMP HOST APP PROCID alert [vigil@32473 ...] MSG`.
/// The timestamp keeps microseconds (RFC 5424's maximum precision).
pub fn format_rfc5424(
    a: &Alert,
    facility: Facility,
    hostname: &str,
    app: &str,
    pid: u32,
    p: SyslogPayload,
) -> String {
    let ts = a.time_rfc3339(); // YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ
    let ts = if ts.len() == 30 {
        format!("{}Z", &ts[..26])
    } else {
        ts
    };
    let host = if a.hostname.is_empty() {
        hostname
    } else {
        &a.hostname
    };
    let mut m = format!(
        "<{}>1 {} {} {} {} alert [{SD_ID} rule=\"",
        pri(facility, a),
        ts,
        header_token(host, 255),
        header_token(app, 48),
        pid
    );
    sd_escape(&a.rule, &mut m);
    m.push_str("\" priority=\"");
    m.push_str(a.priority.falco_name());
    m.push_str("\" source=\"");
    sd_escape(a.source, &mut m);
    m.push('"');
    if !a.tags.is_empty() {
        m.push_str(" tags=\"");
        sd_escape(&a.tags.join(","), &mut m);
        m.push('"');
    }
    for f in SD_FIELDS {
        let v = match a.output_fields.get(f) {
            None | Some(Json::Null) => continue,
            Some(Json::String(s)) if s.is_empty() => continue,
            Some(Json::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        };
        m.push(' ');
        m.push_str(f);
        m.push_str("=\"");
        sd_escape(&v, &mut m);
        m.push('"');
    }
    m.push_str("] ");
    m.push_str(&payload(a, p));
    m
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// One RFC 3164 message: `<PRI>Mmm dd hh:mm:ss HOST TAG[pid]: MSG` (UTC).
pub fn format_rfc3164(
    a: &Alert,
    facility: Facility,
    hostname: &str,
    app: &str,
    pid: u32,
    p: SyslogPayload,
) -> String {
    let ts = a.time_rfc3339();
    let month: usize = ts.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    let day: u32 = ts.get(8..10).and_then(|d| d.parse().ok()).unwrap_or(1);
    let hms = ts.get(11..19).unwrap_or("00:00:00");
    let host = if a.hostname.is_empty() {
        hostname
    } else {
        &a.hostname
    };
    format!(
        "<{}>{} {:>2} {} {} {}[{}]: {}",
        pri(facility, a),
        MONTHS[month.clamp(1, 12) - 1],
        day,
        hms,
        header_token(host, 255),
        header_token(app, 32),
        pid,
        payload(a, p)
    )
}

/// TCP/TLS framing (RFC 6587).
fn frame(framing: TcpFraming, msg: &str) -> String {
    match framing {
        TcpFraming::OctetCounting => format!("{} {}", msg.len(), msg),
        TcpFraming::NonTransparent => format!("{}\n", msg.replace('\n', " ")),
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// Non-blocking peek on the socket itself (tokio's `try_read` only reads
/// when the reactor has already seen readiness, so it can miss a fresh FIN).
fn peer_closed(s: &TcpStream) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: `b` is a valid 1-byte buffer for the duration of the call and the
    // fd is owned by `s`, which outlives it.
    let n = unsafe {
        libc::recv(
            s.as_raw_fd(),
            b.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n == 0 {
        return true;
    }
    if n < 0 {
        let e = std::io::Error::last_os_error();
        return e.kind() != std::io::ErrorKind::WouldBlock
            && e.kind() != std::io::ErrorKind::Interrupted;
    }
    false
}

/// Caps the socket's send buffer at [`STREAM_SNDBUF`].
fn limit_sndbuf(s: &TcpStream) -> std::io::Result<()> {
    let v = STREAM_SNDBUF as libc::c_int;
    // SAFETY: `v` is a c_int that lives across the call; the fd is owned by `s`.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Bytes written to the connection that the peer has not acknowledged yet
/// (`SIOCOUTQ`: unsent plus sent-but-unacknowledged).
fn unacked_bytes(s: &TcpStream) -> std::io::Result<u64> {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (= TIOCOUTQ) writes one c_int to the pointer, which
    // is valid for the call; the fd is owned by `s`.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), libc::TIOCOUTQ, &mut n as *mut libc::c_int) };
    if r == 0 {
        Ok(n.max(0) as u64)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The TCP state (`TCP_INFO`'s `tcpi_state`, e.g. 1 = ESTABLISHED).
fn tcp_state(s: &TcpStream) -> std::io::Result<u8> {
    // SAFETY: an all-zero tcp_info is valid (plain integers).
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` and `len` are valid for the call and `len` holds the
    // buffer's size; the kernel writes at most that much.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if r == 0 {
        Ok(info.tcpi_state)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

const TCP_ESTABLISHED: u8 = 1;
const TCP_CLOSE_WAIT: u8 = 8;

/// Waits until the peer has acknowledged every byte written to `s`. Fails
/// when the connection is gone (reset, or closed with data outstanding) or
/// when the peer acknowledged nothing more for `timeout` (it stopped
/// reading: its receive window is full).
async fn wait_acked(s: &TcpStream, timeout: Duration) -> std::io::Result<()> {
    let mut least = u64::MAX;
    let mut progress = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let state = tcp_state(s)?;
        // CLOSE_WAIT: the peer sent FIN after reading; what it acknowledged
        // before that is delivered, what it did not will be reset.
        if state != TCP_ESTABLISHED && state != TCP_CLOSE_WAIT {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection closed before the peer acknowledged every message",
            ));
        }
        let q = unacked_bytes(s)?;
        if q == 0 {
            return Ok(());
        }
        if q < least {
            least = q;
            progress = tokio::time::Instant::now();
        } else if progress.elapsed() >= timeout {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the receiver acknowledged nothing for {timeout:?} ({q} bytes outstanding): \
                     it is not reading"
                ),
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(ACK_POLL_MAX);
    }
}

enum Conn {
    Unix(UnixDatagram),
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

pub(crate) struct SyslogSink {
    address: SyslogAddress,
    format: SyslogFormat,
    facility: Facility,
    payload: SyslogPayload,
    framing: TcpFraming,
    app: String,
    max: usize,
    timeout: Duration,
    hostname: Arc<str>,
    pid: u32,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
    conn: Option<Conn>,
    /// Messages acknowledged on the current TCP/TLS connection (newest
    /// [`REPLAY_BYTES`]), re-sent if it ends in a reset.
    recent: std::collections::VecDeque<String>,
    recent_bytes: usize,
    /// Messages to re-send first on the next connection.
    replay: Vec<String>,
}

pub(crate) fn build(
    cfg: &SyslogConfig,
    hostname: &Arc<str>,
) -> Result<(SyslogSink, BatchPolicy), SinkError> {
    // Streams take what is queued, then wait for one acknowledgement; a
    // datagram goes alone (an oversized one is given up by itself).
    let max = match cfg.address {
        SyslogAddress::Tcp(_) | SyslogAddress::Tls(_) => STREAM_BATCH,
        SyslogAddress::Unix(_) | SyslogAddress::Udp(_) => 1,
    };
    if cfg.app_name.is_empty() {
        return Err(SinkError::Config {
            sink: "syslog",
            msg: "app_name is empty".into(),
        });
    }
    let tls = match &cfg.address {
        SyslogAddress::Tls(_) => {
            let extra = match &cfg.ca_file {
                Some(p) => crate::tls::read_ca_file("syslog", p)?,
                None => Vec::new(),
            };
            let cc = crate::tls::client_config("syslog", &extra)?;
            let host = cfg.address.host().unwrap_or_default().to_string();
            let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| {
                SinkError::Config {
                    sink: "syslog",
                    msg: format!("address: `{host}` is not a TLS server name: {e}"),
                }
            })?;
            Some((tokio_rustls::TlsConnector::from(cc), name))
        }
        _ => {
            if cfg.ca_file.is_some() {
                return Err(SinkError::Config {
                    sink: "syslog",
                    msg: "ca_file is only used with a tls:// address".into(),
                });
            }
            None
        }
    };
    Ok((
        SyslogSink {
            tls,
            address: cfg.address.clone(),
            format: cfg.format,
            facility: cfg.facility,
            payload: cfg.payload,
            framing: cfg.framing,
            app: cfg.app_name.clone(),
            max: cfg.max_message_size,
            timeout: cfg.timeout,
            hostname: hostname.clone(),
            pid: std::process::id(),
            conn: None,
            recent: std::collections::VecDeque::new(),
            recent_bytes: 0,
            replay: Vec::new(),
        },
        BatchPolicy {
            window: Duration::ZERO,
            max,
            count_rest: false,
            lead_alone: false,
        },
    ))
}

impl SyslogSink {
    async fn connect(&self) -> std::io::Result<Conn> {
        let fut = async {
            match &self.address {
                SyslogAddress::Unix(p) => {
                    let s = UnixDatagram::unbound()?;
                    s.connect(p)?;
                    Ok(Conn::Unix(s))
                }
                SyslogAddress::Udp(a) => {
                    let target = tokio::net::lookup_host(a.as_str())
                        .await?
                        .next()
                        .ok_or_else(|| std::io::Error::other(format!("{a}: no address")))?;
                    let bind = if target.is_ipv4() {
                        "0.0.0.0:0"
                    } else {
                        "[::]:0"
                    };
                    let s = UdpSocket::bind(bind).await?;
                    s.connect(target).await?;
                    Ok(Conn::Udp(s))
                }
                SyslogAddress::Tcp(a) => {
                    let s = TcpStream::connect(a.as_str()).await?;
                    s.set_nodelay(true)?;
                    limit_sndbuf(&s)?;
                    Ok(Conn::Tcp(s))
                }
                SyslogAddress::Tls(a) => {
                    let (connector, name) = self
                        .tls
                        .as_ref()
                        .ok_or_else(|| std::io::Error::other("TLS not configured"))?;
                    let s = TcpStream::connect(a.as_str()).await?;
                    s.set_nodelay(true)?;
                    limit_sndbuf(&s)?;
                    let t = connector.connect(name.clone(), s).await?;
                    Ok(Conn::Tls(Box::new(t)))
                }
            }
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))?
    }

    fn render(&self, a: &Alert) -> String {
        let m = match self.format {
            SyslogFormat::Rfc5424 => format_rfc5424(
                a,
                self.facility,
                &self.hostname,
                &self.app,
                self.pid,
                self.payload,
            ),
            SyslogFormat::Rfc3164 => format_rfc3164(
                a,
                self.facility,
                &self.hostname,
                &self.app,
                self.pid,
                self.payload,
            ),
        };
        truncate(m, self.max)
    }

    /// Forgets the connection. `unclean`: it did not end with the peer's
    /// orderly close, so the peer may have discarded messages its kernel had
    /// acknowledged: they are re-sent first on the next connection.
    fn drop_conn(&mut self, unclean: bool) {
        if self.conn.take().is_none() {
            return;
        }
        if unclean && !self.recent.is_empty() {
            tracing::debug!(
                address = %self.address,
                messages = self.recent.len(),
                "syslog connection lost: re-sending the messages acknowledged on it"
            );
            self.replay.extend(self.recent.drain(..));
            // The newest REPLAY_BYTES only.
            let mut bytes = 0;
            let keep = self
                .replay
                .iter()
                .rev()
                .take_while(|m| {
                    bytes += m.len();
                    bytes <= REPLAY_BYTES
                })
                .count();
            self.replay.drain(..self.replay.len() - keep);
        }
        self.recent.clear();
        self.recent_bytes = 0;
    }

    /// Reconnects when there is no connection or the peer closed it.
    /// Called once per batch: a stream batch is acknowledged on the one
    /// connection it was written to.
    async fn ensure_connected(&mut self) -> std::io::Result<()> {
        // A peer that closed (FIN, TLS close_notify) is reconnected rather
        // than written into (that message would be lost). A reset (state
        // CLOSE) means the peer discarded data it had not read.
        let gone = match self.conn.as_mut() {
            Some(Conn::Tcp(s)) => tcp_gone(s),
            Some(Conn::Tls(t)) => tls_gone(t),
            _ => None,
        };
        if let Some(g) = gone {
            tracing::debug!(address = %self.address, reset = g == Gone::Reset, "syslog peer closed, reconnecting");
            self.drop_conn(g == Gone::Reset);
        }
        if self.conn.is_none() {
            self.conn = Some(self.connect().await?);
            tracing::debug!(address = %self.address, "syslog connected");
        }
        Ok(())
    }

    async fn send(&mut self, msg: &str) -> std::io::Result<()> {
        let timeout = self.timeout;
        let framing = self.framing;
        let Some(conn) = self.conn.as_mut() else {
            return Err(std::io::Error::other("not connected"));
        };
        let fut = async {
            match conn {
                Conn::Unix(s) => s.send(msg.as_bytes()).await.map(|_| ()),
                Conn::Udp(s) => s.send(msg.as_bytes()).await.map(|_| ()),
                Conn::Tcp(s) => s.write_all(frame(framing, msg).as_bytes()).await,
                Conn::Tls(t) => {
                    t.write_all(frame(framing, msg).as_bytes()).await?;
                    t.flush().await
                }
            }
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "send timed out"))?
    }

    /// TCP/TLS: waits until the peer acknowledged everything written (see
    /// the module docs). Datagrams: nothing to wait for.
    async fn acked(&self) -> std::io::Result<()> {
        match &self.conn {
            Some(Conn::Tcp(s)) => wait_acked(s, self.timeout).await,
            Some(Conn::Tls(t)) => wait_acked(t.get_ref().0, self.timeout).await,
            Some(Conn::Unix(_) | Conn::Udp(_)) => Ok(()),
            None => Err(std::io::Error::other("not connected")),
        }
    }

    fn is_stream(&self) -> bool {
        matches!(self.address, SyslogAddress::Tcp(_) | SyslogAddress::Tls(_))
    }

    /// Remembers messages acknowledged on the current connection, the
    /// newest [`REPLAY_BYTES`] of them.
    fn remember(&mut self, msgs: Vec<String>) {
        for m in msgs {
            self.recent_bytes += m.len();
            self.recent.push_back(m);
        }
        while self.recent_bytes > REPLAY_BYTES {
            match self.recent.pop_front() {
                Some(m) => self.recent_bytes -= m.len(),
                None => break,
            }
        }
    }
}

/// How a stream connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gone {
    /// FIN (or TLS close_notify): the peer read what it acknowledged.
    Closed,
    /// Reset: the peer may have discarded acknowledged data.
    Reset,
}

fn tcp_gone(s: &TcpStream) -> Option<Gone> {
    match tcp_state(s) {
        Ok(TCP_ESTABLISHED) | Ok(TCP_CLOSE_WAIT) => {}
        _ => return Some(Gone::Reset),
    }
    peer_closed(s).then_some(Gone::Closed)
}

/// Like [`tcp_gone`] for TLS: what the server sent (session tickets after
/// the handshake, a close_notify) is read straight off the socket and fed
/// to rustls, so tickets are consumed instead of passing for a close.
fn tls_gone(t: &mut tokio_rustls::client::TlsStream<TcpStream>) -> Option<Gone> {
    use std::io::Read as _;
    let (sock, conn) = t.get_mut();
    match tcp_state(sock) {
        Ok(TCP_ESTABLISHED) | Ok(TCP_CLOSE_WAIT) => {}
        _ => return Some(Gone::Reset),
    }
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: `buf` is valid for its length during the call; the fd is
        // owned by `sock`.
        let n = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n == 0 {
            return Some(Gone::Closed);
        }
        if n < 0 {
            match std::io::Error::last_os_error().kind() {
                std::io::ErrorKind::WouldBlock => break,
                std::io::ErrorKind::Interrupted => continue,
                _ => return Some(Gone::Reset),
            }
        }
        let mut rd: &[u8] = &buf[..n as usize];
        while !rd.is_empty() {
            match conn.read_tls(&mut rd) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => return Some(Gone::Reset),
            }
            if conn.process_new_packets().is_err() {
                return Some(Gone::Reset);
            }
        }
    }
    // A close_notify reads as end of stream; data from a syslog receiver
    // (it never sends any) is ignored.
    match conn.reader().read(&mut buf) {
        Ok(0) => Some(Gone::Closed),
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
        Err(_) => Some(Gone::Closed),
    }
}

impl Sink for SyslogSink {
    async fn deliver(&mut self, batch: &Batch) -> Result<(), DeliveryError> {
        if let Err(e) = self.ensure_connected().await {
            self.drop_conn(true);
            return Err(DeliveryError::transient(format!("{}: {e}", self.address)));
        }
        // Messages a reset connection may have lost go first (again).
        let replayed = self.replay.len();
        let msgs: Vec<String> = self
            .replay
            .iter()
            .cloned()
            .chain(batch.alerts.iter().map(|a| self.render(a)))
            .collect();
        for msg in &msgs {
            if let Err(e) = self.send(msg).await {
                self.drop_conn(true);
                let m = format!("{}: {e}", self.address);
                // Too long for a datagram: retrying cannot help.
                if e.raw_os_error() == Some(libc::EMSGSIZE) {
                    return Err(DeliveryError::permanent(format!(
                        "{m} (lower max_message_size)"
                    )));
                }
                return Err(DeliveryError::transient(m));
            }
        }
        if let Err(e) = self.acked().await {
            // Whatever the peer did not acknowledge is re-sent, with the
            // rest of the batch, on a new connection.
            self.drop_conn(true);
            tracing::debug!(address = %self.address, error = %e, "syslog batch not acknowledged");
            return Err(DeliveryError::transient(format!("{}: {e}", self.address)));
        }
        if replayed > 0 {
            tracing::warn!(
                address = %self.address,
                messages = replayed,
                "syslog: the receiver reset the connection; re-sent the messages it had acknowledged but may not have read (duplicates possible)"
            );
            self.replay.clear();
        }
        if self.is_stream() {
            self.remember(msgs);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;
    use vigil_engine::Priority;

    fn alert() -> Alert {
        let mut f = Map::new();
        f.insert("proc.name".into(), Json::from("ba\"sh]"));
        f.insert("proc.pid".into(), Json::from(42));
        Alert {
            time: 1_795_000_000_123_456_789,
            rule: Arc::from("Shell spawned"),
            priority: Priority::Critical,
            output: "shell ran".into(),
            output_fields: f,
            tags: Arc::from(vec!["a".to_string(), "b".to_string()]),
            source: "syscall",
            hostname: Arc::from("web 1"),
        }
    }

    #[test]
    fn rfc5424_layout() {
        let m = format_rfc5424(
            &alert(),
            Facility(10),
            "fallback",
            "vigil",
            7,
            SyslogPayload::Text,
        );
        assert_eq!(
            m,
            "<82>1 2026-11-18T11:06:40.123456Z web1 vigil 7 alert [vigil@32473 rule=\"Shell spawned\" \
             priority=\"Critical\" source=\"syscall\" tags=\"a,b\" proc.name=\"ba\\\"sh\\]\" proc.pid=\"42\"] shell ran"
        );
    }

    #[test]
    fn rfc3164_layout() {
        let mut a = alert();
        a.hostname = Arc::from("");
        let m = format_rfc3164(&a, Facility(1), "h", "vigil", 7, SyslogPayload::Text);
        assert_eq!(m, "<10>Nov 18 11:06:40 h vigil[7]: shell ran");
    }

    #[test]
    fn truncates_on_char_boundary() {
        assert_eq!(truncate("aé".to_string(), 2), "a");
        assert_eq!(truncate("abc".to_string(), 5), "abc");
    }
}
