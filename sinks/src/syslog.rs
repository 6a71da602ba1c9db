//! The syslog sink: an own RFC 5424 (or RFC 3164) writer over tokio sockets:
//! unix datagram (`/dev/log`), UDP, or TCP with RFC 6587 octet-counting
//! framing (`<len> <msg>`) or LF framing. Structured data
//! `[vigil@32473 rule=".." priority=".." ...]` carries the rule and key
//! fields. A failed send drops the connection; the router's retry backoff
//! paces the reconnects. Before each TCP write the socket is checked for a
//! peer close, so a restarted receiver does not swallow a message.

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
fn peer_closed(s: &TcpStream, data_means_closed: bool) -> bool {
    use std::os::fd::AsRawFd;
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
    if n == 0 || (n > 0 && data_means_closed) {
        return true;
    }
    if n < 0 {
        let e = std::io::Error::last_os_error();
        return e.kind() != std::io::ErrorKind::WouldBlock
            && e.kind() != std::io::ErrorKind::Interrupted;
    }
    false
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
}

pub(crate) fn build(
    cfg: &SyslogConfig,
    hostname: &Arc<str>,
) -> Result<(SyslogSink, BatchPolicy), SinkError> {
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
        },
        BatchPolicy {
            window: Duration::ZERO,
            max: 1,
            count_rest: false,
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
                    Ok(Conn::Tcp(s))
                }
                SyslogAddress::Tls(a) => {
                    let (connector, name) = self
                        .tls
                        .as_ref()
                        .ok_or_else(|| std::io::Error::other("TLS not configured"))?;
                    let s = TcpStream::connect(a.as_str()).await?;
                    s.set_nodelay(true)?;
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

    async fn send(&mut self, msg: &str) -> std::io::Result<()> {
        // A peer that closed (FIN) reads as 0 bytes: reconnect rather than
        // write into a dead connection (that message would be lost). A syslog
        // receiver never talks on a TLS connection: readable data there is
        // its close_notify.
        let closed = match &self.conn {
            Some(Conn::Tcp(s)) => peer_closed(s, false),
            Some(Conn::Tls(t)) => peer_closed(t.get_ref().0, true),
            _ => false,
        };
        if closed {
            tracing::debug!(address = %self.address, "syslog peer closed, reconnecting");
            self.conn = None;
        }
        if self.conn.is_none() {
            self.conn = Some(self.connect().await?);
            tracing::debug!(address = %self.address, "syslog connected");
        }
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
}

impl Sink for SyslogSink {
    async fn deliver(&mut self, batch: &Batch) -> Result<(), DeliveryError> {
        for a in &batch.alerts {
            let msg = self.render(a);
            if let Err(e) = self.send(&msg).await {
                self.conn = None;
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
