//! `vigil explain` on the shipped rules: every open rule is scoped, so the
//! kernel filter takes open as `match` with path prefixes, write-only
//! prefixes and suffixes, and says which rule contributed what.

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn rules_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules")
}

fn explain(json: bool) -> String {
    let mut args = vec!["explain", "--rules"];
    let dir = rules_dir();
    args.push(dir.to_str().unwrap());
    if json {
        args.push("--json");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(&args)
        .env("VIGIL_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn shipped_open_rules_are_scoped_by_path() {
    let j: serde_json::Value = serde_json::from_str(&explain(true)).unwrap();
    let open = &j["types"]["open"];
    assert_eq!(open["mode"], "match", "{open}");
    let has = |key: &str, v: &str| open["sets"][key].as_array().unwrap().iter().any(|x| x == v);
    assert!(has("path_prefixes", "/etc/shadow"));
    assert!(has("path_prefixes", "/proc/1/"));
    assert!(has("write_prefixes", "/etc/"));
    assert!(has("write_prefixes", "/usr/bin/"));
    assert!(has("path_suffixes", "/.ssh/id_rsa"));
    assert!(has("write_suffixes", "/.ssh/authorized_keys"));
    assert!(has("write_suffixes", "/release_agent"));
    assert_eq!(open["sets"]["writes"], false, "no rule passes every write");
    assert_eq!(open["sets"]["unclean_paths"], true);
    // no open rule forces pass-all
    for r in j["rules"].as_array().unwrap() {
        if r["events"].as_array().unwrap().iter().any(|e| e == "open") {
            assert!(r.get("pass_all_reason").is_none(), "{r}");
        }
    }
    let text = explain(false);
    assert!(
        text.contains("Write below etc [open]: write with path prefix in {\"/etc/\"}"),
        "{text}"
    );
}

/// explain lists the hooks: the always-on set, the on-demand tracepoints the
/// shipped rules' event types attach, and the kinds this kernel cannot
/// report (module, where there are no module syscalls).
#[test]
fn explain_lists_the_hooks_the_rules_attach() {
    let j: serde_json::Value = serde_json::from_str(&explain(true)).unwrap();
    let hooks = &j["hooks"];
    let has = |key: &str, v: &str| hooks[key].as_array().unwrap().iter().any(|x| x == v);
    assert!(has("always", "sched_process_exec"), "{hooks}");
    for h in [
        "sys_exit_dup2",
        "sys_exit_fcntl",
        "sys_exit_symlinkat",
        "sys_exit_bpf",
        "io_uring_submit_req",
    ] {
        assert!(has("on_demand", h), "{h} in {hooks}");
    }
    let tracefs = std::path::Path::new("/sys/kernel/tracing/events/syscalls");
    if tracefs.join("sys_exit_openat").exists() && !tracefs.join("sys_exit_finit_module").exists() {
        let u = hooks["unavailable"].as_array().unwrap();
        assert!(
            u.iter().any(|x| x.as_str().unwrap().starts_with("module:")),
            "{hooks}"
        );
        assert!(!has("on_demand", "sys_exit_finit_module"));
    }
    let text = explain(false);
    assert!(
        text.contains("hooks:\n  always      sched_process_exec"),
        "{text}"
    );
    assert!(text.contains("  on demand   "), "{text}");
}
