//! The daemon's config file (YAML, default `/etc/vigil/vigil.yaml`): rule
//! paths, alert outputs (`vigil_sinks::OutputsConfig`, documented key by key
//! in `sinks/CONFIG.md`), metrics address and the pipeline's bounds. Unknown
//! keys and bad values are errors that name the file, the key and the line.
//! Command-line flags override what the file says.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use vigil_sinks::config::{de_duration, Format};
use vigil_sinks::nats_config::NatsConnection;
use vigil_sinks::OutputsConfig;

/// Where `vigil run` looks when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/vigil/vigil.yaml";

/// The whole config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Rule files or directories (their `*.yaml` in name order), loaded in
    /// this order. Relative paths are relative to the config file's directory.
    /// `nats-kv://BUCKET[/PREFIX]` reads rule files from a NATS KV bucket
    /// (see `crate::fleet`).
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    /// The NATS connection (servers, credentials, TLS) used by
    /// `outputs.nats` and `nats-kv://` rule sources.
    #[serde(default)]
    pub nats: Option<NatsConnection>,
    /// Alert outputs; absent = JSON lines on stdout.
    #[serde(default = "default_outputs")]
    pub outputs: OutputsConfig,
    /// Serve Prometheus metrics on this address (`127.0.0.1:9376`).
    #[serde(default)]
    pub metrics: Option<SocketAddr>,
    /// The `hostname` put in alerts; default: the system's host name.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Capacity of the ring buffer -> pipeline queue (records).
    #[serde(default = "default_event_queue")]
    pub event_queue: usize,
    /// Maximum processes tracked in the process table.
    #[serde(default = "default_max_procs")]
    pub max_procs: usize,
    /// Watch 32-bit (`int 0x80` / compat) syscalls too. Off saves ~100 ns on
    /// every syscall of the host but lets a 32-bit binary (or a 64-bit one
    /// issuing `int 0x80`) open files and connect unseen.
    #[serde(default = "default_true")]
    pub compat_syscalls: bool,
    /// How long SIGTERM waits for the sinks to flush queued alerts.
    #[serde(default = "default_shutdown_timeout", deserialize_with = "de_duration")]
    pub shutdown_timeout: Duration,
}

fn default_outputs() -> OutputsConfig {
    OutputsConfig::stdout_only(Format::Json)
}
fn default_true() -> bool {
    true
}
fn default_event_queue() -> usize {
    65_536
}
fn default_max_procs() -> usize {
    65_536
}
fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(5)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rules: Vec::new(),
            outputs: default_outputs(),
            nats: None,
            metrics: None,
            hostname: None,
            event_queue: default_event_queue(),
            max_procs: default_max_procs(),
            compat_syscalls: true,
            shutdown_timeout: default_shutdown_timeout(),
        }
    }
}

impl Config {
    /// Reads and checks `path`. Errors name the file, the key and the line.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        Config::parse(&text, path)
    }

    /// `--config` if given, else [`DEFAULT_PATH`] when it exists, else the
    /// defaults. Returns the path actually read.
    pub fn load_or_default(explicit: Option<&Path>) -> anyhow::Result<(Config, Option<PathBuf>)> {
        if let Some(p) = explicit {
            return Ok((Config::load(p)?, Some(p.to_path_buf())));
        }
        let d = Path::new(DEFAULT_PATH);
        if d.exists() {
            return Ok((Config::load(d)?, Some(d.to_path_buf())));
        }
        Ok((Config::default(), None))
    }

    /// Parses config text; `origin` names the file in errors and anchors
    /// relative rule paths.
    pub fn parse(text: &str, origin: &Path) -> anyhow::Result<Config> {
        let mut cfg: Config = if text.trim().is_empty() || is_only_comments(text) {
            Config::default()
        } else {
            serde_yaml_ng::from_str(text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", origin.display()))?
        };
        let base = origin.parent().unwrap_or(Path::new("."));
        for r in &mut cfg.rules {
            // `nats-kv://BUCKET` is a rules source, not a path (see crate::fleet).
            if r.is_relative() && !r.starts_with("nats-kv:") {
                *r = base.join(&*r);
            }
        }
        cfg.outputs.nats_connection = cfg.nats.clone();
        cfg.check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", origin.display()))?;
        Ok(cfg)
    }

    /// Checks that span keys (serde checked each value already).
    fn check(&self) -> Result<(), String> {
        if self.outputs.is_empty() {
            return Err(
                "outputs: no sink configured (give at least one of stdout, file, syslog, webhook, email, nats)"
                    .into(),
            );
        }
        if let Some(n) = &self.nats {
            n.check().map_err(|e| e.to_string())?;
        }
        if self.outputs.nats.is_some() && self.nats.is_none() {
            return Err(
                "outputs.nats: needs the top-level `nats:` block (servers, credentials, TLS)"
                    .into(),
            );
        }
        if self.event_queue == 0 {
            return Err("event_queue: must be at least 1".into());
        }
        if self.max_procs == 0 {
            return Err("max_procs: must be at least 1".into());
        }
        if let Some(h) = &self.hostname {
            if h.trim().is_empty() {
                return Err("hostname: must not be empty".into());
            }
        }
        Ok(())
    }
}

fn is_only_comments(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#') || l == "---")
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_sinks::config::SyslogAddress;

    fn parse(y: &str) -> anyhow::Result<Config> {
        Config::parse(y, Path::new("/etc/vigil/vigil.yaml"))
    }

    #[test]
    fn documented_example_loads() {
        let c = parse(
            r#"
rules: [/etc/vigil/rules.d, local.yaml]
metrics: 127.0.0.1:9376
shutdown_timeout: 10s
outputs:
  stdout:  { format: json }
  file:    { path: /var/log/vigil/alerts.jsonl }
  syslog:  { address: "unix:///dev/log" }
  webhook: { url: "https://hooks.example.invalid/vigil", headers: {}, secret_env: VIGIL_WEBHOOK_SECRET }
  email:   { smtp: "smtp://mail.example.invalid:587", tls: starttls, from: "vigil@example.invalid", to: ["sec@example.invalid"], username_env: SMTP_USER, password_env: SMTP_PASS }
  dedup:   { window: 60s, by: [proc.name, proc.cmdline] }
"#,
        )
        .unwrap();
        assert_eq!(
            c.rules,
            vec![
                PathBuf::from("/etc/vigil/rules.d"),
                PathBuf::from("/etc/vigil/local.yaml")
            ]
        );
        assert_eq!(c.metrics, Some("127.0.0.1:9376".parse().unwrap()));
        assert_eq!(c.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(
            c.outputs.syslog.unwrap().address,
            SyslogAddress::Unix("/dev/log".into())
        );
        assert_eq!(c.outputs.dedup.unwrap().window, Duration::from_secs(60));
        assert_eq!(c.event_queue, 65_536);
    }

    #[test]
    fn empty_file_means_defaults() {
        let c = parse("# nothing here\n").unwrap();
        assert_eq!(c, Config::default());
        assert!(c.outputs.stdout.is_some());
    }

    #[test]
    fn errors_name_file_key_and_line() {
        let e = parse("rules: [/x]\noutputs:\n  stdout: { format: json }\n  sylog: {}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/etc/vigil/vigil.yaml"), "{e}");
        assert!(e.contains("sylog") && e.contains("line 4"), "{e}");
        let e = parse("outputs:\n  stdout:\n    format: xml\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("xml") && e.contains("line 3"), "{e}");
        let e = parse("metrics: not-an-address\n").unwrap_err().to_string();
        assert!(e.contains("metrics") || e.contains("line 1"), "{e}");
        let e = parse("outputs: {}\n").unwrap_err().to_string();
        assert!(e.contains("outputs: no sink configured"), "{e}");
        let e = parse("shutdown_timeout: forever\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("forever"), "{e}");
        let e = parse("rule: [/x]\n").unwrap_err().to_string();
        assert!(e.contains("unknown field `rule`"), "{e}");
    }

    #[test]
    fn nats_block_serves_the_nats_output() {
        let c = parse(
            "nats:\n  servers: [\"nats://10.0.0.1:4222\", \"nats://10.0.0.2:4222\"]\n  token: { env: NATS_TOKEN }\noutputs:\n  nats: {}\n",
        )
        .unwrap();
        let n = c.nats.clone().unwrap();
        assert_eq!(n.servers.len(), 2);
        assert_eq!(c.outputs.nats_connection, Some(n));
        assert!(c.outputs.nats.is_some());
        let e = parse("outputs:\n  nats: {}\n").unwrap_err().to_string();
        assert!(
            e.contains("outputs.nats: needs the top-level `nats:` block"),
            "{e}"
        );
        let e = parse("nats:\n  servers: [a]\n  token: { env: T }\n  creds: { file: /c }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("nats.auth"), "{e}");
        let e = parse("nats:\n  servers: [\"http://a\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("nats: servers: `http://a`") && e.contains("line 2"),
            "{e}"
        );
    }

    #[test]
    fn shipped_default_config_loads() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/vigil.yaml");
        let c = Config::load(&p).unwrap();
        assert_eq!(
            c.rules,
            vec![
                PathBuf::from("/usr/share/vigil/rules"),
                PathBuf::from("/etc/vigil/rules.d")
            ]
        );
        assert!(c.outputs.stdout.is_some() && c.outputs.file.is_some());
    }

    #[test]
    fn load_reads_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vigil.yaml");
        std::fs::write(
            &p,
            "rules: [rules.d]\noutputs: { stdout: { format: text } }\n",
        )
        .unwrap();
        let c = Config::load(&p).unwrap();
        assert_eq!(c.rules, vec![dir.path().join("rules.d")]);
        assert_eq!(c.outputs.stdout.unwrap().format, Format::Text);
        let e = Config::load(&dir.path().join("missing.yaml")).unwrap_err();
        assert!(format!("{e:#}").contains("missing.yaml"));
    }
}
