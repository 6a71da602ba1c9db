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

pub mod config;
mod message;
mod socket;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket, UnixDatagram};

use crate::delivery::{Batch, BatchPolicy, Sink};
use crate::encode::Encoded;
use crate::error::{DeliveryError, SinkError};
use config::{Facility, SyslogAddress, SyslogConfig, SyslogFormat, SyslogPayload, TcpFraming};
pub use message::{format_rfc3164, format_rfc5424, pri, Header, SD_ID};
use message::{frame, truncate};
use socket::{limit_sndbuf, tcp_gone, tls_gone, wait_acked, Gone};

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
        BatchPolicy::queued(max),
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

    fn render(&self, a: &Encoded) -> String {
        let h = Header {
            facility: self.facility,
            hostname: &self.hostname,
            app: &self.app,
            pid: self.pid,
            payload: self.payload,
        };
        let m = match self.format {
            SyslogFormat::Rfc5424 => format_rfc5424(a, &h),
            SyslogFormat::Rfc3164 => format_rfc3164(a, &h),
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
