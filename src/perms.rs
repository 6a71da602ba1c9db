//! Who may change what configures detection. Anyone who can write a rule file,
//! a rule directory, the config file, or any directory above them can switch
//! detection off (`- {rule: X, enabled: false}`), so `vigil run` checks them
//! the way sshd (`StrictModes`) and sudo check their files: before the first
//! load and again on every reload (`crate::daemon::run`); `vigil validate`
//! reports the same findings as warnings.
//!
//! A path passes when it is owned by root or by the user vigil runs as, is not
//! writable by other users, and is group-writable only for group root (gid 0)
//! and without a POSIX ACL (whose named entries the group bits stand for).
//! A directory *above* a rule path or the config may also be world-writable
//! when it is root-owned with the sticky bit (like `/tmp`): others cannot
//! rename or delete its entries. A rule directory itself never may: anyone
//! could add a file to it. Each path is checked as given and as resolved
//! (symlinks followed), with every directory above either form, and each
//! symlink on the way is followed hop by hop, so a symlinked rule file is
//! judged by its target and by the directory holding every link of the chain.
//! Paths that do not exist are left to the loader to report. A read-only
//! mount is deliberately no exemption: under the packaged unit
//! (`ProtectSystem=strict`) every path looks read-only to vigil while other
//! users may still write it outside vigil's mount namespace.

use std::collections::HashSet;
use std::ffi::CString;
use std::fmt;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use vigil_engine::{LoadError, LoadErrors, Location};

/// One path others can change, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insecure {
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for Insecure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// What a checked path is to vigil.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    RuleFile,
    RuleDir,
    Config,
    /// A directory above one of the others.
    Parent,
}

impl Role {
    fn what(self) -> &'static str {
        match self {
            Role::RuleFile => "rule file",
            Role::RuleDir => "rule directory",
            Role::Config => "config file",
            Role::Parent => "directory above a rule path or the config",
        }
    }
}

/// Checks the rule paths (each directory and the rule files it lists) and the
/// config file, as the user this process runs as. Empty when all are safe.
pub fn check(rule_paths: &[PathBuf], config: Option<&Path>) -> Vec<Insecure> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    let mut c = Checker {
        euid,
        seen: HashSet::new(),
        reported: HashSet::new(),
        found: Vec::new(),
        links_followed: 0,
    };
    for p in rule_paths {
        if p.is_dir() {
            c.path(p, Role::RuleDir);
            for f in crate::reload::list_rule_files(std::slice::from_ref(p)) {
                c.path(&f, Role::RuleFile);
            }
        } else {
            c.path(p, Role::RuleFile);
        }
    }
    if let Some(cfg) = config {
        c.path(cfg, Role::Config);
    }
    c.found
}

/// The findings as rule load errors (file = the path, no line), so a reload
/// refused for them fails whole and raises the usual reload-failed alert.
pub fn load_errors(found: &[Insecure]) -> LoadErrors {
    LoadErrors(
        found
            .iter()
            .map(|f| LoadError {
                loc: Location {
                    file: f.path.display().to_string(),
                    line: 0,
                    col: 0,
                },
                item: None,
                msg: format!("insecure permissions, not loaded: {}", f.reason),
            })
            .collect(),
    )
}

/// How to fix the findings, for the end of an error message.
pub const FIX_HINT: &str = "make them owned by root and not writable by group or others (chown root:root, chmod go-w), or pass --insecure-permissions to load them anyway";

/// Symlinks followed one by one per checked path, as the kernel's limit (ELOOP).
const MAX_SYMLINK_HOPS: u32 = 40;
/// Symlinks followed in one whole check (bounds pathological link trees).
const MAX_LINKS_FOLLOWED: u32 = 10_000;

struct Checker {
    euid: u32,
    /// (device, inode, role) already checked.
    seen: HashSet<(u64, u64, Role)>,
    /// (device, inode) already reported: one finding per file or directory.
    reported: HashSet<(u64, u64)>,
    found: Vec<Insecure>,
    /// Symlinks followed so far (see [`MAX_LINKS_FOLLOWED`]).
    links_followed: u32,
}

impl Checker {
    /// `p` in its role, then every directory above it, as given and as resolved.
    fn path(&mut self, p: &Path, role: Role) {
        self.path_hops(p, role, 0);
    }

    /// [`Checker::path`], following each symlink on the way one hop at a time, so
    /// the directory holding every link of a chain is checked, not only the
    /// first and the last (whoever can repoint a middle link could swap the
    /// target between this check and the load).
    fn path_hops(&mut self, p: &Path, role: Role, hops: u32) {
        self.one(p, role);
        let mut chains = Vec::new();
        if let Ok(abs) = std::path::absolute(p) {
            chains.push(abs);
        }
        if let Ok(real) = fs::canonicalize(p) {
            self.one(&real, role);
            chains.push(real);
        }
        for chain in &chains {
            for dir in chain.ancestors().skip(1) {
                if !dir.as_os_str().is_empty() {
                    self.one(dir, Role::Parent);
                }
            }
        }
        let Some(abs) = chains.first().cloned() else {
            return;
        };
        if hops >= MAX_SYMLINK_HOPS {
            return;
        }
        for (i, link) in abs.ancestors().enumerate() {
            let is_link = fs::symlink_metadata(link).is_ok_and(|m| m.file_type().is_symlink());
            if !is_link || self.links_followed >= MAX_LINKS_FOLLOWED {
                continue;
            }
            let Ok(target) = fs::read_link(link) else {
                continue;
            };
            self.links_followed += 1;
            // A relative target is relative to the link's directory.
            let target = link.parent().unwrap_or(Path::new("/")).join(target);
            let target_role = if i == 0 { role } else { Role::Parent };
            self.path_hops(&target, target_role, hops + 1);
        }
    }

    fn one(&mut self, p: &Path, role: Role) {
        let Ok(m) = fs::metadata(p) else {
            return;
        };
        if !self.seen.insert((m.dev(), m.ino(), role)) {
            return;
        }
        let acl = m.mode() & 0o020 != 0 && has_access_acl(p);
        if let Some(reason) = judge(&m, role, self.euid, acl) {
            if self.reported.insert((m.dev(), m.ino())) {
                // A directory above is named by its real path (no `..`, no links).
                let path = match role {
                    Role::Parent => fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()),
                    _ => p.to_path_buf(),
                };
                self.found.push(Insecure { path, reason });
            }
        }
    }
}

/// Whether `p` carries a POSIX access ACL (beyond the mode bits).
fn has_access_acl(p: &Path) -> bool {
    let Ok(c) = CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a size query (null buffer, size 0) on a NUL-terminated path and name.
    let n = unsafe {
        libc::getxattr(
            c.as_ptr(),
            c"system.posix_acl_access".as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    };
    n >= 0
}

/// Why `m` (in `role`) is unsafe, or None. `acl`: it has an access ACL.
fn judge(m: &fs::Metadata, role: Role, euid: u32, acl: bool) -> Option<String> {
    let what = role.what();
    let mode = m.mode() & 0o7777;
    if m.uid() != 0 && m.uid() != euid {
        return Some(format!(
            "{what} is owned by uid {}, not by root or by the user vigil runs as (uid {euid})",
            m.uid()
        ));
    }
    let sticky_root_dir = role == Role::Parent && m.is_dir() && m.uid() == 0 && mode & 0o1000 != 0;
    if sticky_root_dir {
        return None;
    }
    if mode & 0o002 != 0 {
        return Some(format!(
            "{what} is writable by every user (mode {mode:04o})"
        ));
    }
    if mode & 0o020 != 0 && acl {
        return Some(format!(
            "{what} has an ACL that can let other users write it (mode {mode:04o}; see getfacl)"
        ));
    }
    if mode & 0o020 != 0 && m.gid() != 0 {
        return Some(format!(
            "{what} is writable by group gid {} (mode {mode:04o})",
            m.gid()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn chmod(p: &Path, mode: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A rules directory (0755) with one rule file (0644), in a fresh temp dir
    /// (0700) under /tmp (root-owned, sticky).
    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let rules = d.path().join("rules.d");
        fs::create_dir(&rules).unwrap();
        chmod(&rules, 0o755);
        let f = rules.join("a.yaml");
        fs::write(&f, "[]").unwrap();
        chmod(&f, 0o644);
        (d, rules, f)
    }

    #[test]
    fn safe_tree_under_tmp_passes() {
        let (d, rules, _) = setup();
        let cfg = d.path().join("vigil.yaml");
        fs::write(&cfg, "").unwrap();
        chmod(&cfg, 0o600);
        assert_eq!(check(&[rules], Some(&cfg)), vec![]);
    }

    #[test]
    fn world_writable_rule_dir_file_and_config_are_found() {
        let (d, rules, f) = setup();
        chmod(&rules, 0o777);
        let found = check(std::slice::from_ref(&rules), None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, rules);
        assert!(found[0]
            .reason
            .contains("rule directory is writable by every user (mode 0777)"));
        // Sticky does not save a rule directory: anyone could add a file.
        chmod(&rules, 0o1777);
        assert_eq!(check(std::slice::from_ref(&rules), None).len(), 1);
        chmod(&rules, 0o755);
        chmod(&f, 0o666);
        let found = check(std::slice::from_ref(&rules), None);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, f);
        assert!(found[0]
            .reason
            .contains("rule file is writable by every user"));
        let cfg = d.path().join("vigil.yaml");
        fs::write(&cfg, "").unwrap();
        chmod(&cfg, 0o666);
        let found = check(&[], Some(&cfg));
        assert!(
            found[0].reason.starts_with("config file is writable"),
            "{found:?}"
        );
    }

    #[test]
    fn world_writable_parent_is_found_unless_sticky_and_root_owned() {
        let (d, rules, _) = setup();
        chmod(d.path(), 0o777);
        let found = check(std::slice::from_ref(&rules), None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, d.path());
        assert!(found[0].reason.contains("directory above a rule path"));
        chmod(d.path(), 0o1777);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!(check(&[rules], None), vec![], "root-owned sticky parent");
        }
    }

    #[test]
    fn group_writable_only_for_group_root() {
        let (_d, rules, f) = setup();
        chmod(&f, 0o664);
        let gid = fs::metadata(&f).unwrap().gid();
        let found = check(&[rules], None);
        assert_eq!(found.is_empty(), gid == 0, "{found:?}");
    }

    #[test]
    fn an_acl_granting_another_user_write_is_found() {
        let (_d, rules, f) = setup();
        // `setfacl -m u:nobody:rw f`, as the kernel's xattr blob: version 2, then
        // (tag, perm, id) for user::rw-, user:65534:rw-, group::r--, mask::rw-, other::r--.
        let none = u32::MAX;
        let entries = [
            (1u16, 6u16, none),
            (2, 6, 65534),
            (4, 4, none),
            (0x10, 6, none),
            (0x20, 4, none),
        ];
        let mut blob = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in entries {
            blob.extend(tag.to_le_bytes());
            blob.extend(perm.to_le_bytes());
            blob.extend(id.to_le_bytes());
        }
        let path = CString::new(f.as_os_str().as_bytes()).unwrap();
        // SAFETY: NUL-terminated path and name; `blob` outlives the call.
        let rc = unsafe {
            libc::setxattr(
                path.as_ptr(),
                c"system.posix_acl_access".as_ptr(),
                blob.as_ptr().cast(),
                blob.len(),
                0,
            )
        };
        if rc != 0 {
            eprintln!(
                "SKIP: no POSIX ACLs here: {}",
                std::io::Error::last_os_error()
            );
            return;
        }
        // The group bits now show the ACL mask (rw): 0664, group root.
        assert_eq!(fs::metadata(&f).unwrap().mode() & 0o777, 0o664);
        let found = check(&[rules], None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].reason.contains("has an ACL"), "{found:?}");
    }

    #[test]
    fn every_directory_holding_a_link_of_a_chain_is_checked() {
        // rules.d/b.yaml -> middle/hop.yaml -> final/b.yaml: `middle` (world-writable)
        // is neither above the path as given nor above the resolved one.
        let (d, rules, _) = setup();
        for sub in ["middle", "final"] {
            fs::create_dir(d.path().join(sub)).unwrap();
        }
        chmod(&d.path().join("middle"), 0o777);
        chmod(&d.path().join("final"), 0o755);
        let target = d.path().join("final/b.yaml");
        fs::write(&target, "[]").unwrap();
        chmod(&target, 0o644);
        symlink(&target, d.path().join("middle/hop.yaml")).unwrap();
        symlink("../middle/hop.yaml", rules.join("b.yaml")).unwrap();
        let found = check(&[rules], None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, d.path().join("middle"));
    }

    #[test]
    fn a_symlinked_rule_file_is_judged_by_its_target() {
        let (d, rules, _) = setup();
        let elsewhere = d.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        chmod(&elsewhere, 0o777);
        let target = elsewhere.join("b.yaml");
        fs::write(&target, "[]").unwrap();
        chmod(&target, 0o644);
        symlink(&target, rules.join("b.yaml")).unwrap();
        let found = check(&[rules], None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, elsewhere);
    }

    #[test]
    fn owned_by_another_user_is_found() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIP: chown needs root");
            return;
        }
        let (_d, rules, f) = setup();
        std::os::unix::fs::chown(&f, Some(65534), Some(65534)).unwrap();
        let found = check(&[rules], None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].reason.contains("owned by uid 65534"), "{found:?}");
        let errs = load_errors(&found);
        assert_eq!(errs.0[0].loc.file, f.display().to_string());
        assert!(errs.0[0]
            .msg
            .starts_with("insecure permissions, not loaded"));
    }

    #[test]
    fn missing_paths_are_left_to_the_loader() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(check(&[d.path().join("nope.yaml")], None), vec![]);
    }
}
