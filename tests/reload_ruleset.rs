//! Hot reload with the real engine loader: the shipped rules plus a watched
//! `rules.d` in a temp dir, reloaded through `vigil_engine::RuleSet::load` with
//! `RuleSet::diff` as the diff. Covers adding a rule by rename-save, a broken
//! file (old rules kept, error names file, line and rule), the fix, and an
//! override that disables a shipped rule.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use vigil::reload;

use reload::{ReloadEvent, WatchConfig, Watcher};
use vigil_engine::{LoadErrors, RuleSet, RuleSetDiff};

type Event = ReloadEvent<RuleSet, LoadErrors, RuleSetDiff>;

/// A private copy of the shipped rules (the repository's `rules/` may change while
/// the test runs, and the watcher would rightly report that).
fn shipped_rules(into: &Path) -> PathBuf {
    let dst = into.join("shipped");
    fs::create_dir(&dst).unwrap();
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules");
    for e in fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
        }
    }
    dst
}

fn rule(name: &str, comm: &str) -> String {
    format!(
        "- rule: {name}\n  desc: test rule\n  events: [exec]\n  condition: proc.name == \"{comm}\"\n  output: \"{name} {{proc.name}}\"\n  priority: warning\n"
    )
}

/// Writes `text` to `path` the way editors do: a temp file renamed over it.
fn save(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, path).unwrap();
}

async fn next(rx: &mut tokio::sync::mpsc::Receiver<Event>) -> Event {
    match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
        Ok(Some(ev)) => ev,
        Ok(None) => panic!("watcher stopped"),
        Err(_) => panic!("no reload reported within 60 s"),
    }
}

fn names(rs: &RuleSet) -> Vec<String> {
    rs.rules().map(|r| r.name).collect()
}

#[tokio::test]
async fn reloads_real_rule_sets_and_rejects_broken_ones() {
    let d = tempfile::tempdir().unwrap();
    let rules_d = d.path().join("rules.d");
    fs::create_dir(&rules_d).unwrap();
    let local = rules_d.join("50-local.yaml");
    fs::write(&local, rule("Local rule A", "tool-a")).unwrap();

    let paths = vec![shipped_rules(d.path()), rules_d.clone()];
    let snap = reload::snapshot(&paths, None);
    let initial = Arc::new(RuleSet::load(&paths).expect("shipped rules + local load"));
    let shipped_count = names(&initial).len() - 1;
    let mut cfg = WatchConfig::new(paths.clone(), None);
    cfg.debounce = Duration::from_millis(100);
    cfg.rehash_interval = Duration::from_secs(3600);
    let (watcher, mut rx) = Watcher::spawn(
        cfg,
        initial.clone(),
        snap.hash,
        |p: &[PathBuf]| RuleSet::load(p),
        |new: &RuleSet, old: &RuleSet| new.diff(old),
    )
    .unwrap();

    // Add a rule by rename-save.
    save(
        &local,
        &format!(
            "{}\n{}",
            rule("Local rule A", "tool-a"),
            rule("Local rule B", "tool-b")
        ),
    );
    let r = match next(&mut rx).await {
        ReloadEvent::Reloaded(r) => r,
        ReloadEvent::Failed(f) => panic!("valid rules rejected: {}", f.error),
    };
    assert_eq!(r.diff.added, vec!["Local rule B".to_string()]);
    assert!(
        r.diff.removed.is_empty() && r.diff.changed.is_empty(),
        "{:?}",
        r.diff
    );
    assert_ne!(r.value.hash(), initial.hash());
    assert_eq!(names(&r.value).len(), shipped_count + 2);
    eprintln!(
        "measured: RuleSet::load of {} rules from {} files took {:?}",
        names(&r.value).len(),
        r.files.len(),
        r.load_time
    );
    reload::log_reloaded(&r, initial.hash());
    let good = r.value.clone();
    let good_hash = r.hash.clone();

    // A broken file: unknown field. The old rules stay, the error says where.
    let bad = rules_d.join("60-broken.yaml");
    save(
        &bad,
        "- rule: Broken rule\n  desc: x\n  events: [exec]\n  condition: proc.nmae == \"x\"\n  output: \"x\"\n  priority: warning\n",
    );
    let f = match next(&mut rx).await {
        ReloadEvent::Failed(f) => f,
        ReloadEvent::Reloaded(r) => panic!("broken rules loaded: {:?}", r.diff),
    };
    let msg = f.error.to_string();
    assert!(
        msg.contains("60-broken.yaml"),
        "error names the file: {msg}"
    );
    assert!(msg.contains("Broken rule"), "error names the rule: {msg}");
    assert!(msg.contains("proc.nmae"), "error names the field: {msg}");
    assert!(
        msg.contains("60-broken.yaml:4"),
        "error names the line: {msg}"
    );
    reload::log_failed(&f);

    // The alert the daemon sends through the sinks, in Falco's JSON shape.
    let alert = reload::reload_failed_alert(Arc::from("host-1"), &f);
    let j = alert.to_json();
    assert_eq!(j["rule"], reload::RELOAD_FAILED_RULE);
    assert_eq!(j["priority"], "Error");
    assert_eq!(j["hostname"], "host-1");
    let errs = j["output_fields"]["vigil.reload.errors"]
        .as_array()
        .unwrap();
    assert_eq!(errs.len(), f.error.0.len());
    assert!(errs[0]["file"]
        .as_str()
        .unwrap()
        .ends_with("60-broken.yaml"));
    assert_eq!(errs[0]["line"], 4);
    assert!(errs[0]["item"].as_str().unwrap().contains("Broken rule"));
    assert_eq!(
        j["output_fields"]["vigil.reload.kept_hash"],
        good_hash.as_str()
    );
    assert!(j["output"].as_str().unwrap().contains("60-broken.yaml:4"));

    // Fix it, and at once disable a shipped rule: one reload, diff against the rules
    // still in force (`good`), not against the failed attempt.
    let shipped_name = names(&initial)
        .into_iter()
        .find(|n| !n.starts_with("Local rule"))
        .unwrap();
    save(
        &bad,
        &format!(
            "{}\n- rule: {shipped_name}\n  enabled: false\n",
            rule("Fixed rule", "tool-c")
        ),
    );
    let r = loop {
        match next(&mut rx).await {
            ReloadEvent::Reloaded(r) => break r,
            // The two saves may land in two rounds; only the final state matters.
            ReloadEvent::Failed(f) => eprintln!("intermediate failure: {}", f.error),
        }
    };
    assert_eq!(r.diff.added, vec!["Fixed rule".to_string()]);
    assert_eq!(r.diff.changed, vec![shipped_name.clone()]);
    assert_eq!(
        r.previous_hash, good_hash,
        "previous = the last good content"
    );
    let disabled = r.value.rules().find(|i| i.name == shipped_name).unwrap();
    assert!(!disabled.enabled);
    assert!(
        good.rules()
            .find(|i| i.name == shipped_name)
            .unwrap()
            .enabled
    );
    watcher.stop();
}
