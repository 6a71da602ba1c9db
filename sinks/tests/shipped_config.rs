//! The default config the package ships (`packaging/vigil.yaml`) must be
//! accepted by these serde types as shipped, and with every commented-out
//! sink block uncommented (what a user does to turn one on).

use std::path::PathBuf;

use vigil_sinks::OutputsConfig;

fn shipped() -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../packaging/vigil.yaml");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Uncomments `  # key: ...` / `  #   key: ...` / `  #     "Rule": ...` lines.
fn uncomment(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let l = match line.strip_prefix("  # ") {
            Some(rest) => {
                let t = rest.trim_start();
                let key = t.split_once(':').map(|(k, _)| k).unwrap_or("");
                let is_key = !key.is_empty()
                    && (key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                        || (key.starts_with('"') && key.ends_with('"')));
                if is_key && (t.contains(": ") || t.ends_with(':')) {
                    format!("  {rest}")
                } else {
                    line.to_string()
                }
            }
            None => line.to_string(),
        };
        out.push_str(&l);
        out.push('\n');
    }
    out
}

fn outputs_of(text: &str) -> OutputsConfig {
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).expect("valid YAML");
    let o = v.get("outputs").expect("an outputs section").clone();
    serde_yaml_ng::from_value(o).unwrap_or_else(|e| panic!("outputs rejected: {e}\n{text}"))
}

#[test]
fn shipped_config_outputs_parse() {
    let o = outputs_of(&shipped());
    assert!(o.stdout.is_some());
    assert!(o.file.is_some());
}

#[test]
fn shipped_config_with_every_block_enabled_parses() {
    let text = uncomment(&shipped());
    let o = outputs_of(&text);
    assert!(o.syslog.is_some(), "syslog block uncommented:\n{text}");
    assert!(o.webhook.is_some());
    assert!(o.email.is_some());
    assert!(o.dedup.is_some());
    let d = o.dedup.unwrap();
    assert!(!d.rules.is_empty());
}
