//! `outputs.syslog`: address, message format, facility, framing.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::Deserializer;
use serde::Deserialize;
use vigil_engine::Priority;

use crate::de::{de_duration, de_str_with};
use crate::de::{de_opt_priority, de_queue_size, default_queue_size};
use crate::delivery::RetryConfig;

/// Where syslog messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogAddress {
    /// A unix datagram socket (`unix:///dev/log`).
    Unix(PathBuf),
    /// `udp://host:port`
    Udp(String),
    /// `tcp://host:port` (RFC 6587 framing)
    Tcp(String),
    /// `tls://host:port` (RFC 5425: TLS, octet counting)
    Tls(String),
}

impl SyslogAddress {
    /// The host part of a udp/tcp/tls address (brackets of an IPv6 literal removed).
    pub fn host(&self) -> Option<&str> {
        match self {
            SyslogAddress::Unix(_) => None,
            SyslogAddress::Udp(a) | SyslogAddress::Tcp(a) | SyslogAddress::Tls(a) => {
                let h = a.rsplit_once(':').map_or(a.as_str(), |(h, _)| h);
                Some(h.trim_start_matches('[').trim_end_matches(']'))
            }
        }
    }
}

impl std::str::FromStr for SyslogAddress {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (scheme, rest) = s.split_once("://").ok_or_else(|| {
            format!("`{s}`: expected unix:///path, udp://host:port or tcp://host:port")
        })?;
        let host_port = |rest: &str| -> Result<String, String> {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| format!("`{s}`: missing port"))?;
            if host.is_empty() {
                return Err(format!("`{s}`: missing host"));
            }
            port.parse::<u16>()
                .map_err(|_| format!("`{s}`: bad port `{port}`"))?;
            Ok(rest.to_string())
        };
        match scheme {
            "unix" if rest.starts_with('/') => Ok(SyslogAddress::Unix(PathBuf::from(rest))),
            "unix" => Err(format!("`{s}`: unix socket path must be absolute")),
            "udp" => host_port(rest).map(SyslogAddress::Udp),
            "tcp" => host_port(rest).map(SyslogAddress::Tcp),
            "tls" => host_port(rest).map(SyslogAddress::Tls),
            other => Err(format!(
                "`{s}`: unknown scheme `{other}` (expected unix, udp, tcp or tls)"
            )),
        }
    }
}

impl fmt::Display for SyslogAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyslogAddress::Unix(p) => write!(f, "unix://{}", p.display()),
            SyslogAddress::Udp(a) => write!(f, "udp://{a}"),
            SyslogAddress::Tcp(a) => write!(f, "tcp://{a}"),
            SyslogAddress::Tls(a) => write!(f, "tls://{a}"),
        }
    }
}

impl<'de> Deserialize<'de> for SyslogAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str_with(d, "unix:///path, udp://host:port or tcp://host:port", |s| {
            s.parse()
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogFormat {
    #[default]
    Rfc5424,
    Rfc3164,
}

/// What goes in the syslog MSG part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogPayload {
    /// The rendered rule output.
    #[default]
    Text,
    /// The alert's JSON object.
    Json,
}

/// TCP framing (RFC 6587).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TcpFraming {
    /// `<length> <message>` (RFC 6587 3.4.1); what RFC 5425 mandates.
    #[default]
    OctetCounting,
    /// Message followed by LF (legacy receivers).
    NonTransparent,
}

/// Syslog facility (RFC 5424 codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facility(pub u8);

impl Facility {
    pub const NAMES: [&'static str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2",
        "local3", "local4", "local5", "local6", "local7",
    ];
}

impl Default for Facility {
    fn default() -> Self {
        Facility(10) // authpriv: security alerts, like sshd/sudo
    }
}

impl<'de> Deserialize<'de> for Facility {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str_with(d, "a syslog facility name", |s| {
            let l = s.to_ascii_lowercase();
            let l = match l.as_str() {
                "security" => "auth",
                other => other,
            };
            Facility::NAMES
                .iter()
                .position(|n| *n == l)
                .map(|i| Facility(i as u8))
                .ok_or_else(|| {
                    format!(
                        "unknown facility `{s}` (expected one of {})",
                        Facility::NAMES.join(", ")
                    )
                })
        })
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    #[serde(default = "default_syslog_address")]
    pub address: SyslogAddress,
    #[serde(default)]
    pub format: SyslogFormat,
    #[serde(default)]
    pub facility: Facility,
    #[serde(default)]
    pub payload: SyslogPayload,
    #[serde(default)]
    pub framing: TcpFraming,
    /// APP-NAME / TAG.
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// Messages longer than this (bytes) are truncated at a character boundary.
    #[serde(
        default = "default_max_message_size",
        deserialize_with = "de_queue_size"
    )]
    pub max_message_size: usize,
    /// Connect and write timeout.
    #[serde(default = "default_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// `tls://` only: PEM file with CA certificates trusted in addition to the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,

    #[serde(default, deserialize_with = "de_opt_priority")]
    pub min_priority: Option<Priority>,
    #[serde(default = "default_queue_size", deserialize_with = "de_queue_size")]
    pub queue_size: usize,
    #[serde(default)]
    pub retry: RetryConfig,
}

fn default_syslog_address() -> SyslogAddress {
    SyslogAddress::Unix(PathBuf::from("/dev/log"))
}
fn default_app_name() -> String {
    "vigil".to_string()
}
fn default_max_message_size() -> usize {
    8192
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
