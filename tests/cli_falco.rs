//! `vigil validate` / `explain` on Falco rule files (issue 12): Falco's own
//! files (read from `<repo>/../shared/falco/`, never copied in) load with
//! every rule reported active or inactive with its reason; `--strict` fails on
//! inactive rules; real mistakes in a Falco file are errors at file:line:col;
//! a directory may mix both dialects.

mod common;
use common::cli::{text, vigil};

use std::path::PathBuf;

#[path = "../engine/tests/common/falco.rs"]
mod falco;
use falco::falco_file;

fn upstream() -> Option<Vec<String>> {
    [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
    ]
    .iter()
    .map(|n| falco_file(n).map(|p| p.display().to_string()))
    .collect()
}

#[test]
fn validate_falco_files_reports_each_rule() {
    let Some(files) = upstream() else { return };
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let o = vigil(&args);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{out}{err}");
    assert!(!err.contains("error"), "{err}");
    assert!(
        out.contains("falco: Run shell untrusted: active\n"),
        "{out}"
    );
    assert!(
        out.contains("falco: Contact K8S API Server From Container: inactive: needs field(s) fd.sip.name that vigil does not have"),
        "{out}"
    );
    // Falco's syscalls on vigil's on-demand kinds (dup, module, bpf,
    // userfaultfd) make their rules active.
    for r in [
        "Redirect STDOUT/STDIN to Network Connection in Container",
        "Linux Kernel Module Injection Detected",
        "BPF Program Not Profiled",
        "Unprivileged Delegation of Page Faults Handling to a Userspace Process",
    ] {
        assert!(out.contains(&format!("falco: {r}: active")), "{r}:\n{out}");
    }
    let rules = out.lines().filter(|l| l.starts_with("falco: ")).count();
    assert!(rules >= 90, "{rules} rules listed:\n{out}");

    // --strict: an inactive rule is an error.
    args.push("--strict");
    let o = vigil(&args);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("inactive Falco rule(s) (--strict)"));

    // The stable file together with the shipped rules.
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules");
    let o = vigil(&["validate", shipped.to_str().unwrap(), &files[0]]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

#[test]
fn explain_falco_file_gives_a_kernel_filter() {
    let Some(files) = upstream() else { return };
    let o = vigil(&["explain", "--rules", &files[0]]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(
        out.contains("Run shell untrusted [exec]: comm in {\"ash\", \"bash\""),
        "{out}"
    );
    assert!(
        out.contains(
            "Contact K8S API Server From Container [inactive]: needs field(s) fd.sip.name"
        ),
        "{out}"
    );
    assert!(
        out.contains("Redirect STDOUT/STDIN to Network Connection in Container [dup]"),
        "{out}"
    );
    // vigil's on-demand kinds serve Falco's rules on those syscalls.
    assert!(out.contains("PTRACE attached to process [ptrace]"), "{out}");
    // Directory traversal narrows opens to unnormalised paths, as vigil's
    // own rule does: opens are not pass-all.
    assert!(!out.contains("  open        pass all"), "{out}");
    assert!(
        out.contains("Directory traversal monitored file read [open]: unnormalised path"),
        "{out}"
    );
}

#[test]
fn falco_mistakes_are_errors_and_dialects_mix_in_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a_vigil.yaml"),
        "- rule: Vigil shell\n  desc: d\n  events: [exec]\n  condition: proc.name == \"sh\"\n  output: \"sh {proc.pname}\"\n  priority: warning\n",
    )
    .unwrap();
    let falco = "- macro: shells\n  condition: proc.name in (sh, bash)\n\
                 - rule: Falco shell\n  desc: d\n  condition: evt.type = execve and shells and proc.pname = nginx\n  output: shell %proc.name\n  priority: WARNING\n";
    std::fs::write(dir.path().join("b_falco.yaml"), falco).unwrap();
    let o = vigil(&["validate", dir.path().to_str().unwrap()]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains("falco: Falco shell: active"), "{out}");
    assert!(out.contains("2 rules (2 enabled)"), "{out}");

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "- rule: Bad\n  desc: d\n  condition: evt.type = execve and no_such_macro\n  output: x\n  priority: WARNING\n\
         - rule: Typo\n  desc: d\n  condition: evt.type = execve and proc.nmae = sh\n  output: x\n  priority: WARNING\n",
    )
    .unwrap();
    let o = vigil(&["validate", bad.to_str().unwrap()]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let f = bad.display().to_string();
    assert!(
        err.contains(&format!(
            "{f}:3:36: rule `Bad`: undefined macro `no_such_macro`"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{f}:8:36: rule `Typo`: unknown field `proc.nmae`")),
        "{err}"
    );
}

/// A Falco file that detection cannot recognise (no Falco-only key, no
/// Falco word in its conditions) loads as Falco when its rules path declares
/// it (`falco:PATH`), for a file or a directory, without editing the file
/// (the config file's `rules:` takes the same form: src/config.rs tests it).
#[test]
fn falco_prefix_declares_the_dialect_of_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let fdir = dir.path().join("falco.d");
    std::fs::create_dir(&fdir).unwrap();
    let file = fdir.join("quiet.yaml");
    std::fs::write(
        &file,
        "- list: web\n  items: [nginx, httpd]\n\
         - rule: Quiet Falco rule\n  desc: d\n  condition: proc.pname in (web)\n  output: shell %proc.name\n  priority: WARNING\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    // Detection reads it as vigil's dialect: a vigil rule needs `events`.
    let o = vigil(&["validate", f]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    for declared in [format!("falco:{f}"), format!("falco:{}", fdir.display())] {
        let o = vigil(&["validate", &declared]);
        let out = text(&o.stdout);
        assert!(o.status.success(), "{declared}: {out}{}", text(&o.stderr));
        assert!(out.contains("falco: Quiet Falco rule: active"), "{out}");
    }
    // `vigil:` declares vigil's dialect: a Falco file then fails as vigil's.
    let falco = dir.path().join("loud.yaml");
    std::fs::write(
        &falco,
        "- rule: Loud\n  desc: d\n  condition: evt.type = execve and proc.name = sh\n  output: x\n  priority: WARNING\n",
    )
    .unwrap();
    let o = vigil(&["validate", &format!("vigil:{}", falco.display())]);
    assert_eq!(o.status.code(), Some(1));
    // explain (and run) take the same declaration through --rules.
    let o = vigil(&["explain", "--rules", &format!("falco:{}", fdir.display())]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains("Quiet Falco rule"), "{out}");
}
