//! `outputs.email`: relay, TLS mode, addresses, credentials, digests.

use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;
use vigil_engine::Priority;

use crate::de::{de_duration, de_str_with};
use crate::de::{de_opt_priority, de_queue_size, default_queue_size};
use crate::delivery::RetryConfig;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (only for a local relay).
    None,
    /// Plain connection upgraded with STARTTLS (required, not opportunistic).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// `smtp://host[:port]` (port defaults: 25 for none, 587 for starttls, 465 for tls).
    #[serde(deserialize_with = "de_smtp_url")]
    pub smtp: String,
    #[serde(default)]
    pub tls: SmtpTls,
    #[serde(deserialize_with = "de_mailbox")]
    pub from: String,
    #[serde(deserialize_with = "de_mailboxes")]
    pub to: Vec<String>,
    #[serde(default)]
    pub username_env: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    /// Allow `username_env`/`password_env` with `tls: none` to a relay that
    /// is not on loopback (the password then crosses the network in
    /// cleartext). Off by default: such a config is refused at start.
    #[serde(default)]
    pub allow_plaintext_auth: bool,
    /// Alerts arriving within this window after the first one go out as one
    /// digest mail. `0s` sends one mail per alert.
    #[serde(default = "default_digest_window", deserialize_with = "de_duration")]
    pub digest_window: Duration,
    /// Mail the first alert of a quiet period at once, before its digest
    /// window opens (default). `false`: digests only, every mail waits for
    /// its window.
    #[serde(default = "default_immediate_first")]
    pub immediate_first: bool,
    /// Alerts listed in full in one mail; the rest of a digest is summarised
    /// as counts per rule.
    #[serde(default = "default_max_listed", deserialize_with = "de_queue_size")]
    pub max_alerts_per_mail: usize,
    /// SMTP command timeout.
    #[serde(default = "default_smtp_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// PEM file with CA certificates trusted in addition to the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,

    #[serde(default, deserialize_with = "de_opt_priority")]
    pub min_priority: Option<Priority>,
    #[serde(default = "default_queue_size", deserialize_with = "de_queue_size")]
    pub queue_size: usize,
    #[serde(default)]
    pub retry: RetryConfig,
}

fn default_immediate_first() -> bool {
    true
}
fn default_digest_window() -> Duration {
    Duration::from_secs(60)
}
fn default_max_listed() -> usize {
    50
}
fn default_smtp_timeout() -> Duration {
    Duration::from_secs(30)
}
/// `smtp://host[:port]` -> (host, optional port).
pub fn parse_smtp_url(s: &str) -> Result<(String, Option<u16>), String> {
    let rest = s
        .strip_prefix("smtp://")
        .or_else(|| s.strip_prefix("smtps://"))
        .ok_or_else(|| format!("`{s}`: expected smtp://host[:port]"))?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') || rest.contains('@') {
        return Err(format!("`{s}`: expected smtp://host[:port]"));
    }
    // [v6]:port, host:port, host
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("`{s}`: unclosed ["))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(format!("`{s}`: expected smtp://host[:port]")),
        };
        (h.to_string(), port)
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (rest.to_string(), None),
        }
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| format!("`{s}`: bad port `{p}`"))
        })
        .transpose()?;
    if host.is_empty() {
        return Err(format!("`{s}`: missing host"));
    }
    Ok((host, port))
}

/// True for `localhost` (and `*.localhost`) and loopback IP literals: a
/// relay on this host, where plaintext SMTP never leaves the machine. No
/// name is resolved.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if h == "localhost" || h.ends_with(".localhost") {
        return true;
    }
    h.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn de_smtp_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de_str_with(d, "smtp://host[:port]", |s| {
        parse_smtp_url(s)?;
        Ok(s.to_string())
    })
}

fn check_mailbox(s: &str) -> Result<String, String> {
    s.parse::<lettre::message::Mailbox>()
        .map(|_| s.to_string())
        .map_err(|e| format!("`{s}`: not a mail address ({e})"))
}

fn de_mailbox<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de_str_with(d, "a mail address", check_mailbox)
}

struct Mailbox(String);

impl<'de> Deserialize<'de> for Mailbox {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_mailbox(d).map(Mailbox)
    }
}

fn de_mailboxes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<Mailbox>::deserialize(d)?;
    if v.is_empty() {
        return Err(de::Error::custom("to: needs at least one recipient"));
    }
    Ok(v.into_iter().map(|m| m.0).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        assert_eq!(
            parse_smtp_url("smtp://mail.x:2525").unwrap(),
            ("mail.x".to_string(), Some(2525))
        );
        assert_eq!(
            parse_smtp_url("smtp://[::1]:25").unwrap(),
            ("::1".to_string(), Some(25))
        );
        assert_eq!(parse_smtp_url("smtp://h").unwrap(), ("h".to_string(), None));
        assert!(parse_smtp_url("http://h").is_err());
        assert!(parse_smtp_url("smtp://h:x").is_err());
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "LOCALHOST.",
            "mail.localhost",
            "127.0.0.1",
            "127.3.2.1",
            "::1",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "mail.example.com",
            "10.0.0.1",
            "::2",
            "localhost.example.com",
            "0.0.0.0",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
