//! The shipped default config (`packaging/vigil.yaml`, installed as
//! /etc/vigil/vigil.yaml) is read by the daemon's real config loader
//! (`src/config.rs`): as shipped, and with every commented example block
//! (syslog, webhook, email) switched on, so the examples cannot drift
//! from the keys the loader accepts.

use std::path::{Path, PathBuf};

use vigil::config::Config;

fn shipped() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/vigil.yaml"))
        .unwrap()
}

/// Uncomments the example blocks: a line `  # name:` opening a block whose
/// following lines are `  #   key: ...`.
fn with_examples_enabled(text: &str) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut enabled = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        let opener = line
            .strip_prefix("  # ")
            .filter(|rest| {
                !rest.starts_with(' ')
                    && rest.ends_with(':')
                    && rest[..rest.len() - 1]
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_')
            })
            .map(|rest| rest.trim_end_matches(':').to_string());
        if let Some(name) = opener {
            in_block = true;
            enabled.push(name);
            out.push_str(&line.replacen("  # ", "  ", 1));
        } else if in_block && line.starts_with("  #   ") {
            out.push_str(&line.replacen("  #   ", "    ", 1));
        } else {
            in_block = false;
            out.push_str(line);
        }
        out.push('\n');
    }
    (out, enabled)
}

#[test]
fn shipped_config_loads_with_the_daemons_loader() {
    let origin = Path::new("/etc/vigil/vigil.yaml");
    let cfg = Config::parse(&shipped(), origin).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        cfg.rules,
        vec![
            PathBuf::from("/usr/share/vigil/rules"),
            PathBuf::from("/etc/vigil/rules.d")
        ]
    );
    let stdout = cfg.outputs.stdout.as_ref().expect("stdout sink on");
    assert_eq!(stdout.format, vigil_sinks::config::Format::Json);
    let file = cfg.outputs.file.as_ref().expect("file sink on");
    assert_eq!(file.path, PathBuf::from("/var/log/vigil/alerts.jsonl"));
    assert!(cfg.outputs.syslog.is_none() && cfg.outputs.webhook.is_none());
    assert!(cfg.outputs.email.is_none());
    // Dedup is on out of the box (issue 13: a loop reading /etc/shadow sent
    // 1,736 alerts in 5 s to each output without it).
    let dedup = cfg.outputs.dedup.as_ref().expect("dedup on by default");
    assert_eq!(dedup.window, std::time::Duration::from_secs(60));
    assert!(dedup.rules.contains_key("Read sensitive file untrusted"));
}

#[test]
fn every_commented_example_is_valid() {
    let (text, enabled) = with_examples_enabled(&shipped());
    assert_eq!(enabled, ["syslog", "webhook", "email"], "{text}");
    let cfg = Config::parse(&text, Path::new("/etc/vigil/vigil.yaml"))
        .unwrap_or_else(|e| panic!("{e:#}\n--- config with examples enabled:\n{text}"));
    assert!(cfg.outputs.syslog.is_some());
    assert!(cfg.outputs.webhook.is_some());
    assert!(cfg.outputs.email.is_some());
    let dedup = cfg.outputs.dedup.expect("dedup block");
    assert!(dedup.rules.contains_key("TCP retransmit storm"));
}
