//! The shipped logrotate config (`packaging/logrotate`, installed as
//! /etc/logrotate.d/vigil) run for real by logrotate against a temp copy of
//! /var/log/vigil: alert files are rotated and recreated with the declared
//! mode, unrelated files are left alone. Without systemd running, the
//! postrotate SIGHUP is skipped and must not fail the rotation.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn have_logrotate() -> bool {
    vigil_testkit::tool("logrotate", "logrotate").is_some()
}

#[test]
fn shipped_logrotate_config_rotates_alert_files() {
    if !have_logrotate() {
        return;
    }
    let shipped =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/logrotate"))
            .unwrap();
    assert!(shipped.contains("/var/log/vigil/*.jsonl"));
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("log");
    fs::create_dir(&logs).unwrap();
    fs::write(logs.join("alerts.jsonl"), "{\"rule\":\"x\"}\n").unwrap();
    fs::write(logs.join("other.txt"), "keep\n").unwrap();
    let conf = tmp.path().join("vigil.logrotate");
    fs::write(
        &conf,
        shipped.replace("/var/log/vigil/", &format!("{}/", logs.display())),
    )
    .unwrap();
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).unwrap();

    // Syntax check first (-d changes nothing), then a forced real rotation.
    let state = tmp.path().join("state");
    let check = Command::new("logrotate")
        .arg("-d")
        .arg("--state")
        .arg(&state)
        .arg(&conf)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "logrotate -d failed:\n{err}");
    assert!(
        !err.contains("error:"),
        "logrotate -d reports errors:\n{err}"
    );

    let out = Command::new("logrotate")
        .arg("--force")
        .arg("--state")
        .arg(&state)
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "logrotate failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // delaycompress: the first rotation is kept uncompressed as .1.
    let rotated = fs::read_to_string(logs.join("alerts.jsonl.1")).expect("alerts.jsonl rotated");
    assert_eq!(rotated, "{\"rule\":\"x\"}\n");
    let fresh = fs::metadata(logs.join("alerts.jsonl")).expect("alerts.jsonl recreated");
    assert_eq!(fresh.len(), 0);
    assert_eq!(fresh.permissions().mode() & 0o777, 0o640);
    assert_eq!(
        fs::read_to_string(logs.join("other.txt")).unwrap(),
        "keep\n"
    );
    assert!(!logs.join("other.txt.1").exists());
}
