//! Packaging: builds the .deb with scripts/build-deb.sh from the test-built
//! binary (`CARGO_BIN_EXE_vigil`, no second build), checks its control data and
//! contents, unpacks it into a temporary root, runs the maintainer script and
//! the *installed* `vigil validate` / `vigil test` on the installed rules and
//! config; compares the `--root` install with the .deb; checks the systemd
//! unit with `systemd-analyze verify` and that packaging/SECURITY.md records
//! the current `systemd-analyze security` exposure.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const VIGIL: &str = env!("CARGO_BIN_EXE_vigil");

/// True if `tool` is on PATH; otherwise skips (or fails under VIGIL_REQUIRE_LIVE=1).
fn have(tool: &str) -> bool {
    vigil_testkit::tool(tool, tool).is_some()
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds the package into `dir` (uncompressed, unstripped: fast, and byte-comparable).
fn build_deb(dir: &Path) -> PathBuf {
    let out = run(Command::new(repo().join("scripts/build-deb.sh")).args([
        "--binary",
        VIGIL,
        "--out",
        dir.to_str().unwrap(),
        "--compress",
        "none",
        "--no-strip",
    ]));
    let deb = PathBuf::from(stdout(&out).lines().last().unwrap_or("").trim());
    assert!(deb.is_file(), "build-deb.sh printed {deb:?}");
    deb
}

/// Relative paths of all files (not directories) below `root`.
fn files_below(root: &Path) -> BTreeSet<String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.insert(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

fn repo_rule_files() -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(repo().join("rules"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    v.sort();
    v
}

/// `/etc/x` inside `root`.
fn rooted(root: &Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}

/// The `rules:` list of an installed config file.
fn config_rule_paths(config: &Path) -> Vec<String> {
    let text = fs::read_to_string(config).unwrap();
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    v.get("rules")
        .and_then(|r| r.as_sequence())
        .expect("config has a rules: list")
        .iter()
        .map(|p| p.as_str().expect("rule path is a string").to_string())
        .collect()
}

/// "N rules" from a `vigil validate` summary, if it prints one.
fn rule_count(summary: &str) -> Option<usize> {
    let words: Vec<&str> = summary.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[1].starts_with("rules"))
        .and_then(|w| w[0].parse().ok())
}

#[test]
fn deb_contents_install_and_installed_vigil_validates_its_config() {
    if !have("dpkg-deb") || !have("dpkg") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let deb = build_deb(&tmp.path().join("out"));

    // Control data.
    let field = |name: &str| {
        stdout(&run(Command::new("dpkg-deb").args([
            "-f",
            deb.to_str().unwrap(),
            name,
        ])))
        .trim()
        .to_string()
    };
    assert_eq!(field("Package"), "vigil");
    assert_eq!(field("Version"), env!("CARGO_PKG_VERSION"));
    let arch = stdout(&run(Command::new("dpkg").arg("--print-architecture")));
    assert_eq!(field("Architecture"), arch.trim());
    let depends = field("Depends");
    assert!(
        depends.split(", ").any(|d| d == "libc6"),
        "Depends: {depends}"
    );

    // Unpack data and control parts.
    let root = tmp.path().join("root");
    let ctrl = tmp.path().join("DEBIAN");
    run(Command::new("dpkg").args(["-x", deb.to_str().unwrap(), root.to_str().unwrap()]));
    run(Command::new("dpkg-deb").args(["-e", deb.to_str().unwrap(), ctrl.to_str().unwrap()]));

    let files = files_below(&root);
    for f in [
        "usr/bin/vigil",
        "lib/systemd/system/vigil.service",
        "etc/vigil/vigil.yaml",
        "etc/vigil/rules.d/README",
        "etc/vigil/rules.d/50-local.yaml.example",
        "etc/logrotate.d/vigil",
        "usr/share/doc/vigil/copyright",
    ] {
        assert!(files.contains(f), "package lacks {f}: {files:#?}");
    }
    let shipped: Vec<String> = fs::read_dir(root.join("usr/share/vigil/rules"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(shipped, repo_rule_files(), "every rules/*.yaml is shipped");
    let installed = fs::read(root.join("usr/bin/vigil")).unwrap();
    assert!(
        installed == fs::read(VIGIL).unwrap(),
        "installed binary is the built one"
    );
    let mode = fs::metadata(root.join("usr/bin/vigil"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    let unit = fs::read_to_string(root.join("lib/systemd/system/vigil.service")).unwrap();
    assert_eq!(
        unit,
        fs::read_to_string(repo().join("packaging/vigil.service")).unwrap()
    );

    // Every file below /etc is a conffile, and nothing else is.
    let conffiles: BTreeSet<String> = fs::read_to_string(ctrl.join("conffiles"))
        .unwrap()
        .lines()
        .map(|l| l.trim_start_matches('/').to_string())
        .collect();
    let etc: BTreeSet<String> = files
        .iter()
        .filter(|f| f.starts_with("etc/"))
        .cloned()
        .collect();
    assert_eq!(conffiles, etc);

    // Maintainer scripts: valid sh, executable; postinst into a --root style target
    // creates the log directory and does not need systemd.
    for s in ["postinst", "prerm", "postrm"] {
        let p = ctrl.join(s);
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o111,
            0o111,
            "{s} executable"
        );
        run(Command::new("sh").arg("-n").arg(&p));
    }
    run(Command::new(ctrl.join("postinst"))
        .args(["configure", ""])
        .env("DPKG_ROOT", &root));
    let log = fs::metadata(root.join("var/log/vigil")).expect("postinst created /var/log/vigil");
    assert!(log.is_dir());
    assert_eq!(log.permissions().mode() & 0o777, 0o750);
    run(Command::new(ctrl.join("postrm"))
        .arg("purge")
        .env("DPKG_ROOT", &root));
    assert!(
        !root.join("var/log/vigil").exists(),
        "purge removes the logs"
    );

    // The installed config's rule paths exist in the package, and the installed binary
    // loads them.
    let installed_vigil = root.join("usr/bin/vigil");
    let rule_paths: Vec<PathBuf> = config_rule_paths(&root.join("etc/vigil/vigil.yaml"))
        .iter()
        .map(|p| rooted(&root, p))
        .collect();
    assert_eq!(
        rule_paths,
        vec![
            root.join("usr/share/vigil/rules"),
            root.join("etc/vigil/rules.d")
        ],
        "default config loads the shipped rules, then rules.d"
    );
    for p in &rule_paths {
        assert!(p.is_dir(), "{} missing", p.display());
    }
    let base = run(Command::new(&installed_vigil)
        .arg("validate")
        .args(&rule_paths));
    let base_summary = format!("{}{}", stdout(&base), String::from_utf8_lossy(&base.stderr));

    // The shipped example override loads on top of the shipped rules...
    fs::copy(
        root.join("etc/vigil/rules.d/50-local.yaml.example"),
        root.join("etc/vigil/rules.d/50-local.yaml"),
    )
    .unwrap();
    let with = run(Command::new(&installed_vigil)
        .arg("validate")
        .args(&rule_paths));
    let with_summary = format!("{}{}", stdout(&with), String::from_utf8_lossy(&with.stderr));
    let counts = (rule_count(&base_summary), rule_count(&with_summary));
    assert!(
        counts.0.is_some() && counts.1.is_some(),
        "validate prints an `N rules ...` summary:\n{base_summary}\n{with_summary}"
    );
    if let (Some(a), Some(b)) = counts {
        assert_eq!(
            b,
            a + 1,
            "the example adds one rule:\n{base_summary}\n{with_summary}"
        );
    }
    // ... and keeps every shipped test case passing.
    run(Command::new(&installed_vigil).arg("test").args(&rule_paths));
}

#[test]
fn root_install_matches_the_deb() {
    if !have("dpkg-deb") || !have("dpkg") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let deb = build_deb(&tmp.path().join("out"));
    let from_deb = tmp.path().join("x");
    run(Command::new("dpkg").args(["-x", deb.to_str().unwrap(), from_deb.to_str().unwrap()]));
    let root = tmp.path().join("root");
    run(Command::new(repo().join("scripts/build-deb.sh")).args([
        "--root",
        root.to_str().unwrap(),
        "--binary",
        VIGIL,
        "--no-strip",
    ]));
    let a = files_below(&from_deb);
    let b = files_below(&root);
    assert_eq!(a, b);
    for f in &a {
        let (x, y) = (from_deb.join(f), root.join(f));
        assert!(
            fs::read(&x).unwrap() == fs::read(&y).unwrap(),
            "{f} differs"
        );
        let (mx, my) = (
            fs::metadata(&x).unwrap().permissions().mode() & 0o7777,
            fs::metadata(&y).unwrap().permissions().mode() & 0o7777,
        );
        assert_eq!(mx, my, "{f} mode");
    }
    assert!(root.join("var/log/vigil").is_dir());
}

/// The unit with ExecStart pointing at the test-built binary, so `verify` can check the
/// command exists (the real /usr/bin/vigil is not installed on the build host).
fn unit_for_verify(dir: &Path, unit_text: &str) -> PathBuf {
    let text = unit_text.replace("ExecStart=/usr/bin/vigil ", &format!("ExecStart={VIGIL} "));
    assert_ne!(text, unit_text, "unit has ExecStart=/usr/bin/vigil");
    let p = dir.join("vigil.service");
    fs::write(&p, text).unwrap();
    p
}

fn verify(unit: &Path) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(unit)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn systemd_unit_verifies_cleanly() {
    if !have("systemd-analyze") {
        return;
    }
    let text = fs::read_to_string(repo().join("packaging/vigil.service")).unwrap();
    for line in [
        "Type=notify",
        "ExecStart=/usr/bin/vigil run --config /etc/vigil/vigil.yaml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "ProtectHome=read-only",
        "PrivateTmp=yes",
    ] {
        assert!(text.lines().any(|l| l == line), "unit lacks {line}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let (ok, stderr) = verify(&unit_for_verify(tmp.path(), &text));
    assert!(ok, "systemd-analyze verify failed:\n{stderr}");
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("vigil.service"))
        .collect();
    assert!(
        complaints.is_empty(),
        "systemd-analyze verify warnings:\n{stderr}"
    );

    // The check is not vacuous: a misspelt key is reported.
    let broken = tempfile::tempdir().unwrap();
    let typo = text.replace("NoNewPrivileges=yes", "NoNewPrivilege=yes");
    let (_, stderr) = verify(&unit_for_verify(broken.path(), &typo));
    assert!(
        stderr.contains("NoNewPrivilege"),
        "typo not reported:\n{stderr}"
    );
}

/// Highest accepted `systemd-analyze security` exposure (0 = locked down, 10 = none).
const MAX_EXPOSURE: f64 = 3.5;

#[test]
fn security_exposure_is_low_and_recorded_in_security_md() {
    if !have("systemd-analyze") {
        return;
    }
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(repo().join("packaging/vigil.service"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level for vigil.service"))
        .unwrap_or_else(|| panic!("no exposure line in:\n{text}\n{stderr}"));
    let score: f64 = line
        .rsplit(':')
        .next()
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse {line:?}"));
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} > {MAX_EXPOSURE}:\n{text}"
    );
    let md = fs::read_to_string(repo().join("packaging/SECURITY.md")).unwrap();
    let recorded = format!("Overall exposure level for vigil.service: {score:.1}");
    assert!(
        md.contains(&recorded),
        "packaging/SECURITY.md is stale: it must contain `{recorded}` (regenerate with \
         `systemd-analyze security --offline=yes packaging/vigil.service`)"
    );
}

/// Runs dpkg against a private database below `root` (no chroot: maintainer scripts
/// run on the host with `$DPKG_ROOT` set, which they honour).
fn dpkg_in(root: &Path) -> Command {
    let mut c = Command::new("dpkg");
    c.arg(format!("--root={}", root.display()))
        .arg("--force-script-chrootless")
        .arg("--force-depends")
        .arg("--log=/dev/null");
    c
}

#[test]
fn dpkg_install_upgrade_keeps_local_config_and_purge_cleans_up() {
    if !have("dpkg-deb") || !have("dpkg") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let deb = build_deb(&tmp.path().join("out"));
    let root = tmp.path().join("root");
    fs::create_dir_all(root.join("var/lib/dpkg/info")).unwrap();
    fs::create_dir_all(root.join("var/lib/dpkg/updates")).unwrap();
    fs::write(root.join("var/lib/dpkg/status"), "").unwrap();

    run(dpkg_in(&root).arg("-i").arg(&deb));
    let status = stdout(&run(dpkg_in(&root).args(["-s", "vigil"])));
    assert!(status.contains("Status: install ok installed"), "{status}");
    for c in ["/etc/vigil/vigil.yaml", "/etc/logrotate.d/vigil"] {
        assert!(
            status.contains(&format!(" {c} ")),
            "{c} registered as conffile:\n{status}"
        );
    }
    let log = fs::metadata(root.join("var/log/vigil")).expect("postinst created /var/log/vigil");
    assert_eq!(log.permissions().mode() & 0o777, 0o750);
    assert!(root.join("usr/bin/vigil").is_file());

    // A local edit survives reinstalling (upgrading to) the package.
    let cfg = root.join("etc/vigil/vigil.yaml");
    let edited = format!("{}\n# local edit\n", fs::read_to_string(&cfg).unwrap());
    fs::write(&cfg, &edited).unwrap();
    run(dpkg_in(&root).arg("-i").arg(&deb));
    assert_eq!(fs::read_to_string(&cfg).unwrap(), edited);

    // Purge removes binaries, conffiles and the log directory.
    run(dpkg_in(&root).args(["--purge", "vigil"]));
    assert!(!root.join("usr/bin/vigil").exists());
    assert!(!cfg.exists(), "purge removes conffiles");
    assert!(
        !root.join("var/log/vigil").exists(),
        "purge removes the logs"
    );
}

/// Relative links (`](path)` / `](path#anchor)`) of the markdown files below
/// `dir` that point at nothing installed.
fn broken_links(dir: &Path) -> Vec<String> {
    let mut bad = Vec::new();
    for f in files_below(dir).iter().filter(|f| f.ends_with(".md")) {
        let p = dir.join(f);
        let text = fs::read_to_string(&p).unwrap();
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = &rest[..end];
            if target.is_empty()
                || target.contains(' ')
                || target.contains("://")
                || target.starts_with('#')
                || target.starts_with('/')
                || target.starts_with("mailto:")
            {
                continue;
            }
            let file = target.split('#').next().unwrap_or("");
            if !p.parent().unwrap().join(file).exists() {
                bad.push(format!("{f}: {target}"));
            }
        }
    }
    bad
}

/// Issue 15: the installed docs include the rule-language and config
/// references with every relative link resolving, the man pages render with
/// `man -l`, the bash completion loads, and the changelog parses.
#[test]
fn installed_docs_man_pages_and_completions_work() {
    if !have("man") || !have("bash") || !have("dpkg-parsechangelog") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    run(Command::new(repo().join("scripts/build-deb.sh")).args([
        "--root",
        root.to_str().unwrap(),
        "--binary",
        VIGIL,
        "--no-strip",
    ]));
    let doc = root.join("usr/share/doc/vigil");
    for f in [
        "README.md",
        "engine/README.md",
        "sinks/CONFIG.md",
        "rules/README.md",
    ] {
        assert!(doc.join(f).is_file(), "{f} not installed");
    }
    let bad = broken_links(&doc);
    assert!(bad.is_empty(), "links that resolve to nothing: {bad:#?}");
    // The check itself: a dangling link is found.
    fs::write(doc.join("x.md"), "see [gone](nowhere/README.md#top)\n").unwrap();
    assert_eq!(broken_links(&doc), vec!["x.md: nowhere/README.md#top"]);

    let man1 = root.join("usr/share/man/man1");
    let pages: Vec<String> = files_below(&man1).into_iter().collect();
    for want in [
        "vigil.1.gz",
        "vigil-run.1.gz",
        "vigil-snoop.1.gz",
        "vigil-explain.1.gz",
    ] {
        assert!(pages.iter().any(|p| p == want), "{want} missing: {pages:?}");
    }
    for p in &pages {
        let out = run(Command::new("man")
            .arg("-l")
            .arg(man1.join(p))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80"));
        let text = stdout(&out);
        assert!(
            text.contains("NAME") && text.contains("SYNOPSIS"),
            "{p}:\n{text}"
        );
    }
    let run_page = stdout(&run(Command::new("man")
        .arg("-l")
        .arg(man1.join("vigil-run.1.gz"))
        .env("MANPAGER", "cat")));
    assert!(run_page.contains("--dry-run") && run_page.contains("--min-priority"));

    let bash = root.join("usr/share/bash-completion/completions/vigil");
    let out = run(Command::new("bash").arg("-c").arg(format!(
        "source {} && complete -p vigil && COMP_WORDS=(vigil ru) COMP_CWORD=1 && _vigil vigil ru vigil && echo \"${{COMPREPLY[@]}}\"",
        bash.display()
    )));
    let o = stdout(&out);
    assert!(o.contains("-F _vigil vigil") && o.contains("run"), "{o}");
    for f in [
        "usr/share/zsh/vendor-completions/_vigil",
        "usr/share/fish/vendor_completions.d/vigil.fish",
    ] {
        let t = fs::read_to_string(root.join(f)).unwrap();
        assert!(t.contains("vigil") && t.contains("dry-run"), "{f}");
    }
    let cl = doc.join("changelog.Debian.gz");
    let out = run(Command::new("sh").arg("-c").arg(format!(
        "zcat {} > {}/cl && dpkg-parsechangelog -l {}/cl",
        cl.display(),
        tmp.path().display(),
        tmp.path().display()
    )));
    assert!(stdout(&out).contains("Version: 0.1.0"), "{}", stdout(&out));
}
