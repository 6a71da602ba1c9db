//! The operator's command line without the kernel: `run -L`, `run --dry-run`,
//! the zero-rule refusal, `-o` errors, rule selection in `explain`.

use std::path::Path;
use std::process::{Command, Output};

const RULES: &str = r#"
- rule: Net probe
  desc: t
  events: [connect]
  condition: proc.name == "netprobe"
  output: "connect by {proc.name}"
  priority: notice
  tags: [network]

- rule: Shell probe
  desc: t
  events: [exec]
  condition: proc.name == "shprobe"
  output: "exec of {proc.name}"
  priority: critical
  tags: [shell]
"#;

fn vigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .env("VIGIL_LOG", "info")
        .output()
        .expect("run vigil")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn rules_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("rules.yaml"), RULES).unwrap();
    d
}

fn p(d: &Path) -> &str {
    d.to_str().unwrap()
}

#[test]
fn list_rules_shows_enabled_and_active_after_selection() {
    let d = rules_dir();
    let o = vigil(&["run", "-L", "--rules", p(d.path()), "-T", "network"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let head: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        head,
        ["NAME", "PRIORITY", "TAGS", "EVENTS", "ENABLED", "ACTIVE"]
    );
    assert!(
        lines[1].starts_with("Net probe") && lines[1].ends_with("yes      no"),
        "{out}"
    );
    assert!(
        lines[1].contains("notice") && lines[1].contains("network") && lines[1].contains("connect")
    );
    assert!(
        lines[2].starts_with("Shell probe") && lines[2].ends_with("yes      yes"),
        "{out}"
    );
    // --min-priority and -D (glob and substring) select too.
    let o = vigil(&[
        "run",
        "-L",
        "--rules",
        p(d.path()),
        "--min-priority",
        "warning",
    ]);
    assert!(text(&o.stdout).lines().nth(1).unwrap().ends_with("no"));
    let o = vigil(&["run", "-L", "--rules", p(d.path()), "-D", "Sh*probe"]);
    let out = text(&o.stdout);
    assert!(out.lines().nth(2).unwrap().ends_with("no"), "{out}");
    assert!(out.lines().nth(1).unwrap().ends_with("yes"), "{out}");
    let o = vigil(&["run", "-L", "--rules", p(d.path()), "-t", "shell"]);
    let out = text(&o.stdout);
    assert!(out.lines().nth(1).unwrap().ends_with("no"), "{out}");
    // The same selection as a config key through -o.
    let o = vigil(&[
        "run",
        "-L",
        "--rules",
        p(d.path()),
        "-o",
        "select.disable_rules=[probe]",
    ]);
    let out = text(&o.stdout);
    assert_eq!(out.matches(" no\n").count(), 2, "{out}");
}

#[test]
fn dry_run_checks_and_names_the_config_in_force() {
    let d = rules_dir();
    let o = vigil(&["run", "--dry-run", "--rules", p(d.path()), "-T", "shell"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("config none"), "{out}");
    assert!(out.contains("rules: 1 active of 2 loaded"), "{out}");
    assert!(
        out.contains("exec        drop"),
        "-T shell leaves no exec rule: {out}"
    );
    assert!(out.contains("dry run OK: nothing attached"), "{out}");
    let err = text(&o.stderr);
    assert!(err.contains("config file in force config=none"), "{err}");

    // A config whose outputs cannot start fails the dry run.
    let c = tempfile::tempdir().unwrap();
    let cfg = c.path().join("vigil.yaml");
    std::fs::write(
        &cfg,
        "outputs:\n  file: { path: /proc/vigil-no/alerts.jsonl }\n",
    )
    .unwrap();
    let o = vigil(&[
        "run",
        "--dry-run",
        "--rules",
        p(d.path()),
        "--config",
        p(&cfg),
    ]);
    assert!(!o.status.success(), "{}", text(&o.stdout));
    assert!(text(&o.stderr).contains("outputs"), "{}", text(&o.stderr));
}

#[test]
fn zero_enabled_rules_refuse_to_start_unless_allowed() {
    let d = rules_dir();
    let o = vigil(&[
        "run",
        "--dry-run",
        "--rules",
        p(d.path()),
        "-T",
        "shell",
        "-T",
        "network",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("no enabled rule (2 loaded") && err.contains("--allow-empty"),
        "{err}"
    );
    let o = vigil(&[
        "run",
        "--dry-run",
        "--allow-empty",
        "--rules",
        p(d.path()),
        "-T",
        "shell",
        "-T",
        "network",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("rules: 0 active of 2 loaded"));
}

#[test]
fn bad_overrides_are_named() {
    let d = rules_dir();
    let o = vigil(&["run", "--dry-run", "--rules", p(d.path()), "-o", "nokey"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("expected key.path=value"),
        "{}",
        text(&o.stderr)
    );
    let o = vigil(&[
        "run",
        "--dry-run",
        "--rules",
        p(d.path()),
        "-o",
        "outputs.stdout.format=xml",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("-o overrides") && err.contains("xml"), "{err}");
}

#[test]
fn explain_reflects_the_selection() {
    let d = rules_dir();
    let o = vigil(&["explain", "--rules", p(d.path())]);
    assert!(o.status.success());
    let out = text(&o.stdout);
    assert!(out.contains("Shell probe [exec]: comm in"), "{out}");
    let o = vigil(&["explain", "--rules", p(d.path()), "-T", "shell"]);
    let out = text(&o.stdout);
    assert!(
        out.contains("Shell probe [exec]: disabled: contributes nothing"),
        "{out}"
    );
    assert!(out.contains("exec        drop"), "{out}");
}

#[test]
fn explain_wraps_the_shipped_rules_and_has_a_json_format() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let o = vigil(&["explain", "--rules", p(&rules)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let longest = out.lines().map(str::len).max().unwrap_or(0);
    assert!(longest <= 100, "longest line {longest}");
    let o = vigil(&["explain", "--rules", p(&rules), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert!(v["types"]["open"]["mode"].is_string(), "{v}");
    assert!(v["rules"].as_array().is_some_and(|r| !r.is_empty()));
}

/// `ACTIVE` of rule `name` in `vigil run -L` output.
fn active(out: &str, name: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in:\n{out}"));
    line.split_whitespace().last().unwrap().to_string()
}

/// `-t TAG` and `select.enable_tags` run a rule its file disables, as
/// Falco's `-t` does; precedence is file < config `select:` < command line.
#[test]
fn enable_tags_turn_on_a_file_disabled_rule_and_the_command_line_wins() {
    let d = rules_dir();
    std::fs::write(
        d.path().join("quiet.yaml"),
        "- rule: Quiet probe\n  desc: t\n  events: [exec]\n  condition: proc.name == \"quietprobe\"\n  output: q\n  priority: notice\n  tags: [extra]\n  enabled: false\n",
    )
    .unwrap();
    let etc = tempfile::tempdir().unwrap();
    let list = |cfg: &str, flags: &[&str]| -> String {
        let c = etc.path().join("vigil.yaml");
        std::fs::write(&c, cfg).unwrap();
        let mut a = vec!["run", "-L", "--config", p(&c), "--rules", p(d.path())];
        a.extend_from_slice(flags);
        let o = vigil(&a);
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
    };
    let out = list("{}", &[]);
    assert_eq!(active(&out, "Quiet probe"), "no", "the file disables it");
    let out = list("{}", &["-t", "extra"]);
    assert_eq!(active(&out, "Quiet probe"), "yes", "{out}");
    assert_eq!(active(&out, "Shell probe"), "no", "{out}");
    let out = list("select: { enable_tags: [extra, shell] }", &[]);
    assert_eq!(active(&out, "Quiet probe"), "yes", "{out}");
    assert_eq!(active(&out, "Net probe"), "no", "{out}");
    // The command line over the config, both ways.
    let out = list("select: { enable_tags: [extra, shell] }", &["-T", "extra"]);
    assert_eq!(active(&out, "Quiet probe"), "no", "{out}");
    assert_eq!(active(&out, "Shell probe"), "yes", "{out}");
    let out = list("select: { disable_tags: [shell] }", &["-t", "shell"]);
    assert_eq!(active(&out, "Shell probe"), "yes", "{out}");
    // -t and -T in one layer: the disabling one wins.
    let out = list("{}", &["-t", "extra", "-T", "extra"]);
    assert_eq!(active(&out, "Quiet probe"), "no", "{out}");
}
