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
use vigil_engine::ruleset::{RuleInfo, RuleSet};
use vigil_engine::Priority;
use vigil_sinks::config::{de_duration, Format};
use vigil_sinks::nats_config::NatsConnection;
use vigil_sinks::OutputsConfig;

/// Environment variables recorded in `proc.env` unless the config's
/// `proc_env` says otherwise.
pub const DEFAULT_ENV: &[&str] = &[
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "GLIBC_TUNABLES",
];
/// At most this many names in `proc_env`, each at most `ENV_NAME_MAX` bytes.
pub const ENV_NAMES_MAX: usize = 16;
pub const ENV_NAME_MAX: usize = 64;

/// Checks the `proc_env` names: environment variable names (letters,
/// digits, `_`), bounded in number and length.
pub fn check_env_names(names: &[String]) -> Result<(), String> {
    if names.len() > ENV_NAMES_MAX {
        return Err(format!(
            "{} names; at most {ENV_NAMES_MAX} (only named variables are recorded, never the whole environment)",
            names.len()
        ));
    }
    for n in names {
        if n.is_empty()
            || n.len() > ENV_NAME_MAX
            || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(format!(
                "`{n}` is not a variable name (letters, digits and _, at most {ENV_NAME_MAX} bytes)"
            ));
        }
    }
    Ok(())
}

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
    /// Which loaded rules run (`--min-priority`, `-T`, `-t`, `-D`).
    #[serde(default)]
    pub select: Select,
    /// Environment variables recorded at exec in `proc.env` (by exact name;
    /// never the whole environment).
    #[serde(default = "default_proc_env")]
    pub proc_env: Vec<String>,
}

/// Rule selection, applied to every rule set loaded (at start and on each
/// reload): a rule runs when the file enables it and nothing here disables
/// it. Selection only disables; it never turns on a rule a file disabled.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Select {
    /// Disable rules less severe than this (`--min-priority`).
    #[serde(default, deserialize_with = "de_opt_priority")]
    pub min_priority: Option<Priority>,
    /// Disable rules carrying any of these tags (`-T TAG`).
    #[serde(default)]
    pub disable_tags: Vec<String>,
    /// When non-empty, disable rules carrying none of these tags (`-t TAG`).
    #[serde(default)]
    pub enable_tags: Vec<String>,
    /// Disable rules whose name contains this text, or matches it as a glob
    /// when it has `*`, `?` or `[` (`-D NAME`).
    #[serde(default)]
    pub disable_rules: Vec<String>,
}

impl Select {
    /// Whether the selection disables `rule`.
    pub fn disables(&self, rule: &RuleInfo) -> bool {
        let has = |tags: &[String]| rule.tags.iter().any(|t| tags.contains(t));
        self.min_priority.is_some_and(|p| rule.priority > p)
            || has(&self.disable_tags)
            || (!self.enable_tags.is_empty() && !has(&self.enable_tags))
            || self
                .disable_rules
                .iter()
                .any(|pat| name_matches(pat, &rule.name))
    }

    /// Applies the selection to a loaded rule set; returns the names it disabled.
    pub fn apply(&self, rules: &mut RuleSet) -> Vec<String> {
        if *self == Select::default() {
            return Vec::new();
        }
        rules.disable_where(|r| self.disables(r))
    }
}

/// The selection flags `run` and `explain` share; each adds to the config
/// file's `select:` block.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SelectArgs {
    /// Disable rules less severe than PRIORITY (emergency .. debug) [config: select.min_priority].
    #[arg(long, value_name = "PRIORITY", value_parser = parse_priority)]
    pub min_priority: Option<Priority>,
    /// Disable rules tagged TAG; repeatable [config: select.disable_tags].
    #[arg(short = 'T', value_name = "TAG")]
    pub disable_tag: Vec<String>,
    /// Run only rules tagged TAG (and enabled in their file); repeatable [config: select.enable_tags].
    #[arg(short = 't', value_name = "TAG")]
    pub enable_tag: Vec<String>,
    /// Disable rules whose name contains NAME, or matches it as a glob
    /// (`*`, `?`, `[..]`); repeatable [config: select.disable_rules].
    #[arg(short = 'D', value_name = "NAME")]
    pub disable_rule: Vec<String>,
}

impl SelectArgs {
    /// Adds the flags to `sel` (`--min-priority` replaces the file's).
    pub fn merge_into(&self, sel: &mut Select) {
        if self.min_priority.is_some() {
            sel.min_priority = self.min_priority;
        }
        sel.disable_tags.extend(self.disable_tag.iter().cloned());
        sel.enable_tags.extend(self.enable_tag.iter().cloned());
        sel.disable_rules.extend(self.disable_rule.iter().cloned());
    }
}

/// Priority names as rule files and the outputs' `min_priority` take them
/// (`warning`, Falco's `Informational`, `warn`, any case).
fn parse_priority(s: &str) -> Result<Priority, String> {
    s.parse::<Priority>().map_err(|e| e.to_string())
}

fn de_opt_priority<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Priority>, D::Error> {
    let s = String::deserialize(d)?;
    parse_priority(&s)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// `-D` matching: a glob when `pat` has glob characters, else a substring.
fn name_matches(pat: &str, name: &str) -> bool {
    if pat.contains(['*', '?', '[']) {
        globset::Glob::new(pat).is_ok_and(|g| g.compile_matcher().is_match(name))
    } else {
        name.contains(pat)
    }
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
fn default_proc_env() -> Vec<String> {
    DEFAULT_ENV.iter().map(|s| s.to_string()).collect()
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
            select: Select::default(),
            proc_env: default_proc_env(),
        }
    }
}

impl Config {
    /// Reads and checks `path`. Errors name the file, the key and the line.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        Config::load_with(path, &[])
    }

    /// [`Config::load`] with `-o key.path=value` overrides applied on top.
    pub fn load_with(path: &Path, overrides: &[Override]) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        Config::parse_with(&text, path, overrides)
    }

    /// `--config` if given, else [`DEFAULT_PATH`] when it exists, else
    /// `no_file` (the settings of a run without a config file), each with
    /// `overrides` applied. Returns the path actually read.
    pub fn load_or_default(
        explicit: Option<&Path>,
        overrides: &[Override],
        no_file: &str,
    ) -> anyhow::Result<(Config, Option<PathBuf>)> {
        if let Some(p) = explicit {
            return Ok((Config::load_with(p, overrides)?, Some(p.to_path_buf())));
        }
        let d = Path::new(DEFAULT_PATH);
        if d.exists() {
            return Ok((Config::load_with(d, overrides)?, Some(d.to_path_buf())));
        }
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let cfg = Config::parse_with(no_file, &cwd.join("(no config file)"), overrides)?;
        Ok((cfg, None))
    }

    /// Parses config text; `origin` names the file in errors and anchors
    /// relative rule paths.
    #[cfg(test)]
    pub fn parse(text: &str, origin: &Path) -> anyhow::Result<Config> {
        Config::parse_with(text, origin, &[])
    }

    /// [`Config::parse`] with `-o` overrides applied to the parsed YAML before
    /// it is checked (so an override is checked like the file's own keys).
    pub fn parse_with(text: &str, origin: &Path, overrides: &[Override]) -> anyhow::Result<Config> {
        let blank = text.trim().is_empty() || is_only_comments(text);
        let mut cfg: Config = if overrides.is_empty() {
            if blank {
                Config::default()
            } else {
                serde_yaml_ng::from_str(text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", origin.display()))?
            }
        } else {
            let mut doc: serde_yaml_ng::Value = if blank {
                serde_yaml_ng::Value::Mapping(Default::default())
            } else {
                serde_yaml_ng::from_str(text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", origin.display()))?
            };
            for o in overrides {
                o.apply(&mut doc)
                    .map_err(|e| anyhow::anyhow!("{}: -o {}: {e}", origin.display(), o.key))?;
            }
            serde_yaml_ng::from_value(doc)
                .map_err(|e| anyhow::anyhow!("{} with the -o overrides: {e}", origin.display()))?
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
        check_env_names(&self.proc_env).map_err(|e| format!("proc_env: {e}"))?;
        if let Some(h) = &self.hostname {
            if h.trim().is_empty() {
                return Err("hostname: must not be empty".into());
            }
        }
        Ok(())
    }
}

/// One `-o key.path=value` override: `value` is read as YAML (`true`, `10s`,
/// `[a, b]`, `{ format: json }`), so it takes the same forms as the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub key: String,
    pub value: serde_yaml_ng::Value,
}

impl std::str::FromStr for Override {
    type Err = String;
    fn from_str(s: &str) -> Result<Override, String> {
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}`: expected key.path=value"))?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(format!("`{s}`: empty key or key part"));
        }
        let value = serde_yaml_ng::from_str(value)
            .unwrap_or_else(|_| serde_yaml_ng::Value::String(value.to_string()));
        Ok(Override {
            key: key.to_string(),
            value,
        })
    }
}

impl Override {
    /// Sets the key in `doc`, creating the mappings on the way.
    fn apply(&self, doc: &mut serde_yaml_ng::Value) -> Result<(), String> {
        use serde_yaml_ng::Value;
        let mut at = doc;
        let parts: Vec<&str> = self.key.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            if at.is_null() {
                *at = Value::Mapping(Default::default());
            }
            let Value::Mapping(m) = at else {
                return Err(format!("`{}` is not a mapping", parts[..i].join(".")));
            };
            let k = Value::String((*part).to_string());
            if i + 1 == parts.len() {
                m.insert(k, self.value.clone());
                return Ok(());
            }
            at = m.entry(k).or_insert(Value::Null);
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
    fn proc_env_names_are_checked() {
        assert!(Config::default()
            .proc_env
            .contains(&"LD_PRELOAD".to_string()));
        let c = parse("proc_env: [LD_AUDIT, MY_VAR2]\n").unwrap();
        assert_eq!(c.proc_env, ["LD_AUDIT", "MY_VAR2"]);
        assert!(parse("proc_env: []\n").unwrap().proc_env.is_empty());
        let e = parse("proc_env: [\"LD_PRELOAD=x\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("proc_env") && e.contains("`LD_PRELOAD=x`"),
            "{e}"
        );
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

    #[test]
    fn overrides_set_nested_keys_as_yaml() {
        let o: Vec<Override> = [
            "outputs.webhook.url=http://127.0.0.1:9/x",
            "select.min_priority=warning",
            "select.disable_tags=[network, k8s]",
            "shutdown_timeout=10s",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let c = Config::parse_with(
            "outputs:\n  webhook: { url: \"https://file.invalid/\" }\n  stdout: { format: text }\n",
            Path::new("/etc/vigil/vigil.yaml"),
            &o,
        )
        .unwrap();
        assert_eq!(
            c.outputs.webhook.as_ref().unwrap().url,
            "http://127.0.0.1:9/x"
        );
        assert!(c.outputs.stdout.is_some(), "siblings stay");
        assert_eq!(c.select.min_priority, Some(Priority::Warning));
        assert_eq!(c.select.disable_tags, vec!["network", "k8s"]);
        assert_eq!(c.shutdown_timeout, Duration::from_secs(10));
        // A bad override is checked like the file's keys and named.
        let bad: Override = "outputs.stdout.format=xml".parse().unwrap();
        let e = Config::parse_with("", Path::new("/x.yaml"), &[bad]).unwrap_err();
        assert!(format!("{e:#}").contains("xml"), "{e:#}");
        let bad: Override = "shutdown_timeout.x=1".parse().unwrap();
        let e =
            Config::parse_with("shutdown_timeout: 5s\n", Path::new("/x.yaml"), &[bad]).unwrap_err();
        assert!(format!("{e:#}").contains("-o shutdown_timeout.x"), "{e:#}");
        assert!("novalue".parse::<Override>().is_err());
        assert!("a..b=1".parse::<Override>().is_err());
    }

    #[test]
    fn selection_by_priority_tag_and_name() {
        let rule = |name: &str, p: Priority, tags: &[&str]| RuleInfo {
            name: name.into(),
            priority: p,
            enabled: true,
            events: vec![],
            tags: tags.iter().map(|t| t.to_string()).collect(),
            desc: String::new(),
            falco: None,
        };
        let shell = rule(
            "Shell in container",
            Priority::Critical,
            &["container", "shell"],
        );
        let net = rule("Outbound to C2", Priority::Notice, &["network"]);
        let sel = |y: &str| -> Select { serde_yaml_ng::from_str(y).unwrap() };
        assert!(!Select::default().disables(&shell));
        let s = sel("min_priority: WARN");
        assert!(!s.disables(&shell) && s.disables(&net));
        let s = sel("disable_tags: [network]");
        assert!(!s.disables(&shell) && s.disables(&net));
        let s = sel("enable_tags: [shell]");
        assert!(!s.disables(&shell) && s.disables(&net));
        let s = sel("disable_rules: [\"in contain\"]");
        assert!(s.disables(&shell) && !s.disables(&net));
        let s = sel("disable_rules: [\"Outbound*\"]");
        assert!(!s.disables(&shell) && s.disables(&net));
        let s = sel("disable_rules: [\"Outbound\"]");
        assert!(s.disables(&net), "substring");
        assert!(serde_yaml_ng::from_str::<Select>("min_priority: loud").is_err());
    }
}
