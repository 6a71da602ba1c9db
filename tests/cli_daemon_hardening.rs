//! Hardening of what the daemon reads, through the built binary, without BPF:
//! `vigil run` refuses rule directories, rule files and configs that users
//! other than root can change (it stops before attaching any sensor),
//! `vigil validate` warns about them and about symlink loops in a rules
//! directory, and `vigil replay` skips non-UTF-8 and over-long lines with
//! their line numbers instead of aborting or growing without bound.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn vigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .env("VIGIL_LOG", "warn")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .output()
        .expect("run vigil")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

const RULE: &str = r#"
- rule: Hardening probe
  desc: test
  events: [exec]
  condition: proc.name == "hardening-probe"
  output: "probe {proc.cmdline}"
  priority: warning
"#;

/// A temp dir holding `rules.d/` (0755) with one rule file (0644).
fn rules_dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let rules = d.path().join("rules.d");
    fs::create_dir(&rules).unwrap();
    chmod(&rules, 0o755);
    let f = rules.join("10-probe.yaml");
    fs::write(&f, RULE).unwrap();
    chmod(&f, 0o644);
    (d, rules)
}

fn run_refused(args: &[&str]) -> String {
    let o = vigil(args);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "refused with exit 2: {err}");
    assert!(err.contains("refusing to start"), "{err}");
    assert!(
        err.contains("--insecure-permissions"),
        "names the way out: {err}"
    );
    err
}

#[test]
fn run_refuses_a_world_writable_rule_directory() {
    let (_d, rules) = rules_dir();
    chmod(&rules, 0o777);
    let err = run_refused(&["run", "--rules", rules.to_str().unwrap()]);
    assert!(
        err.contains(&format!(
            "{}: rule directory is writable by every user (mode 0777)",
            rules.display()
        )),
        "{err}"
    );
}

#[test]
fn run_refuses_a_world_writable_rule_file_parent_and_config() {
    let (d, rules) = rules_dir();
    let f = rules.join("10-probe.yaml");
    chmod(&f, 0o666);
    let err = run_refused(&["run", "--rules", rules.to_str().unwrap()]);
    assert!(
        err.contains(&format!(
            "{}: rule file is writable by every user",
            f.display()
        )),
        "{err}"
    );
    chmod(&f, 0o644);

    // A directory above the rule path that anyone can write (no sticky bit).
    chmod(d.path(), 0o777);
    let err = run_refused(&["run", "--rules", f.to_str().unwrap()]);
    assert!(err.contains(&d.path().display().to_string()), "{err}");
    chmod(d.path(), 0o700);

    let cfg = d.path().join("vigil.yaml");
    fs::write(&cfg, format!("rules: [{}]\n", rules.display())).unwrap();
    chmod(&cfg, 0o666);
    let err = run_refused(&["run", "--config", cfg.to_str().unwrap()]);
    assert!(
        err.contains(&format!(
            "{}: config file is writable by every user",
            cfg.display()
        )),
        "{err}"
    );
}

#[test]
fn run_refuses_files_owned_by_another_user() {
    // chown to nobody needs root.
    if vigil_testkit::root().is_none() {
        return;
    }
    let (d, rules) = rules_dir();
    let f = rules.join("10-probe.yaml");
    std::os::unix::fs::chown(&f, Some(65534), Some(65534)).unwrap();
    let err = run_refused(&["run", "--rules", rules.to_str().unwrap()]);
    assert!(
        err.contains(&format!("{}: rule file is owned by uid 65534", f.display())),
        "{err}"
    );
    std::os::unix::fs::chown(&f, Some(0), Some(0)).unwrap();
    let cfg = d.path().join("vigil.yaml");
    fs::write(&cfg, format!("rules: [{}]\n", rules.display())).unwrap();
    chmod(&cfg, 0o644);
    std::os::unix::fs::chown(&cfg, Some(65534), Some(65534)).unwrap();
    let err = run_refused(&["run", "--config", cfg.to_str().unwrap()]);
    assert!(err.contains("config file is owned by uid 65534"), "{err}");
}

#[test]
fn validate_warns_about_permissions_and_still_loads() {
    let (_d, rules) = rules_dir();
    chmod(&rules, 0o777);
    let o = vigil(&["validate", rules.to_str().unwrap()]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "{}: warning: insecure permissions: rule directory is writable by every user",
            rules.display()
        )),
        "{err}"
    );
    assert!(text(&o.stdout).contains("1 rules (1 enabled)"));
}

#[test]
fn validate_warns_about_a_symlink_loop_in_a_rules_directory() {
    let (_d, rules) = rules_dir();
    symlink("loop-b.yaml", rules.join("loop-a.yaml")).unwrap();
    symlink("loop-a.yaml", rules.join("loop-b.yaml")).unwrap();
    let o = vigil(&["validate", rules.to_str().unwrap()]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    for name in ["loop-a.yaml", "loop-b.yaml"] {
        let line = err
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no warning names {name}: {err}"));
        assert!(
            line.contains("WARN")
                && line.contains("rule file skipped")
                && line.contains("symbolic links"),
            "{line}"
        );
    }
}

#[test]
fn replay_skips_non_utf8_and_over_long_lines_with_their_numbers() {
    let (d, rules) = rules_dir();
    let hit = r#"{"evt.type": "exec", "proc.name": "hardening-probe", "proc.cmdline": "hardening-probe LINE"}"#;
    let mut input = Vec::new();
    input.extend(hit.replace("LINE", "one").as_bytes());
    input.extend(b"\n{\"evt.type\": \"exec\", \"proc.name\": \"\xff\xfe\"}\n");
    input.extend(hit.replace("LINE", "three").as_bytes());
    input.push(b'\n');
    // Line 4: 3 MiB of one JSON string and no newline until line 5 starts.
    input.extend(b"{\"evt.type\": \"exec\", \"proc.cmdline\": \"");
    input.extend(std::iter::repeat_n(b'a', 3 << 20));
    input.extend(b"\"}\n");
    input.extend(hit.replace("LINE", "five").as_bytes());
    input.push(b'\n');
    // Line 6: 2 MiB without any newline up to the end of the input.
    input.extend(std::iter::repeat_n(b'b', 2 << 20));
    let events = d.path().join("events.jsonl");
    fs::write(&events, &input).unwrap();

    let o = vigil(&[
        "replay",
        events.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
    ]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "the run continues: {err}");
    let out = text(&o.stdout);
    for tag in ["one", "three", "five"] {
        assert!(
            out.contains(&format!("probe hardening-probe {tag}")),
            "{out}"
        );
    }
    assert!(
        err.contains(":2: skipped: not valid UTF-8"),
        "names line 2: {err}"
    );
    assert!(
        err.contains(":4: skipped: line longer than 1048576 bytes"),
        "names line 4: {err}"
    );
    assert!(
        err.contains(":6: skipped: line longer than 1048576 bytes"),
        "names line 6: {err}"
    );
    assert!(
        err.contains("3 events, 3 alerts, 3 malformed lines skipped"),
        "{err}"
    );
}
