//! The daemon's config file (YAML, default `/etc/vigil/vigil.yaml`): rule
//! paths, alert outputs (`vigil_sinks::OutputsConfig`, documented key by key
//! in `sinks/CONFIG.md`), metrics address and the pipeline's bounds. Unknown
//! keys and bad values are errors that name the file, the key and the line.
//! Command-line flags override what the file says.
//!
//! Why one file past ~800 lines (about 500 of code, the rest unit tests):
//! one `Config` with its keys, defaults, checks and line-numbered errors; the
//! outputs' keys are `vigil_sinks`' (`sinks/CONFIG.md`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use vigil_engine::alert::OutputFields;
use vigil_engine::ruleset::{RuleInfo, RuleSet};
use vigil_engine::{LoadError, LoadErrors, Location, Priority};
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
    /// Which loaded rules run: the config's layer of the [`Selection`]
    /// (the flags `--min-priority`, `-T`, `-t`, `-D` are the next); follows
    /// config reloads.
    #[serde(default)]
    pub select: Select,
    /// What alerts' `output_fields` carry: `auto` (Falco rules: their output
    /// template's fields, as Falco; vigil's rules: every event field), `all`
    /// or `template`.
    #[serde(default)]
    pub output_fields: OutputFields,
    /// Environment variables recorded at exec in `proc.env` (by exact name;
    /// never the whole environment).
    #[serde(default = "default_proc_env")]
    pub proc_env: Vec<String>,
}

/// One layer of rule selection: the config file's `select:` block, or the
/// command line's `--min-priority`/`-T`/`-t`/`-D` ([`SelectArgs`]). See
/// [`Selection`] for how the layers combine.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Select {
    /// Disable rules less severe than this (`--min-priority`).
    #[serde(default, deserialize_with = "de_opt_priority")]
    pub min_priority: Option<Priority>,
    /// Disable rules carrying any of these tags (`-T TAG`).
    #[serde(default)]
    pub disable_tags: Vec<String>,
    /// When non-empty, run the rules carrying any of these tags, even those
    /// their file disables, and disable the others (`-t TAG`).
    #[serde(default)]
    pub enable_tags: Vec<String>,
    /// Disable rules whose name contains this text, or matches it as a glob
    /// when it has `*`, `?` or `[` (`-D NAME`).
    #[serde(default)]
    pub disable_rules: Vec<String>,
}

impl Select {
    /// What this layer says about `rule`: off when `min_priority`,
    /// `disable_tags` or `disable_rules` match it (these win inside a layer:
    /// `-t net -T noisy` runs the `net` rules but not the noisy ones); on
    /// when `enable_tags` names one of its tags; off when `enable_tags` is
    /// set and names none; `None` when the layer says nothing about it.
    pub fn verdict(&self, rule: &RuleInfo) -> Option<bool> {
        let has = |tags: &[String]| rule.tags.iter().any(|t| tags.contains(t));
        let off = self.min_priority.is_some_and(|p| rule.priority > p)
            || has(&self.disable_tags)
            || self
                .disable_rules
                .iter()
                .any(|pat| name_matches(pat, &rule.name));
        if off {
            Some(false)
        } else if self.enable_tags.is_empty() {
            None
        } else {
            Some(has(&self.enable_tags))
        }
    }
}

/// The rule selection in force, applied to every rule set loaded (at start
/// and on each reload). Three layers decide whether a rule runs, each one
/// overriding the one before for the rules it speaks about: the rule file's
/// own `enabled`, then the config's `select:` (with its `-o select.*`
/// overrides), then the command-line flags. So `-t TAG` runs a rule its
/// file disables, and `-T TAG` stops a rule the config's `enable_tags`
/// turned on. A Falco rule vigil cannot run stays off whatever the layers say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// The config file's `select:`.
    pub config: Select,
    /// `--min-priority`, `-T`, `-t`, `-D`.
    pub flags: Select,
}

impl Selection {
    /// Whether the selection turns `rule` on (`Some(true)`), off
    /// (`Some(false)`), or leaves its file's `enabled` (`None`).
    pub fn verdict(&self, rule: &RuleInfo) -> Option<bool> {
        self.flags
            .verdict(rule)
            .or_else(|| self.config.verdict(rule))
    }

    /// Applies the selection to a loaded rule set. Fails (a load error, so a
    /// reload keeps the rules in force) when the rules it turns on would
    /// exceed the set's evaluation budget.
    pub fn apply(&self, rules: &mut RuleSet) -> Result<(), LoadErrors> {
        if *self == Selection::default() {
            return Ok(());
        }
        let off = rules.disable_where(|r| self.verdict(r) == Some(false));
        let on = rules
            .enable_where(
                |r| self.verdict(r) == Some(true),
                vigil_engine::ruleset::MAX_SET_NODES,
            )
            .map_err(|msg| {
                LoadErrors(vec![LoadError {
                    loc: Location {
                        file: "(rule selection: select: / -t)".into(),
                        line: 0,
                        col: 0,
                    },
                    item: None,
                    msg: format!("the rules the selection enables were not enabled: {msg}"),
                }])
            })?;
        tracing::debug!(disabled = ?off, enabled = ?on, "rule selection applied");
        Ok(())
    }
}

/// The selection flags `run` and `explain` share: the command line's layer
/// of the [`Selection`].
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SelectArgs {
    /// Disable rules less severe than PRIORITY (emergency .. debug) [config: select.min_priority].
    #[arg(long, value_name = "PRIORITY", value_parser = parse_priority)]
    pub min_priority: Option<Priority>,
    /// Disable rules tagged TAG; repeatable [config: select.disable_tags].
    #[arg(short = 'T', value_name = "TAG")]
    pub disable_tag: Vec<String>,
    /// Run only rules tagged TAG, including those their file disables;
    /// repeatable [config: select.enable_tags].
    #[arg(short = 't', value_name = "TAG")]
    pub enable_tag: Vec<String>,
    /// Disable rules whose name contains NAME, or matches it as a glob
    /// (`*`, `?`, `[..]`); repeatable [config: select.disable_rules].
    #[arg(short = 'D', value_name = "NAME")]
    pub disable_rule: Vec<String>,
}

impl SelectArgs {
    /// The flags as a selection layer.
    pub fn to_select(&self) -> Select {
        Select {
            min_priority: self.min_priority,
            disable_tags: self.disable_tag.clone(),
            enable_tags: self.enable_tag.clone(),
            disable_rules: self.disable_rule.clone(),
        }
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
            output_fields: OutputFields::default(),
            proc_env: default_proc_env(),
        }
    }
}

/// Why a config file did not load; every error names the file (and, from
/// the YAML reader, the key path and line).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {msg}", path.display())]
    Invalid { path: PathBuf, msg: String },
}

impl ConfigError {
    fn invalid(path: &Path, msg: impl std::fmt::Display) -> ConfigError {
        ConfigError::Invalid {
            path: path.to_path_buf(),
            msg: msg.to_string(),
        }
    }
}

impl Config {
    /// Reads and checks `path`. Errors name the file, the key and the line.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, &[])
    }

    /// [`Config::load`] with `-o key.path=value` overrides applied on top.
    pub fn load_with(path: &Path, overrides: &[Override]) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse_with(&text, path, overrides)
    }

    /// `--config` if given, else [`DEFAULT_PATH`] when it exists, else
    /// `no_file` (the settings of a run without a config file), each with
    /// `overrides` applied. Returns the path actually read.
    pub fn load_or_default(
        explicit: Option<&Path>,
        overrides: &[Override],
        no_file: &str,
    ) -> Result<(Config, Option<PathBuf>), ConfigError> {
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
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        Config::parse_with(text, origin, &[])
    }

    /// [`Config::parse`] with `-o` overrides applied to the parsed YAML before
    /// it is checked (so an override is checked like the file's own keys).
    pub fn parse_with(
        text: &str,
        origin: &Path,
        overrides: &[Override],
    ) -> Result<Config, ConfigError> {
        let blank = text.trim().is_empty() || is_only_comments(text);
        let mut cfg: Config = if overrides.is_empty() {
            if blank {
                Config::default()
            } else {
                serde_yaml_ng::from_str(text).map_err(|e| ConfigError::invalid(origin, e))?
            }
        } else {
            let mut doc: serde_yaml_ng::Value = if blank {
                serde_yaml_ng::Value::Mapping(Default::default())
            } else {
                serde_yaml_ng::from_str(text).map_err(|e| ConfigError::invalid(origin, e))?
            };
            for o in overrides {
                o.apply(&mut doc)
                    .map_err(|e| ConfigError::invalid(origin, format!("-o {}: {e}", o.key)))?;
            }
            serde_yaml_ng::from_value(doc)
                .map_err(|e| ConfigError::invalid(origin, format!("with the -o overrides: {e}")))?
        };
        let base = origin.parent().unwrap_or(Path::new("."));
        for r in &mut cfg.rules {
            // `nats-kv://BUCKET` is a rules source, not a path (see crate::fleet).
            // `falco:PATH` declares the dialect of PATH (kept, PATH resolved).
            let (dialect, path) = vigil_engine::falco::split_dialect(r);
            if path.is_relative() && !r.starts_with("nats-kv:") {
                let abs = base.join(path);
                *r = match dialect {
                    Some(d) => PathBuf::from(format!("{}{}", d.prefix(), abs.display())),
                    None => abs,
                };
            }
        }
        cfg.outputs.nats_connection = cfg.nats.clone();
        cfg.check().map_err(|e| ConfigError::invalid(origin, e))?;
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

    fn parse(y: &str) -> Result<Config, ConfigError> {
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
    fn dialect_declaration_survives_relative_resolution() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vigil.yaml");
        std::fs::write(
            &p,
            "rules: [\"falco:falco.d\", \"falco:/abs/f.yaml\", local.yaml]\n",
        )
        .unwrap();
        let c = Config::load(&p).unwrap();
        assert_eq!(
            c.rules,
            vec![
                PathBuf::from(format!("falco:{}", dir.path().join("falco.d").display())),
                PathBuf::from("falco:/abs/f.yaml"),
                dir.path().join("local.yaml"),
            ]
        );
    }

    #[test]
    fn output_fields_key() {
        assert_eq!(
            parse("output_fields: template\n").unwrap().output_fields,
            OutputFields::Template
        );
        assert_eq!(
            parse("output_fields: all\n").unwrap().output_fields,
            OutputFields::All
        );
        let e = parse("output_fields: some\n").unwrap_err().to_string();
        assert!(e.contains("some") && e.contains("line 1"), "{e}");
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

    fn rule(name: &str, p: Priority, enabled: bool, tags: &[&str]) -> RuleInfo {
        RuleInfo {
            name: name.into(),
            priority: p,
            enabled,
            events: vec![],
            tags: tags.iter().map(|t| t.to_string()).collect(),
            desc: String::new(),
            falco: None,
        }
    }

    #[test]
    fn selection_by_priority_tag_and_name() {
        let shell = rule(
            "Shell in container",
            Priority::Critical,
            true,
            &["container", "shell"],
        );
        let net = rule("Outbound to C2", Priority::Notice, true, &["network"]);
        let sel = |y: &str| -> Select { serde_yaml_ng::from_str(y).unwrap() };
        assert_eq!(Select::default().verdict(&shell), None);
        let s = sel("min_priority: WARN");
        assert_eq!((s.verdict(&shell), s.verdict(&net)), (None, Some(false)));
        let s = sel("disable_tags: [network]");
        assert_eq!((s.verdict(&shell), s.verdict(&net)), (None, Some(false)));
        let s = sel("enable_tags: [shell]");
        assert_eq!(
            (s.verdict(&shell), s.verdict(&net)),
            (Some(true), Some(false))
        );
        // Inside a layer, disabling wins over enable_tags.
        let s = sel("enable_tags: [shell]\ndisable_rules: [\"in contain\"]");
        assert_eq!(s.verdict(&shell), Some(false));
        let s = sel("disable_rules: [\"Outbound*\"]");
        assert_eq!((s.verdict(&shell), s.verdict(&net)), (None, Some(false)));
        let s = sel("disable_rules: [\"Outbound\"]");
        assert_eq!(s.verdict(&net), Some(false), "substring");
        assert!(serde_yaml_ng::from_str::<Select>("min_priority: loud").is_err());
    }

    /// file < config `select:` < command line: each layer decides for the
    /// rules it speaks about.
    #[test]
    fn selection_layers_override_in_order() {
        let quiet = rule("Quiet", Priority::Notice, false, &["extra"]);
        let net = rule("Net", Priority::Warning, true, &["network"]);
        let sel = |config: &str, flags: &str| Selection {
            config: serde_yaml_ng::from_str(config).unwrap(),
            flags: serde_yaml_ng::from_str(flags).unwrap(),
        };
        // The config turns on a rule its file disables; the flags turn it off.
        let s = sel("enable_tags: [extra, network]", "{}");
        assert_eq!(
            (s.verdict(&quiet), s.verdict(&net)),
            (Some(true), Some(true))
        );
        let s = sel("enable_tags: [extra, network]", "disable_tags: [extra]");
        assert_eq!(
            (s.verdict(&quiet), s.verdict(&net)),
            (Some(false), Some(true))
        );
        // The config disables; the flags' -t wins for the rules it names.
        let s = sel(
            "disable_tags: [network]\nmin_priority: error",
            "enable_tags: [network]",
        );
        assert_eq!(
            (s.verdict(&quiet), s.verdict(&net)),
            (Some(false), Some(true))
        );
        let s = sel("disable_tags: [network]", "disable_rules: [Quiet]");
        assert_eq!(
            (s.verdict(&quiet), s.verdict(&net)),
            (Some(false), Some(false))
        );
        assert_eq!(Selection::default().verdict(&quiet), None);
    }

    #[test]
    fn the_flags_layer_is_the_flags() {
        let a = SelectArgs {
            min_priority: Some(Priority::Error),
            disable_tag: vec!["a".into()],
            enable_tag: vec!["b".into()],
            disable_rule: vec!["c".into()],
        };
        let s = a.to_select();
        assert_eq!(s.min_priority, Some(Priority::Error));
        assert_eq!(
            (s.disable_tags, s.enable_tags, s.disable_rules),
            (
                vec!["a".to_string()],
                vec!["b".to_string()],
                vec!["c".to_string()]
            )
        );
    }
}
