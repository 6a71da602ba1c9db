//! Live test of the config file's hot reload in `vigil run --config FILE`:
//! alerts from real execs go to the file output the config names; after the
//! config is rewritten to name another file they go there (the new router is
//! swapped in without a restart); a config that no longer parses keeps the
//! outputs in force and raises "vigil config reload failed" through them.
//! Needs root, BPF and BTF; skipped with a message otherwise, unless
//! VIGIL_REQUIRE_LIVE=1 (CI), which makes that a failure.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{copy_named, live_capable, unique, Vigil};

/// The alerts in a JSON-lines output file so far (none if it does not exist yet).
fn alerts_in(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// Runs `bin -c 'true TAG'` and waits for it.
fn trigger(bin: &Path, tag: &str) {
    let st = Command::new(bin)
        .args(["-c", &format!("true {tag}")])
        .status()
        .unwrap();
    assert!(st.success());
}

/// Waits until `path` holds an alert whose output contains `tag`, re-triggering
/// every half second (a reload takes effect a debounce window after the edit).
fn wait_for_tag(bin: &Path, path: &Path, tag: &str, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        trigger(bin, tag);
        std::thread::sleep(Duration::from_millis(500));
        let found = alerts_in(path)
            .iter()
            .any(|a| a["output"].as_str().unwrap_or("").contains(tag));
        if found {
            return true;
        }
    }
    false
}

fn config(rules: &Path, out: &Path) -> String {
    format!(
        "rules: [{}]\noutputs:\n  file:\n    path: {}\n",
        rules.display(),
        out.display()
    )
}

#[test]
fn outputs_follow_config_edits_and_a_broken_config_keeps_them() {
    if live_capable().is_none() {
        return;
    }
    let name = unique("cfgr");
    let d = tempfile::tempdir().unwrap();
    let rules = d.path().join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            r#"
- rule: Config reload probe
  desc: test
  events: [exec]
  condition: proc.name == "{name}"
  output: "probe {{proc.cmdline}}"
  priority: warning
"#
        ),
    )
    .unwrap();
    let (first, second) = (d.path().join("first.jsonl"), d.path().join("second.jsonl"));
    let cfg = d.path().join("vigil.yaml");
    std::fs::write(&cfg, config(&rules, &first)).unwrap();
    let args: Vec<String> = ["run", "--config", cfg.to_str().unwrap()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // `info`: the log line saying the replaced outputs have shut down.
    let mut v = Vigil::spawn(
        tempfile::tempdir().unwrap(),
        &args,
        &[("VIGIL_LOG", "info")],
    );
    let bin_dir = tempfile::tempdir().unwrap();
    let bash = copy_named(bin_dir.path(), "/bin/bash", &name);

    assert!(
        wait_for_tag(&bash, &first, "phase-one", 20),
        "alert in the first file"
    );

    // Point the file output elsewhere (an editor's rename-save).
    let tmp = d.path().join(".vigil.yaml.swp");
    std::fs::write(&tmp, config(&rules, &second)).unwrap();
    std::fs::rename(&tmp, &cfg).unwrap();
    assert!(
        wait_for_tag(&bash, &second, "phase-two", 20),
        "after the config edit, alerts reach the second file"
    );
    // Once switched, nothing goes to the first file any more: phase three
    // reached the second file, and the replaced outputs have shut down (their
    // queues flushed, the file closed), so the first file is final.
    trigger(&bash, "phase-three");
    assert!(wait_for_tag(&bash, &second, "phase-three", 10));
    assert!(
        v.wait_log(20, |l| l.contains("alert sinks flushed")
            || l.contains("alert sinks shut down"))
            .is_some(),
        "the replaced outputs never shut down"
    );
    assert!(
        !alerts_in(&first)
            .iter()
            .any(|a| a["output"].as_str().unwrap_or("").contains("phase-three")),
        "the old output no longer receives alerts"
    );

    // A config that does not parse: outputs kept, failure reported through them.
    std::fs::write(&cfg, format!("{}  bogus_key: 1\n", config(&rules, &first))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let failed = loop {
        let hit = alerts_in(&second)
            .into_iter()
            .find(|a| a["rule"] == "vigil config reload failed");
        if hit.is_some() || Instant::now() > deadline {
            break hit;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let failed = failed.expect("a 'vigil config reload failed' alert in the outputs in force");
    let err = failed["output_fields"]["vigil.config.error"]
        .as_str()
        .unwrap_or("");
    assert!(err.contains("bogus_key"), "the error names the key: {err}");
    assert!(
        wait_for_tag(&bash, &second, "phase-four", 10),
        "detection and outputs keep working"
    );
    assert_eq!(v.stop(), Some(0));
}
