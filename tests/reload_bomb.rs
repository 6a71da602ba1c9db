//! Hot reload and an expansion bomb (issue 17, item 1): dropping a rule file
//! whose macros expand exponentially into a watched rules directory is a
//! failed reload that names the macro chain; the rules in force stay, and a
//! later good file reloads normally. Uses the real loader and the daemon's
//! reload worker (`src/reload.rs`).

#[path = "../engine/tests/common/bombs.rs"]
mod bombs;
use vigil::reload;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reload::{ReloadEvent, WatchConfig, Watcher};
use vigil_engine::{Evaluator, Event, LoadErrors, RuleSet, RuleSetDiff};

type Ev = ReloadEvent<RuleSet, LoadErrors, RuleSetDiff>;

async fn next(rx: &mut tokio::sync::mpsc::Receiver<Ev>) -> Ev {
    match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
        Ok(Some(ev)) => ev,
        Ok(None) => panic!("watcher stopped"),
        Err(_) => panic!("no reload reported within 60 s"),
    }
}

/// Writes `text` the way editors do: a temp file renamed into place.
fn save(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, path).unwrap();
}

fn fires(rs: &Arc<RuleSet>, comm: &str) -> Vec<String> {
    let mut ev = Evaluator::new(rs.clone(), "h");
    let j = serde_json::json!({"evt.type": "exec", "proc.name": comm});
    let e = Event::from_flat_json(j.as_object().unwrap()).unwrap();
    let mut out = Vec::new();
    ev.evaluate(&e, &mut out);
    out.iter().map(|a| a.rule.to_string()).collect()
}

#[tokio::test]
async fn a_dropped_bomb_is_rejected_and_the_old_rules_stay() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("rules.d");
    fs::create_dir(&dir).unwrap();
    fs::write(
        dir.join("10-good.yaml"),
        bombs::rule("Good rule", "proc.name == \"tool\""),
    )
    .unwrap();
    let paths: Vec<PathBuf> = vec![dir.clone()];
    let snap = reload::snapshot(&paths, None);
    let initial = Arc::new(RuleSet::load(&paths).expect("good rules load"));
    let mut cfg = WatchConfig::new(paths.clone(), None);
    cfg.debounce = Duration::from_millis(100);
    cfg.rehash_interval = Duration::from_secs(3600);
    let (watcher, mut rx) = Watcher::spawn(
        cfg,
        initial.clone(),
        snap.hash.clone(),
        |p: &[PathBuf]| RuleSet::load(p),
        |new: &RuleSet, old: &RuleSet| new.diff(old),
    )
    .unwrap();

    save(&dir.join("20-bomb.yaml"), &bombs::macro_bomb(40));
    let f = match next(&mut rx).await {
        Ev::Failed(f) => f,
        Ev::Reloaded(r) => panic!("the bomb loaded: {:?}", r.diff),
    };
    let msg = f.error.to_string();
    assert!(
        msg.contains("20-bomb.yaml:82:3: macro `m_40`: macro m_40 -> m_39 -> m_38 -> m_37 -> ... -> m_2 -> m_1 -> m_0 expands beyond"),
        "{msg}"
    );
    assert_eq!(
        f.kept_hash, snap.hash,
        "the rules in force are the initial ones"
    );
    eprintln!(
        "measured: the depth-40 bomb was rejected in {:?}",
        f.load_time
    );
    // The rule set in force still works.
    assert_eq!(fires(&initial, "tool"), vec!["Good rule"]);

    // Replacing the bomb with a good file reloads, diffed against the rules in force.
    fs::remove_file(dir.join("20-bomb.yaml")).unwrap();
    save(
        &dir.join("30-more.yaml"),
        &bombs::rule("More rule", "proc.name == \"other\""),
    );
    let r = loop {
        match next(&mut rx).await {
            Ev::Reloaded(r) => break r,
            // The removal and the save may land in two rounds.
            Ev::Failed(f) => eprintln!("intermediate failure: {}", f.error),
        }
    };
    assert_eq!(r.diff.added, vec!["More rule".to_string()]);
    assert!(
        r.diff.removed.is_empty() && r.diff.changed.is_empty(),
        "{:?}",
        r.diff
    );
    assert_eq!(r.previous_hash, snap.hash);
    assert_eq!(fires(&r.value, "other"), vec!["More rule"]);
    watcher.stop();
}
