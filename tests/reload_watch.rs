//! Hot-reload watcher against real files in temp dirs: in-place edits, editor
//! rename-saves, `mv`, Kubernetes-style `..data` symlink swaps, a swapped
//! symlinked rules directory, bad-then-good files, unchanged content, the
//! config file, SIGHUP-style triggers, and (once the engine has it) the real
//! `RuleSet::load`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use vigil::reload;

use reload::{Cause, ReloadEvent, WatchConfig, Watcher};
use tokio::sync::mpsc::Receiver;

/// The test "rule set": file name -> trimmed content of each listed rule file.
type Files = BTreeMap<String, String>;
type Event = ReloadEvent<Files, String, Vec<String>>;

/// Parses the rule files like a loader would: a file containing "bad" is an error naming it.
fn load_files(paths: &[PathBuf]) -> Result<Files, String> {
    let mut out = Files::new();
    for f in reload::list_rule_files(paths) {
        let text = fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        if let Some(line) = text.lines().position(|l| l.contains("bad")) {
            return Err(format!("{}:{}: bad rule", f.display(), line + 1));
        }
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        out.insert(name, text.trim().to_string());
    }
    Ok(out)
}

/// Names added, removed or changed between two loads.
fn diff_files(new: &Files, old: &Files) -> Vec<String> {
    let mut names: Vec<String> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .chain(old.keys().filter(|k| !new.contains_key(*k)).cloned())
        .collect();
    names.sort();
    names
}

struct Harness {
    watcher: Watcher,
    rx: Receiver<Event>,
    loads: Arc<AtomicUsize>,
    initial_hash: String,
}

fn start(rule_paths: Vec<PathBuf>, config: Option<PathBuf>) -> Harness {
    let snap = reload::snapshot(&rule_paths, config.as_deref());
    let initial = load_files(&rule_paths).expect("initial load");
    start_with(rule_paths, config, initial, snap.hash)
}

fn start_with(
    rule_paths: Vec<PathBuf>,
    config: Option<PathBuf>,
    initial: Files,
    initial_hash: String,
) -> Harness {
    let mut cfg = WatchConfig::new(rule_paths, config);
    cfg.debounce = Duration::from_millis(100);
    // Far away: these tests must pass on filesystem events alone.
    cfg.rehash_interval = Duration::from_secs(3600);
    let loads = Arc::new(AtomicUsize::new(0));
    let l = loads.clone();
    let (watcher, rx) = Watcher::spawn(
        cfg,
        Arc::new(initial),
        initial_hash.clone(),
        move |p: &[PathBuf]| {
            l.fetch_add(1, Ordering::SeqCst);
            load_files(p)
        },
        diff_files,
    )
    .expect("watcher starts");
    Harness {
        watcher,
        rx,
        loads,
        initial_hash,
    }
}

/// The next report; the bound only keeps a broken watcher from hanging the suite.
async fn next(rx: &mut Receiver<Event>) -> Event {
    match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
        Ok(Some(ev)) => ev,
        Ok(None) => panic!("watcher stopped"),
        Err(_) => panic!("no reload reported within 30 s"),
    }
}

async fn next_ok(rx: &mut Receiver<Event>) -> reload::Reloaded<Files, Vec<String>> {
    match next(rx).await {
        ReloadEvent::Reloaded(r) => r,
        ReloadEvent::Failed(f) => panic!("unexpected failed reload: {}", f.error),
    }
}

fn get<'a>(r: &'a reload::Reloaded<Files, Vec<String>>, name: &str) -> Option<&'a str> {
    r.value.get(name).map(String::as_str)
}

fn write(p: &Path, s: &str) {
    fs::write(p, s).unwrap();
}

#[tokio::test]
async fn in_place_edit_reloads_with_diff_and_hashes() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("a.yaml"), "1");
    write(&d.path().join("b.yaml"), "x");
    let mut h = start(vec![d.path().to_path_buf()], None);

    write(&d.path().join("a.yaml"), "2");
    let r = next_ok(&mut h.rx).await;
    assert_eq!(get(&r, "a.yaml"), Some("2"));
    assert_eq!(get(&r, "b.yaml"), Some("x"));
    assert_eq!(r.diff, vec!["a.yaml".to_string()]);
    assert_eq!(r.cause, Cause::Files);
    assert_eq!(r.previous_hash, h.initial_hash);
    assert_eq!(
        r.hash,
        reload::snapshot(&[d.path().to_path_buf()], None).hash
    );
    assert_eq!(r.files.len(), 2);
    assert_eq!(h.loads.load(Ordering::SeqCst), 1);
    h.watcher.stop();
}

#[tokio::test]
async fn editor_rename_save_and_mv_in_and_out() {
    let d = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    write(&d.path().join("a.yaml"), "1");
    let mut h = start(vec![d.path().to_path_buf()], None);

    // vim/emacs style: write a temp file next to it, rename it over the original.
    write(&d.path().join(".a.yaml.swp"), "2");
    fs::rename(d.path().join(".a.yaml.swp"), d.path().join("a.yaml")).unwrap();
    let r = next_ok(&mut h.rx).await;
    assert_eq!(get(&r, "a.yaml"), Some("2"));
    assert_eq!(r.diff, vec!["a.yaml".to_string()]);

    // mv a new file in from another directory.
    write(&outside.path().join("b.yaml"), "new");
    fs::rename(outside.path().join("b.yaml"), d.path().join("b.yaml")).unwrap();
    let r = next_ok(&mut h.rx).await;
    assert_eq!(get(&r, "b.yaml"), Some("new"));
    assert_eq!(r.diff, vec!["b.yaml".to_string()]);

    // mv it out again.
    fs::rename(d.path().join("b.yaml"), outside.path().join("b.yaml")).unwrap();
    let r = next_ok(&mut h.rx).await;
    assert_eq!(get(&r, "b.yaml"), None);
    assert_eq!(r.diff, vec!["b.yaml".to_string()]);
    h.watcher.stop();
}

/// What kubelet does to a ConfigMap volume: files are symlinks into `..data`, itself a
/// symlink to a timestamped directory; an update writes a new directory and renames a
/// fresh `..data_tmp` symlink over `..data` (one atomic step).
fn configmap_update(dir: &Path, generation: u32, content: &str) {
    let ts = dir.join(format!("..2026_11_25_12_00_0{generation}.{generation}"));
    fs::create_dir(&ts).unwrap();
    write(&ts.join("rules.yaml"), content);
    let tmp = dir.join("..data_tmp");
    symlink(ts.file_name().unwrap(), &tmp).unwrap();
    let old = fs::read_link(dir.join("..data")).ok();
    fs::rename(&tmp, dir.join("..data")).unwrap();
    if let Some(old) = old {
        fs::remove_dir_all(dir.join(old)).unwrap();
    }
}

#[tokio::test]
async fn configmap_data_symlink_swap() {
    let d = tempfile::tempdir().unwrap();
    configmap_update(d.path(), 1, "v1");
    symlink("..data/rules.yaml", d.path().join("rules.yaml")).unwrap();
    let mut h = start(vec![d.path().to_path_buf()], None);
    assert_eq!(
        load_files(&[d.path().to_path_buf()]).unwrap()["rules.yaml"],
        "v1"
    );

    configmap_update(d.path(), 2, "v2");
    let r = next_ok(&mut h.rx).await;
    assert_eq!(get(&r, "rules.yaml"), Some("v2"));
    assert_eq!(
        r.value.len(),
        1,
        "..data and the timestamped dirs are not rule files"
    );

    configmap_update(d.path(), 3, "v3");
    let r = next_ok(&mut h.rx).await;
    assert_eq!(get(&r, "rules.yaml"), Some("v3"));
    h.watcher.stop();
}

#[tokio::test]
async fn configmap_swap_of_a_single_mounted_file() {
    // The rule path is the file itself (subPath-less mount of one key).
    let d = tempfile::tempdir().unwrap();
    configmap_update(d.path(), 1, "v1");
    let file = d.path().join("rules.yaml");
    symlink("..data/rules.yaml", &file).unwrap();
    let mut h = start(vec![file.clone()], None);

    configmap_update(d.path(), 2, "v2");
    let r = next_ok(&mut h.rx).await;
    assert_eq!(get(&r, "rules.yaml"), Some("v2"));
    h.watcher.stop();
}

#[tokio::test]
async fn swapped_symlinked_rules_directory_keeps_being_watched() {
    // rules -> v1 swapped atomically to rules -> v2; later edits inside v2 must be seen
    // (the watch has to move to the new directory inode).
    let d = tempfile::tempdir().unwrap();
    for v in ["v1", "v2"] {
        fs::create_dir(d.path().join(v)).unwrap();
        write(&d.path().join(v).join("a.yaml"), v);
    }
    let rules = d.path().join("rules");
    symlink("v1", &rules).unwrap();
    let mut h = start(vec![rules.clone()], None);

    symlink("v2", d.path().join("rules.tmp")).unwrap();
    fs::rename(d.path().join("rules.tmp"), &rules).unwrap();
    let r = next_ok(&mut h.rx).await;
    assert_eq!(get(&r, "a.yaml"), Some("v2"));

    write(&d.path().join("v2").join("a.yaml"), "v2-edited");
    let r = next_ok(&mut h.rx).await;
    assert_eq!(get(&r, "a.yaml"), Some("v2-edited"));

    // An edit in the directory no longer in use changes nothing; the next real edit is next.
    write(&d.path().join("v1").join("a.yaml"), "v1-edited");
    write(&d.path().join("v2").join("b.yaml"), "b");
    let r = next_ok(&mut h.rx).await;
    assert_eq!(r.diff, vec!["b.yaml".to_string()]);
    h.watcher.stop();
}

#[tokio::test]
async fn directory_replaced_by_mv_keeps_being_watched() {
    let d = tempfile::tempdir().unwrap();
    let rules = d.path().join("rules.d");
    fs::create_dir(&rules).unwrap();
    write(&rules.join("a.yaml"), "old");
    let mut h = start(vec![rules.clone()], None);

    let staged = d.path().join("rules.d.new");
    fs::create_dir(&staged).unwrap();
    write(&staged.join("a.yaml"), "new");
    fs::rename(&rules, d.path().join("rules.d.old")).unwrap();
    fs::rename(&staged, &rules).unwrap();
    let r = next_ok(&mut h.rx).await;
    assert_eq!(get(&r, "a.yaml"), Some("new"));

    write(&rules.join("a.yaml"), "newer");
    let r = next_ok(&mut h.rx).await;
    assert_eq!(get(&r, "a.yaml"), Some("newer"));
    h.watcher.stop();
}

#[tokio::test]
async fn bad_file_keeps_old_value_then_good_file_reloads() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a.yaml");
    write(&a, "good-1");
    let mut h = start(vec![d.path().to_path_buf()], None);

    write(&a, "line one\nthis is bad\n");
    let f = match next(&mut h.rx).await {
        ReloadEvent::Failed(f) => f,
        ReloadEvent::Reloaded(r) => panic!("bad file loaded: {:?}", r.value),
    };
    assert!(
        f.error.contains("a.yaml:2"),
        "error names file and line: {}",
        f.error
    );
    assert_eq!(f.kept_hash, h.initial_hash);
    assert_ne!(f.hash, h.initial_hash);

    write(&a, "good-2");
    let r = next_ok(&mut h.rx).await;
    assert_eq!(get(&r, "a.yaml"), Some("good-2"));
    // The diff is against the value still in force (good-1), not the failed attempt.
    assert_eq!(r.diff, vec!["a.yaml".to_string()]);
    assert_eq!(r.previous_hash, h.initial_hash);
    h.watcher.stop();
}

#[tokio::test]
async fn unchanged_content_does_not_reload() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a.yaml");
    let b = d.path().join("b.yaml");
    write(&a, "same");
    write(&b, "b1");
    let mut h = start(vec![d.path().to_path_buf()], None);

    // Identical rewrite, a rename-save with identical content, a non-rule file, a dot file.
    write(&a, "same");
    write(&d.path().join("a.tmp"), "same");
    fs::rename(d.path().join("a.tmp"), &a).unwrap();
    write(&d.path().join("README.txt"), "not a rule");
    write(&d.path().join(".hidden.yaml"), "hidden");
    // Then one real change: it must be the next (and only) reload.
    write(&b, "b2");
    let r = next_ok(&mut h.rx).await;
    assert_eq!(r.diff, vec!["b.yaml".to_string()]);
    assert_eq!(get(&r, "b.yaml"), Some("b2"));
    assert_eq!(
        h.loads.load(Ordering::SeqCst),
        1,
        "only the real change was loaded"
    );
    h.watcher.stop();
}

#[tokio::test]
async fn trigger_reloads_even_when_unchanged() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("a.yaml"), "1");
    let mut h = start(vec![d.path().to_path_buf()], None);
    let handle = h.watcher.handle();
    assert!(handle.trigger());
    let r = next_ok(&mut h.rx).await;
    assert_eq!(r.cause, Cause::Trigger);
    assert!(r.diff.is_empty());
    assert_eq!(r.hash, h.initial_hash);
    assert_eq!(h.loads.load(Ordering::SeqCst), 1);
    h.watcher.stop();
    assert!(
        !handle.trigger(),
        "trigger after stop reports the watcher is gone"
    );
}

#[tokio::test]
async fn config_file_change_reloads() {
    let rules = tempfile::tempdir().unwrap();
    let etc = tempfile::tempdir().unwrap();
    write(&rules.path().join("a.yaml"), "1");
    let cfg = etc.path().join("vigil.yaml");
    write(&cfg, "outputs: {}\n");
    let mut h = start(vec![rules.path().to_path_buf()], Some(cfg.clone()));

    write(
        &etc.path().join("vigil.yaml.new"),
        "outputs: {stdout: {}}\n",
    );
    fs::rename(etc.path().join("vigil.yaml.new"), &cfg).unwrap();
    let r = next_ok(&mut h.rx).await;
    assert_eq!(r.cause, Cause::Files);
    assert!(r.diff.is_empty(), "rules unchanged, config changed");
    assert_ne!(r.hash, h.initial_hash);
    h.watcher.stop();
}

#[tokio::test]
async fn single_file_rule_path_rename_save() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("local.yaml");
    write(&f, "1");
    let mut h = start(vec![f.clone()], None);
    write(&d.path().join("local.yaml~"), "2");
    fs::rename(d.path().join("local.yaml~"), &f).unwrap();
    let r = next_ok(&mut h.rx).await;
    assert_eq!(get(&r, "local.yaml"), Some("2"));
    h.watcher.stop();
}

#[tokio::test]
async fn change_between_initial_load_and_start_is_picked_up() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a.yaml");
    write(&a, "1");
    let paths = vec![d.path().to_path_buf()];
    let snap = reload::snapshot(&paths, None);
    let initial = load_files(&paths).unwrap();
    write(&a, "2"); // lands before the watcher exists
    let mut h = start_with(paths, None, initial, snap.hash);
    let r = next_ok(&mut h.rx).await;
    assert_eq!(r.cause, Cause::Startup);
    assert_eq!(get(&r, "a.yaml"), Some("2"));
    h.watcher.stop();
}

#[tokio::test]
async fn periodic_rehash_catches_changes_without_events() {
    // A rule directory that does not exist at start cannot be watched; once it appears in
    // an unwatched place the periodic re-hash is what notices.
    let d = tempfile::tempdir().unwrap();
    let deep = d.path().join("x/y/rules.d");
    let staging = d.path().join("staging");
    let paths = vec![deep.clone()];
    let snap = reload::snapshot(&paths, None);
    let mut cfg = WatchConfig::new(paths, None);
    cfg.debounce = Duration::from_millis(100);
    cfg.rehash_interval = Duration::from_millis(300);
    let (w, mut rx) = Watcher::spawn(
        cfg,
        Arc::new(Files::new()),
        snap.hash,
        load_files,
        diff_files,
    )
    .unwrap();
    // Appears in one step, so the round that notices sees the file too.
    fs::create_dir_all(staging.join("x/y/rules.d")).unwrap();
    write(&staging.join("x/y/rules.d/a.yaml"), "appeared");
    fs::rename(staging.join("x"), d.path().join("x")).unwrap();
    let r = match next(&mut rx).await {
        ReloadEvent::Reloaded(r) => r,
        ReloadEvent::Failed(f) => panic!("{}", f.error),
    };
    assert_eq!(r.cause, Cause::Periodic);
    assert_eq!(r.value.get("a.yaml").map(String::as_str), Some("appeared"));
    w.stop();
}

#[tokio::test]
async fn rescan_reloads_only_changed_content() {
    // An unwatchable place (parent missing at start): no inotify event will come, so
    // what reloads is the explicit rescan.
    let d = tempfile::tempdir().unwrap();
    let deep = d.path().join("x/rules.d");
    let paths = vec![deep.clone()];
    let snap = reload::snapshot(&paths, None);
    let mut cfg = WatchConfig::new(paths, None);
    cfg.rehash_interval = Duration::from_secs(3600);
    let loads = Arc::new(AtomicUsize::new(0));
    let l = loads.clone();
    let (w, mut rx) = Watcher::spawn(
        cfg,
        Arc::new(Files::new()),
        snap.hash,
        move |p: &[PathBuf]| {
            l.fetch_add(1, Ordering::SeqCst);
            load_files(p)
        },
        diff_files,
    )
    .unwrap();
    let handle = w.handle();
    // Nothing changed: a rescan loads nothing. Then a change plus a rescan loads once.
    assert!(handle.rescan());
    // Let the worker take that rescan before the files change: were the rename
    // to land in the middle of its snapshot, it would (rightly) see unstable
    // content and load twice, which this test cannot tell from a bad rescan.
    std::thread::sleep(Duration::from_millis(300));
    let staging = d.path().join("staging");
    fs::create_dir_all(staging.join("rules.d")).unwrap();
    write(&staging.join("rules.d/a.yaml"), "1");
    fs::rename(&staging, d.path().join("x")).unwrap();
    assert!(w.rescan());
    let r = next_ok(&mut rx).await;
    assert_eq!(r.cause, Cause::Rescan);
    assert_eq!(get(&r, "a.yaml"), Some("1"));
    assert_eq!(
        loads.load(Ordering::SeqCst),
        1,
        "the no-change rescan loaded nothing"
    );
    w.stop();
}

/// The inotify watch masks this process holds on `dir` (from /proc/self/fdinfo).
fn inotify_masks_on(dir: &Path) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let ino = format!("ino:{:x} ", fs::metadata(dir).unwrap().ino());
    let mut masks = Vec::new();
    for fd in fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let is_inotify = fs::read_link(fd.path())
            .map(|t| t.to_string_lossy() == "anon_inode:inotify")
            .unwrap_or(false);
        if !is_inotify {
            continue;
        }
        let info = fs::read_to_string(Path::new("/proc/self/fdinfo").join(fd.file_name()))
            .unwrap_or_default();
        for line in info
            .lines()
            .filter(|l| l.starts_with("inotify ") && l.contains(&ino))
        {
            let mask = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("mask:"))
                .expect("mask in fdinfo");
            masks.push(u32::from_str_radix(mask, 16).unwrap());
        }
    }
    masks
}

#[tokio::test]
async fn watches_ask_for_changes_only_never_opens_or_reads() {
    // A single rule file: its parent directory is watched, as `/etc` would be for
    // `--rules /etc/foo.yaml`. Opens and reads there must not queue inotify events.
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("local.yaml");
    write(&file, "one");
    let mut h = start(vec![file.clone()], None);
    let masks = inotify_masks_on(d.path());
    assert!(!masks.is_empty(), "the rule file's directory is watched");
    const IN_ACCESS: u32 = 0x1;
    const IN_MODIFY: u32 = 0x2;
    const IN_CLOSE_NOWRITE: u32 = 0x10;
    const IN_OPEN: u32 = 0x20;
    const IN_MOVED_TO: u32 = 0x80;
    const IN_CREATE: u32 = 0x100;
    for m in &masks {
        assert_eq!(
            m & (IN_ACCESS | IN_OPEN | IN_CLOSE_NOWRITE),
            0,
            "mask {m:#x}"
        );
        assert_eq!(
            m & (IN_MODIFY | IN_MOVED_TO | IN_CREATE),
            IN_MODIFY | IN_MOVED_TO | IN_CREATE,
            "mask {m:#x} misses a change kind"
        );
    }
    // And changes still arrive through that mask.
    write(&file, "two");
    let r = next_ok(&mut h.rx).await;
    assert_eq!(get(&r, "local.yaml"), Some("two"));
    h.watcher.stop();
}
