//! Falco's own rule files load unchanged (issue 12) and their active rules
//! fire on what they are meant to catch, not on near-misses.
//!
//! The files live outside the project, in `<repo>/../shared/falco/` (never
//! copied in). Without them the tests skip with a message, unless `CI=true`
//! or `VIGIL_REQUIRE_LIVE=1`, where that is a failure.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use vigil_engine::{Evaluator, Event, RuleSet};

#[path = "common/falco.rs"]
mod falco;
use falco::falco_file;

fn shipped_rules() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../rules")
}

fn ev(j: serde_json::Value) -> Event {
    Event::from_flat_json(j.as_object().unwrap()).unwrap()
}

fn fired(rs: &Arc<RuleSet>, e: &Event) -> Vec<String> {
    let mut ev = Evaluator::new(rs.clone(), "h");
    let mut out = Vec::new();
    ev.evaluate(e, &mut out);
    out.iter().map(|a| a.rule.to_string()).collect()
}

fn load(paths: &[PathBuf]) -> RuleSet {
    RuleSet::load(paths).unwrap_or_else(|e| panic!("load failed:\n{e}"))
}

#[test]
fn each_file_loads_alone_and_with_the_shipped_rules() {
    let names = [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
    ];
    let Some(files) = names
        .iter()
        .map(|n| falco_file(n))
        .collect::<Option<Vec<_>>>()
    else {
        return;
    };
    for f in &files {
        let rs = load(std::slice::from_ref(f));
        let falco: Vec<_> = rs.rules().filter(|r| r.falco.is_some()).collect();
        assert!(!falco.is_empty(), "{}: no Falco rules", f.display());
        for r in &falco {
            let st = r.falco.as_ref().unwrap();
            eprintln!(
                "{}: {}: {}{}",
                f.file_name().unwrap().to_string_lossy(),
                r.name,
                st.inactive
                    .as_deref()
                    .map(|w| format!("inactive: {w}"))
                    .unwrap_or_else(|| "active".into()),
                if st.notes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", st.notes.join("; "))
                }
            );
            // Inactive rules never run; active ones know their event kinds.
            assert_eq!(r.enabled, st.inactive.is_none() && st.enabled, "{}", r.name);
            if st.inactive.is_none() {
                assert!(!r.events.is_empty(), "{}", r.name);
            }
        }
        // Loaded after the shipped rules, a Falco rule of the same name
        // replaces the shipped one (Falco's "later definition wins"), said
        // in a warning.
        let both = load(&[shipped_rules(), f.clone()]);
        let shipped = load(&[shipped_rules()]);
        assert!(both.rules().count() >= shipped.rules().count());
        assert!(both.rules().count() < shipped.rules().count() + rs.rules().count() + 1);
    }
    let all = load(&files);
    let stable = load(&files[..1]);
    let active = stable.rules().filter(|r| r.enabled).count();
    assert!(active >= 8, "only {active} stable rules active");
    assert!(all.rules().count() >= 90);
}

fn stable() -> Option<Arc<RuleSet>> {
    Some(Arc::new(load(&[falco_file("falco_rules.yaml")?])))
}

#[test]
fn run_shell_untrusted_fires_under_nginx_not_under_a_shell() {
    let Some(rs) = stable() else { return };
    let shell = |parent: &str| {
        ev(
            json!({"evt.type": "exec", "proc.name": "sh", "proc.exe": "/bin/sh",
                  "proc.cmdline": "sh -c id", "proc.args": ["-c", "id"],
                  "proc.pname": parent, "proc.pexe": format!("/usr/sbin/{parent}"),
                  "proc.ancestors": [parent, "systemd"]}),
        )
    };
    assert!(fired(&rs, &shell("nginx")).contains(&"Run shell untrusted".to_string()));
    assert!(!fired(&rs, &shell("bash")).contains(&"Run shell untrusted".to_string()));
    // Compiled to the native tree (proc.aname[N] included): no Rhai leaf.
    assert_eq!(rs.is_native("Run shell untrusted"), Some(true));
    assert_eq!(rs.is_native("Read sensitive file untrusted"), Some(true));
}

#[test]
fn read_sensitive_file_untrusted_fires_for_unknown_program_not_sshd() {
    let Some(rs) = stable() else { return };
    let read = |name: &str| {
        ev(
            json!({"evt.type": "open", "proc.name": name, "proc.exe": format!("/usr/bin/{name}"),
                  "proc.cmdline": name, "proc.pname": "bash", "file.path": "/etc/shadow",
                  "file.flags": ["O_RDONLY"], "evt.ret": 3}),
        )
    };
    let rule = "Read sensitive file untrusted".to_string();
    assert!(fired(&rs, &read("evilprog")).contains(&rule));
    assert!(!fired(&rs, &read("sshd")).contains(&rule));
    // A write is not a read; a failed open is no read either.
    let mut w = read("evilprog");
    if let vigil_engine::Detail::File(f) = &mut w.detail {
        f.flags = 0o1; // O_WRONLY
    }
    assert!(!fired(&rs, &w).contains(&rule));
}

#[test]
fn search_private_keys_and_clear_logs() {
    let Some(rs) = stable() else { return };
    let exec = |name: &str, args: &[&str]| {
        let cmdline = std::iter::once(name)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        ev(
            json!({"evt.type": "exec", "proc.name": name, "proc.cmdline": cmdline,
                  "proc.args": args, "proc.pname": "bash"}),
        )
    };
    let keys = "Search Private Keys or Passwords".to_string();
    assert!(fired(&rs, &exec("find", &["/", "-name", "id_rsa"])).contains(&keys));
    assert!(!fired(&rs, &exec("find", &["/", "-name", "notes.txt"])).contains(&keys));
    assert!(fired(&rs, &exec("grep", &["-r", "BEGIN RSA PRIVATE", "/home"])).contains(&keys));

    let clear = "Clear Log Activities".to_string();
    let open = |path: &str, flags: &[&str]| {
        ev(
            json!({"evt.type": "open", "proc.name": "evil", "proc.cmdline": "evil",
                  "file.path": path, "file.flags": flags, "evt.ret": 3}),
        )
    };
    assert!(fired(&rs, &open("/var/log/auth.log", &["O_WRONLY", "O_TRUNC"])).contains(&clear));
    assert!(!fired(&rs, &open("/var/log/auth.log", &["O_RDONLY"])).contains(&clear));
    assert!(!fired(&rs, &open("/tmp/notes.txt", &["O_WRONLY", "O_TRUNC"])).contains(&clear));
}

#[test]
fn directory_traversal_monitored_file_read() {
    let Some(rs) = stable() else { return };
    let open = |raw: &str, path: &str| {
        ev(
            json!({"evt.type": "open", "proc.name": "php-fpm", "proc.pname": "php-fpm",
                  "file.path": path, "file.path_raw": raw, "file.flags": ["O_RDONLY"],
                  "evt.ret": 3}),
        )
    };
    let rule = "Directory traversal monitored file read".to_string();
    assert!(fired(&rs, &open("/var/www/../../etc/passwd", "/etc/passwd")).contains(&rule));
    assert!(fired(&rs, &open("../../../etc/shadow", "/etc/shadow")).contains(&rule));
    assert!(!fired(&rs, &open("/etc/passwd", "/etc/passwd")).contains(&rule));
    // Names ending in `..` in a clean absolute path are no traversal (the
    // kernel filter, which passes unnormalised paths only, agrees).
    assert!(!fired(&rs, &open("/etc/a../b../passwd", "/etc/a../b../passwd")).contains(&rule));
}

/// A user file appending an exception in Falco's fields/comps/values form
/// to a stable rule, as Falco users tune rules.
#[test]
fn exception_in_fields_comps_values_form() {
    let Some(stable) = falco_file("falco_rules.yaml") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("falco_rules.local.yaml");
    std::fs::write(
        &local,
        r#"
- rule: Run shell untrusted
  exceptions:
    - name: trusted_nginx_scripts
      fields: [proc.pname, proc.cmdline]
      comps: [=, startswith]
      values:
        - [nginx, "sh /opt/healthcheck"]
    - name: by_parent_list
      fields: proc.pname
      comps: in
      values: [[myapp, otherapp]]
  override:
    exceptions: append
"#,
    )
    .unwrap();
    let rs = Arc::new(load(&[stable, local]));
    let shell = |parent: &str, cmdline: &str| {
        ev(
            json!({"evt.type": "exec", "proc.name": "sh", "proc.cmdline": cmdline,
                  "proc.pname": parent, "proc.ancestors": [parent]}),
        )
    };
    let rule = "Run shell untrusted".to_string();
    assert!(fired(&rs, &shell("nginx", "sh -c id")).contains(&rule));
    assert!(!fired(&rs, &shell("nginx", "sh /opt/healthcheck --quick")).contains(&rule));
    assert!(fired(&rs, &shell("httpd", "sh /opt/healthcheck")).contains(&rule));
    assert!(!fired(&rs, &shell("myapp", "sh -c id")).contains(&rule));
}

/// The kernel filter derived from Falco's rules is as tight as for vigil's:
/// the shell rule narrows exec to shell comms, the sensitive-file rule
/// narrows open to the sensitive paths.
#[test]
fn kernel_filter_terms_from_falco_rules() {
    let Some(rs) = stable() else { return };
    let terms: std::collections::HashMap<String, _> = rs
        .filter_contributions()
        .into_iter()
        .map(|c| (c.rule.clone(), c.term))
        .collect();
    let shell = terms["Run shell untrusted"].as_ref().expect("a term");
    assert!(shell.comms.contains("bash") && shell.comms.contains("sh"));
    let read = terms["Read sensitive file untrusted"]
        .as_ref()
        .expect("a term");
    assert!(read.path_prefixes.contains("/etc/shadow"), "{read:?}");
    assert!(read.path_prefixes.contains("/etc/pam.d/"), "{read:?}");

    // Directory traversal: unnormalised raw paths only, as the shipped
    // rule's, so opens are not pass-all.
    let trav = terms["Directory traversal monitored file read"]
        .as_ref()
        .expect("a term");
    let shipped = load(&[shipped_rules()]);
    let shipped_terms: std::collections::HashMap<String, _> = shipped
        .filter_contributions()
        .into_iter()
        .map(|c| (c.rule.clone(), c.term))
        .collect();
    let equivalent = shipped_terms["Directory traversal to sensitive file"]
        .as_ref()
        .expect("a term");
    assert!(trav.unclean_paths, "{trav:?}");
    assert_eq!(trav, equivalent);
    let open = vigil_engine::EventType::Open.index();
    assert!(
        matches!(
            rs.kernel_filter().types[open],
            vigil_engine::TypeFilter::Match(_)
        ),
        "{:?}",
        rs.kernel_filter().types[open]
    );
}

/// A plain override file (`enabled: false`, as in falco_rules.local.yaml)
/// turns a Falco rule off; it is then disabled but not inactive.
#[test]
fn override_file_disables_a_falco_rule() {
    let Some(stable) = falco_file("falco_rules.yaml") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local.yaml");
    std::fs::write(&local, "- rule: Run shell untrusted\n  enabled: false\n").unwrap();
    let rs = load(&[stable, local]);
    let r = rs
        .rules()
        .find(|r| r.name == "Run shell untrusted")
        .unwrap();
    assert!(!r.enabled);
    let st = r.falco.unwrap();
    assert!(st.inactive.is_none() && !st.enabled);
}

/// What falcosidekick reads from a Falco alert (its `types.FalcoPayload`:
/// `output`, `priority` parsed case-insensitively from Falco's names with
/// `informational` for info, `rule`, `time` as RFC 3339, `output_fields` as a
/// map of scalars, `source`, `tags`, `hostname`), checked on the JSON of a
/// Falco rule's alert; `output_fields` holds the template's fields by
/// Falco's names with Falco's types, vigil's own rules keep every event field.
fn assert_falcosidekick_payload(j: &serde_json::Value) {
    let o = j.as_object().expect("an object");
    for k in ["output", "priority", "rule", "time", "source", "hostname"] {
        assert!(o[k].is_string(), "{k}: {j}");
    }
    let p = o["priority"].as_str().unwrap().to_ascii_lowercase();
    let sidekick = [
        "emergency",
        "alert",
        "critical",
        "error",
        "warning",
        "notice",
        "informational",
        "debug",
    ];
    assert!(sidekick.contains(&p.as_str()), "{p}");
    let t = o["time"].as_str().unwrap();
    assert!(
        vigil_engine::alert::parse_rfc3339_nanos(t).is_some() && t.ends_with('Z'),
        "{t}"
    );
    assert!(o["tags"].as_array().unwrap().iter().all(|t| t.is_string()));
    assert!(o["output_fields"].is_object(), "{j}");
}

#[test]
fn falco_rule_alerts_are_falco_shaped() {
    let Some(rs) = stable() else { return };
    let e = ev(
        json!({"evt.type": "open", "evt.time": 1_795_000_000_123_456_789i64,
        "proc.name": "evilprog", "proc.pid": 4242, "proc.uid": 0, "user.name": "root",
        "proc.loginuid": 1000, "proc.exe": "/usr/bin/evilprog",
        "proc.cmdline": "evilprog /etc/shadow", "proc.args": ["/etc/shadow"],
        "proc.pname": "bash", "proc.ancestors": ["bash", "sshd", "systemd"],
        "file.path": "/etc/shadow", "file.path_raw": "/etc/shadow",
        "file.flags": ["O_RDONLY"], "evt.ret": 3}),
    );
    let mut evaluator = Evaluator::new(rs.clone(), "h");
    let mut out = Vec::new();
    evaluator.evaluate(&e, &mut out);
    let a = out
        .iter()
        .find(|a| &*a.rule == "Read sensitive file untrusted")
        .expect("the rule fires");
    let j = a.to_json();
    assert_falcosidekick_payload(&j);
    assert_eq!(j["priority"], "Warning");
    assert_eq!(j["source"], "syscall");
    assert!(j["tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "filesystem"));
    let f = j["output_fields"].as_object().unwrap();
    // Falco's names and types, the template's fields only (and evt.time).
    assert!(
        f.values().all(|v| !v.is_array() && !v.is_object()),
        "Falco's output_fields hold scalars: {f:?}"
    );
    assert_eq!(f["evt.time"], 1_795_000_000_123_456_789i64);
    assert_eq!(f["fd.name"], "/etc/shadow");
    assert_eq!(f["evt.type"], "openat");
    assert_eq!(f["user.uid"], 0);
    assert_eq!(f["user.loginuid"], 1000);
    assert_eq!(f["proc.aname[2]"], "sshd");
    assert_eq!(f["proc.aname[4]"], serde_json::Value::Null);
    assert_eq!(f["proc.exepath"], "/usr/bin/evilprog");
    assert_eq!(f["proc.tty"], 0);
    assert!(!f.contains_key("file.path") && !f.contains_key("proc.ancestors"));
    let out_text = j["output"].as_str().unwrap();
    assert!(
        out_text.starts_with("Sensitive file opened for reading by non-trusted program | file=/etc/shadow gparent=sshd ggparent=systemd gggparent=<NA> evt_type=openat user=root user_uid=0"),
        "{out_text}"
    );

    // `output_fields: all` adds every event field (vigil's names) to Falco's.
    evaluator.set_output_fields(vigil_engine::alert::OutputFields::All);
    out.clear();
    evaluator.evaluate(&e, &mut out);
    let a = out
        .iter()
        .find(|a| &*a.rule == "Read sensitive file untrusted")
        .unwrap();
    assert_eq!(a.output_fields["evt.type"], "openat");
    assert_eq!(a.output_fields["file.path"], "/etc/shadow");
    assert_eq!(a.output_fields["proc.pid"], 4242);

    // A vigil rule beside it keeps today's shape: every event field.
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("mine.yaml");
    std::fs::write(
        &mine,
        "- rule: Shadow read\n  events: [open]\n  condition: file.path == \"/etc/shadow\"\n  output: \"{proc.name} read it\"\n  priority: info\n",
    )
    .unwrap();
    let both = Arc::new(load(&[falco_file("falco_rules.yaml").unwrap(), mine]));
    let mut evaluator = Evaluator::new(both, "h");
    let mut out = Vec::new();
    evaluator.evaluate(&e, &mut out);
    assert_eq!(out.len(), 2, "{out:?}");
    let mine = out.iter().find(|a| &*a.rule == "Shadow read").unwrap();
    assert_eq!(mine.output, "evilprog read it");
    assert_eq!(mine.output_fields, e.to_flat_json());
    assert_eq!(mine.output_fields["evt.type"], "open");
    assert_falcosidekick_payload(&mine.to_json());
}

/// Falco's transformers (`tolower`, `toupper`, `b64`, `basename`, `len`),
/// `val()` and the byte operators run on vigil: rules using them are active
/// and match what Falco's would.
#[test]
fn transformers_val_and_byte_operators() {
    let rules = r#"
- required_engine_version: 0.38.0
- rule: Lower
  desc: d
  condition: evt.type = execve and tolower(proc.name) = curl
  output: "%proc.name"
  priority: WARNING
- rule: Upper base
  desc: d
  condition: evt.type = openat and toupper(basename(fd.name)) startswith AUTHORIZED_KEYS
  output: "%fd.name"
  priority: WARNING
- rule: Encoded
  desc: d
  condition: evt.type = execve and b64(proc.cmdline) contains "bash -i"
  output: "%proc.cmdline"
  priority: WARNING
- rule: Long name
  desc: d
  condition: evt.type = execve and len(proc.name) > 12
  output: "%proc.name"
  priority: WARNING
- rule: Same name as parent
  desc: d
  condition: evt.type = execve and proc.name = val(proc.pname)
  output: "%proc.name"
  priority: WARNING
- rule: Bytes
  desc: d
  condition: evt.type = openat and fd.name bcontains 2f746d70 and fd.name bstartswith 2F
  output: "%fd.name"
  priority: WARNING
"#;
    let rs = Arc::new(
        RuleSet::from_sources(&[("t.yaml".into(), rules.into())]).unwrap_or_else(|e| panic!("{e}")),
    );
    for r in rs.rules() {
        assert!(r.enabled, "{}: {:?}", r.name, r.falco);
    }
    let exec = |name: &str, pname: &str, cmdline: &str| {
        ev(
            json!({"evt.type": "exec", "proc.name": name, "proc.pname": pname,
                  "proc.cmdline": cmdline}),
        )
    };
    let open = |path: &str| {
        ev(
            json!({"evt.type": "open", "proc.name": "x", "file.path": path,
                  "file.flags": ["O_RDONLY"], "evt.ret": 3}),
        )
    };
    let has = |e: &Event, r: &str| fired(&rs, e).contains(&r.to_string());
    assert!(has(&exec("CURL", "sh", "CURL"), "Lower"));
    assert!(!has(&exec("wget", "sh", "wget"), "Lower"));
    assert!(has(&open("/root/.ssh/authorized_keys2"), "Upper base"));
    assert!(!has(&open("/root/.ssh/known_hosts"), "Upper base"));
    // base64 of "bash -i >& /dev/tcp/..." as the whole command line.
    assert!(has(
        &exec("sh", "x", "YmFzaCAtaSA+JiAvZGV2L3RjcA=="),
        "Encoded"
    ));
    assert!(!has(&exec("sh", "x", "bm90aGluZw=="), "Encoded"));
    assert!(!has(&exec("sh", "x", "not base64!"), "Encoded"));
    assert!(has(&exec("averyverylongname", "x", ""), "Long name"));
    assert!(!has(&exec("short", "x", ""), "Long name"));
    assert!(has(&exec("bash", "bash", ""), "Same name as parent"));
    assert!(!has(&exec("bash", "sshd", ""), "Same name as parent"));
    assert!(has(&open("/tmp/x"), "Bytes"));
    // bcontains: anywhere in the path.
    assert!(has(&open("/etc/tmpx/y"), "Bytes"));
    assert!(!has(&open("/var/x"), "Bytes"));

    // A transformer on a field that is not one vigil field: inactive, said so.
    let rs = RuleSet::from_sources(&[(
        "t.yaml".into(),
        "- required_engine_version: 0.38.0\n- rule: T\n  desc: d\n  condition: evt.type = openat and tolower(fd.directory) = /etc\n  output: o\n  priority: WARNING\n".into(),
    )])
    .unwrap();
    let st = rs.rules().next().unwrap().falco.unwrap();
    assert!(
        st.inactive
            .as_deref()
            .unwrap_or("")
            .contains("`tolower()` on `fd.directory`"),
        "{st:?}"
    );
    // Bad hex is an error at the rule.
    let e = RuleSet::from_sources(&[(
        "t.yaml".into(),
        "- required_engine_version: 0.38.0\n- rule: T\n  desc: d\n  condition: evt.type = openat and fd.name bcontains xyz\n  output: o\n  priority: WARNING\n".into(),
    )])
    .unwrap_err()
    .to_string();
    assert!(e.contains("takes hex bytes"), "{e}");
}

/// Falco's rules on the syscalls vigil hooks on demand (symlink, link,
/// rename, unlink, mkdir, chmod, ptrace, socket, setns, ...) are active and
/// read those syscalls' arguments (`evt.arg.target`, `evt.arg.request`,
/// `evt.arg.mode`, ...) from vigil's fields.
#[test]
fn falco_rules_on_the_on_demand_kinds() {
    let Some(stable) = falco_file("falco_rules.yaml") else {
        return;
    };
    let Some(sandbox) = falco_file("falco-sandbox_rules.yaml") else {
        return;
    };
    let Some(incubating) = falco_file("falco-incubating_rules.yaml") else {
        return;
    };
    let rs = Arc::new(load(std::slice::from_ref(&stable)));
    let base = json!({"proc.name": "evil", "proc.pname": "bash", "proc.cmdline": "evil",
                      "proc.exe": "/tmp/evil", "proc.uid": 1000, "user.name": "alice"});
    let with = |extra: serde_json::Value| {
        let mut m = base.as_object().unwrap().clone();
        m.extend(extra.as_object().unwrap().clone());
        Event::from_flat_json(&m).unwrap()
    };
    let has = |rs: &Arc<RuleSet>, e: &Event, r: &str| fired(rs, e).contains(&r.to_string());
    let symlink = |target: &str| {
        with(json!({"evt.type": "symlink", "fs.path": "/tmp/x", "fs.source": target}))
    };
    assert!(has(
        &rs,
        &symlink("/etc/shadow"),
        "Create Symlink Over Sensitive Files"
    ));
    assert!(!has(
        &rs,
        &symlink("/tmp/notes"),
        "Create Symlink Over Sensitive Files"
    ));
    let link = |old: &str| with(json!({"evt.type": "link", "fs.path": "/tmp/x", "fs.source": old}));
    assert!(has(
        &rs,
        &link("/etc/shadow"),
        "Create Hardlink Over Sensitive Files"
    ));
    assert!(!has(
        &rs,
        &link("/tmp/a"),
        "Create Hardlink Over Sensitive Files"
    ));
    let ptrace =
        |req: &str| with(json!({"evt.type": "ptrace", "ptrace.request": req, "ptrace.pid": 1}));
    assert!(has(
        &rs,
        &ptrace("PTRACE_ATTACH"),
        "PTRACE attached to process"
    ));
    assert!(!has(
        &rs,
        &ptrace("PTRACE_GETREGS"),
        "PTRACE attached to process"
    ));
    assert!(has(
        &rs,
        &ptrace("PTRACE_TRACEME"),
        "PTRACE anti-debug attempt"
    ));
    // Alert fields by Falco's names, per syscall.
    let mut ev = Evaluator::new(rs.clone(), "h");
    let mut out = Vec::new();
    ev.evaluate(&symlink("/etc/shadow"), &mut out);
    let a = out
        .iter()
        .find(|a| &*a.rule == "Create Symlink Over Sensitive Files")
        .unwrap();
    assert_eq!(a.output_fields["evt.arg.target"], "/etc/shadow");
    assert_eq!(a.output_fields["evt.arg.linkpath"], "/tmp/x");
    assert_eq!(a.output_fields["evt.type"], "symlinkat");

    let all = Arc::new(load(&[stable, incubating, sandbox]));
    let chmod =
        |mode: i64| with(json!({"evt.type": "chmod", "fs.path": "/tmp/x", "fs.mode": mode}));
    assert!(has(&all, &chmod(0o4755), "Set Setuid or Setgid bit"));
    assert!(!has(&all, &chmod(0o755), "Set Setuid or Setgid bit"));
    // Permission bits by Falco's names (`evt.arg.mode contains S_IXUSR`).
    let drift = RuleSet::from_sources(&[(
        "t.yaml".into(),
        "- required_engine_version: 0.38.0\n\
         - rule: Exec bit\n  desc: d\n  condition: evt.type in (chmod, fchmod, fchmodat) and evt.rawres>=0 and (evt.arg.mode contains S_IXUSR or evt.arg.mode contains S_IXOTH)\n  output: o\n  priority: WARNING\n"
            .into(),
    )])
    .unwrap_or_else(|e| panic!("{e}"));
    let drift = Arc::new(drift);
    assert!(has(&drift, &chmod(0o744), "Exec bit"));
    assert!(has(&drift, &chmod(0o641), "Exec bit"));
    assert!(!has(&drift, &chmod(0o664), "Exec bit"));
    assert!(!has(&drift, &chmod(0o4640), "Exec bit"));
    let mkdir = |p: &str| with(json!({"evt.type": "mkdir", "fs.path": p, "fs.mode": 0o755}));
    assert!(has(&all, &mkdir("/bin/evil"), "Mkdir binary dirs"));
    assert!(!has(&all, &mkdir("/tmp/evil"), "Mkdir binary dirs"));
    // unlinkat is unlink or, with AT_REMOVEDIR, rmdir: both kinds count.
    for kind in ["unlink", "rmdir"] {
        let e = with(json!({"evt.type": kind, "fs.path": "/usr/bin/x"}));
        assert!(has(&all, &e, "Modify binary dirs"), "{kind}");
    }
}

/// A field none of the rule's event kinds carry has no value there: the
/// comparison is false, as in Falco, not a load error.
#[test]
fn a_field_the_rules_kinds_lack_compares_false() {
    let rs = RuleSet::from_sources(&[(
        "t.yaml".into(),
        "- required_engine_version: 0.38.0\n\
         - rule: Exec with fd\n  desc: d\n  condition: evt.type = execve and (proc.name = sh or fd.name = /etc/passwd)\n  output: o\n  priority: WARNING\n\
         - rule: Never\n  desc: d\n  condition: evt.type = execve and fd.name = /etc/passwd\n  output: o\n  priority: WARNING\n"
            .into(),
    )])
    .unwrap_or_else(|e| panic!("{e}"));
    let rs = Arc::new(rs);
    let names: Vec<_> = rs.rules().map(|r| (r.name, r.enabled)).collect();
    assert_eq!(
        names,
        vec![
            ("Exec with fd".to_string(), true),
            ("Never".to_string(), false)
        ]
    );
    assert!(
        fired(&rs, &ev(json!({"evt.type": "exec", "proc.name": "sh"})))
            .contains(&"Exec with fd".to_string())
    );
}

/// Falco's rules on dup, listen, init_module/finit_module, bpf and
/// userfaultfd (vigil's on-demand dup, listen, module, bpf and userfaultfd
/// kinds) are active and fire on what they mean, not on near misses.
#[test]
fn falco_rules_on_dup_listen_module_bpf_userfaultfd() {
    let (Some(stable), Some(incubating), Some(sandbox)) = (
        falco_file("falco_rules.yaml"),
        falco_file("falco-incubating_rules.yaml"),
        falco_file("falco-sandbox_rules.yaml"),
    ) else {
        return;
    };
    let all = Arc::new(load(&[stable, incubating, sandbox]));
    let base = json!({"proc.name": "evil", "proc.pname": "bash", "proc.cmdline": "evil",
                      "proc.exe": "/tmp/evil", "proc.uid": 1000, "user.name": "alice",
                      "container.id": "0123456789ab"});
    let with = |extra: serde_json::Value| {
        let mut m = base.as_object().unwrap().clone();
        m.extend(extra.as_object().unwrap().clone());
        Event::from_flat_json(&m).unwrap()
    };
    let has = |e: &Event, r: &str| fired(&all, e).contains(&r.to_string());
    for r in [
        "Redirect STDOUT/STDIN to Network Connection in Container",
        "Linux Kernel Module Injection Detected",
        "BPF Program Not Profiled",
        "Unprivileged Delegation of Page Faults Handling to a Userspace Process",
    ] {
        assert!(all.rules().any(|x| x.name == r && x.enabled), "{r}");
    }

    // dup2(socket, 1) in a container: a reverse shell's stdout.
    let redirect = "Redirect STDOUT/STDIN to Network Connection in Container";
    let dup = |newfd: i64, family: &str, container: &str| {
        with(
            json!({"evt.type": "dup", "evt.ret": newfd, "dup.oldfd": 3, "dup.newfd": newfd,
                    "net.family": family, "net.proto": "tcp", "net.saddr": "10.0.0.2",
                    "net.sport": 40000, "net.daddr": "203.0.113.9", "net.dport": 4444,
                    "container.id": container}),
        )
    };
    assert!(has(&dup(1, "inet", "0123456789ab"), redirect));
    assert!(has(&dup(0, "inet6", "0123456789ab"), redirect));
    // Not onto stdio, not a network socket, not in a container.
    assert!(!has(&dup(5, "inet", "0123456789ab"), redirect));
    assert!(!has(&dup(1, "unix", "0123456789ab"), redirect));
    assert!(!has(&dup(1, "", "0123456789ab"), redirect));
    assert!(!has(&dup(1, "inet", ""), redirect));
    let mut ev = Evaluator::new(all.clone(), "h");
    let mut out = Vec::new();
    ev.evaluate(&dup(1, "inet", "0123456789ab"), &mut out);
    let a = out.iter().find(|a| &*a.rule == redirect).unwrap();
    assert_eq!(a.output_fields["evt.type"], "dup2");
    assert_eq!(a.output_fields["fd.type"], "ipv4");
    assert_eq!(a.output_fields["fd.rport"], 4444);

    // finit_module with CAP_SYS_MODULE in a container.
    let inject = "Linux Kernel Module Injection Detected";
    let module = |caps: &[&str], container: &str| {
        with(
            json!({"evt.type": "module", "module.path": "/tmp/rootkit.ko", "evt.ret": 0,
                    "proc.cap_effective": caps, "container.id": container}),
        )
    };
    assert!(has(
        &module(&["CAP_CHOWN", "CAP_SYS_MODULE"], "0123456789ab"),
        inject
    ));
    assert!(!has(&module(&["CAP_CHOWN"], "0123456789ab"), inject));
    assert!(!has(&module(&["CAP_SYS_MODULE"], ""), inject));

    // bpf(BPF_PROG_LOAD) by a program not profiled (`evt.arg.cmd=5` or its name).
    let not_profiled = "BPF Program Not Profiled";
    let bpf = |name: &str, cmd: &str| {
        with(json!({"evt.type": "bpf", "proc.name": name, "bpf.cmd": cmd, "evt.ret": 5}))
    };
    assert!(has(&bpf("evil", "BPF_PROG_LOAD"), not_profiled));
    assert!(!has(&bpf("evil", "BPF_MAP_CREATE"), not_profiled));
    assert!(!has(&bpf("bpftool", "BPF_PROG_LOAD"), not_profiled));

    // userfaultfd by an unprivileged user; root's is not flagged.
    let uffd = "Unprivileged Delegation of Page Faults Handling to a Userspace Process";
    let userfaultfd =
        |uid: i64| with(json!({"evt.type": "userfaultfd", "proc.uid": uid, "evt.ret": 3}));
    assert!(has(&userfaultfd(1000), uffd));
    assert!(!has(&userfaultfd(0), uffd));

    // A shell listening on an outside address (a bind shell) is network
    // activity of a system binary; a listen on 0.0.0.0 is not, as in Falco
    // (a listening socket's fd.ip is its bound address only).
    let sysnet = "System procs network activity";
    let listen = |addr: &str| {
        with(
            json!({"evt.type": "listen", "proc.name": "bash", "evt.ret": 0,
                    "listen.backlog": 1, "net.family": "inet", "net.proto": "tcp",
                    "net.saddr": addr, "net.sport": 4444, "net.daddr": "0.0.0.0",
                    "net.dport": 0}),
        )
    };
    assert!(has(&listen("10.1.2.3"), sysnet));
    assert!(!has(&listen("0.0.0.0"), sysnet));
    assert!(!has(&listen("127.0.0.1"), sysnet));

    // unshare in a container without CAP_SYS_ADMIN; Falco's `container`
    // (container.id != host) is false on the host's events.
    let priv_unshare = "Change namespace privileges via unshare";
    let unshare = |caps: &[&str], container: &str| {
        with(
            json!({"evt.type": "unshare", "ns.types": ["user", "mnt"], "evt.ret": 0,
                    "proc.cap_permitted": caps, "container.id": container}),
        )
    };
    assert!(has(&unshare(&["CAP_CHOWN"], "0123456789ab"), priv_unshare));
    assert!(!has(
        &unshare(&["CAP_SYS_ADMIN"], "0123456789ab"),
        priv_unshare
    ));
    assert!(!has(&unshare(&["CAP_CHOWN"], ""), priv_unshare));
}

/// vigil's exec is a successful exec: an execve rule that only a failed exec
/// satisfies (`evt.res != SUCCESS`, an errno name) runs on vigil's
/// exec_failed kind; one that tests success keeps to exec.
#[test]
fn failed_execve_rules_run_on_exec_failed() {
    let rs = RuleSet::from_sources(&[(
        "t.yaml".into(),
        "- required_engine_version: 0.38.0\n\
         - macro: spawned_process\n  condition: (evt.type in (execve, execveat))\n\
         - rule: Failed exec\n  desc: d\n  condition: spawned_process and evt.res != SUCCESS and proc.name = sh\n  output: o %evt.type %evt.res\n  priority: WARNING\n\
         - rule: Missing file\n  desc: d\n  condition: spawned_process and evt.res = ENOENT\n  output: o\n  priority: WARNING\n\
         - rule: Good exec\n  desc: d\n  condition: spawned_process and evt.res = SUCCESS and proc.name = sh\n  output: o\n  priority: WARNING\n"
            .into(),
    )])
    .unwrap_or_else(|e| panic!("{e}"));
    let rs = Arc::new(rs);
    let kinds: Vec<_> = rs
        .rules()
        .map(|r| (r.name.clone(), r.enabled, r.events.clone()))
        .collect();
    assert!(kinds.iter().all(|(_, on, _)| *on), "{kinds:?}");
    let failed = |errno: i64| {
        ev(
            json!({"evt.type": "exec_failed", "proc.name": "sh", "evt.ret": -errno,
                  "fs.path": "/tmp/nope"}),
        )
    };
    let ok = ev(json!({"evt.type": "exec", "proc.name": "sh", "evt.ret": 0}));
    assert_eq!(fired(&rs, &failed(2)), vec!["Failed exec", "Missing file"]);
    assert_eq!(fired(&rs, &failed(13)), vec!["Failed exec"]);
    assert_eq!(fired(&rs, &ok), vec!["Good exec"]);
    let mut e = Evaluator::new(rs.clone(), "h");
    let mut out = Vec::new();
    e.evaluate(&failed(13), &mut out);
    assert_eq!(out[0].output, "o execve EACCES");
}
