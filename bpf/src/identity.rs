//! Identity of the files and directories the rules' path terms name: the
//! `(device, inode)` of each, so that an alias of a watched file (a hard
//! link, a bind mount, a symlink, `/proc/self/root/...`) is treated as the
//! file. [`Identity::scan`] stats the paths of a [`FilterPlan`]: an exact
//! path (`/etc/shadow`) is a *file* entry, a directory prefix (`/etc/pam.d/`)
//! a *directory* entry for it and every directory below it (bounded). The
//! kernel keeps the entries in `f_ident` (a successful open whose inode, or
//! whose parent directory's inode, is there passes the first-stage filter),
//! and userspace renames such an open to the canonical path
//! ([`Identity::canonical`]).
//!
//! Inodes change when a file is replaced (`passwd` renames a new
//! /etc/shadow into place): the pipeline rescans on every filter write and
//! periodically.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::decode::{kernel_dev, FileId};
use crate::filter::{FilterPlan, PATH_ANY, PATH_WRITE};

/// `f_ident` value bits (`VI_*` in vigil.h).
pub const VI_FILE: u8 = 1;
pub const VI_FILE_WRITE: u8 = 2;
pub const VI_DIR: u8 = 4;
pub const VI_DIR_WRITE: u8 = 8;

/// At most this many entries (the kernel map holds 16 Ki).
pub const MAX_ENTRIES: usize = 8192;
/// Directories below a directory prefix are scanned this deep.
const MAX_DEPTH: usize = 16;

/// Scanned identities: kernel map entries and the canonical names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// `(kernel dev, inode)` → `VI_*` flags.
    pub entries: BTreeMap<(u32, u64), u8>,
    /// Files: identity → the path the rule named.
    files: BTreeMap<(u32, u64), String>,
    /// Directories: identity → their canonical path (no trailing `/`).
    dirs: BTreeMap<(u32, u64), String>,
    /// Every watched path (files and directories, no trailing `/`): an
    /// open already named by one of them keeps its own name (`/usr/bin`
    /// and `/bin` may be one directory).
    names: BTreeSet<String>,
    /// The scan stopped at [`MAX_ENTRIES`].
    pub capped: bool,
}

/// The kernel's 16-bit hash of an identity (`ident_hash16` in filter.bpf.h),
/// indexing the `f_ident_pre` pre-check array.
pub fn ident_hash16(dev: u32, ino: u64) -> u16 {
    let h = u64::from(dev).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ ino.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    (h >> 48) as u16
}

/// A path with no `.`, `..` or empty component: only such a prefix names a
/// file or directory. `/tmp/.` (a rule's "hidden file in /tmp") is a name
/// prefix, not the directory `/tmp`: stat'ing it would rename every open
/// below /tmp to `/tmp/./...`.
fn clean(p: &str) -> bool {
    p.split('/')
        .skip(1)
        .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Paths below these are virtual: their inodes say nothing stable.
fn virtual_fs(p: &str) -> bool {
    ["/proc", "/sys", "/dev"]
        .iter()
        .any(|v| p == *v || p.starts_with(&format!("{v}/")))
}

impl Identity {
    /// Stat the plan's path prefixes (open type): exact paths that exist and
    /// are not directories become file entries, directory prefixes (and
    /// every directory below them) directory entries, each with the flags
    /// the prefix carries (any open, or writes only). `/`, virtual file
    /// systems and missing paths are skipped.
    pub fn scan(plan: &FilterPlan) -> Identity {
        let mut id = Identity::default();
        for (p, &flags) in &plan.paths {
            let Ok(p) = std::str::from_utf8(p) else {
                continue;
            };
            let trimmed = p.trim_end_matches('/');
            if trimmed.is_empty() || !p.starts_with('/') || !clean(trimmed) || virtual_fs(trimmed) {
                continue;
            }
            let Ok(md) = std::fs::metadata(trimmed) else {
                continue;
            };
            let any = flags & PATH_ANY != 0;
            let write = flags & PATH_WRITE != 0;
            if md.is_dir() {
                let f = if any { VI_DIR } else { 0 } | if write { VI_DIR_WRITE } else { 0 };
                id.scan_dir(Path::new(trimmed), trimmed.to_string(), f, 0);
            } else if !p.ends_with('/') {
                let f = if any { VI_FILE } else { 0 } | if write { VI_FILE_WRITE } else { 0 };
                let key = (kernel_dev(md.dev()), md.ino());
                if id.add(key, f) {
                    id.files.entry(key).or_insert_with(|| p.to_string());
                    id.names.insert(p.to_string());
                }
            }
        }
        id
    }

    /// Adds `flags` to an entry; false when the scan is full.
    fn add(&mut self, key: (u32, u64), flags: u8) -> bool {
        if !self.entries.contains_key(&key) && self.entries.len() >= MAX_ENTRIES {
            self.capped = true;
            return false;
        }
        *self.entries.entry(key).or_default() |= flags;
        true
    }

    fn scan_dir(&mut self, dir: &Path, name: String, flags: u8, depth: usize) {
        let Ok(md) = std::fs::metadata(dir) else {
            return;
        };
        let key = (kernel_dev(md.dev()), md.ino());
        if !self.add(key, flags) {
            return;
        }
        self.dirs.entry(key).or_insert(name.clone());
        self.names.insert(name.clone());
        if depth >= MAX_DEPTH {
            return;
        }
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for ent in rd.flatten() {
            // symlinks are not followed: their targets are scanned where
            // they live, or not at all
            if ent.file_type().is_ok_and(|t| t.is_dir()) {
                let child = format!("{}/{}", name, ent.file_name().to_string_lossy());
                self.scan_dir(&ent.path(), child, flags, depth + 1);
            }
        }
    }

    /// The path a rule names for the opened file `id` whose own (walked)
    /// path is `resolved`: the watched file it is (hard link, bind mount),
    /// or the same name in the watched directory its dentry is in; None
    /// when neither is watched.
    pub fn canonical(&self, id: &FileId, resolved: &str) -> Option<String> {
        if id.ino == 0 || self.names.contains(resolved) {
            return None;
        }
        if let Some(p) = self.files.get(&(id.dev, id.ino)) {
            return Some(p.clone());
        }
        let dir = self.dirs.get(&(id.dev, id.parent_ino))?;
        let (parent, leaf) = resolved.rsplit_once('/')?;
        if leaf.is_empty() || self.names.contains(parent) {
            return None;
        }
        Some(format!("{dir}/{leaf}"))
    }

    /// `f_ident_pre` slots: hash → OR of the flags of the entries there.
    pub fn pre_check(&self) -> BTreeMap<u16, u8> {
        let mut out = BTreeMap::new();
        for (&(dev, ino), &f) in &self.entries {
            *out.entry(ident_hash16(dev, ino)).or_insert(0) |= f;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(paths: &[(&str, u8)]) -> FilterPlan {
        FilterPlan {
            paths: paths
                .iter()
                .map(|(p, f)| (p.as_bytes().to_vec(), *f))
                .collect(),
            ..Default::default()
        }
    }

    fn id_of(p: &Path) -> FileId {
        let md = std::fs::metadata(p).unwrap();
        let parent = std::fs::metadata(p.parent().unwrap()).unwrap();
        FileId {
            dev: kernel_dev(md.dev()),
            ino: md.ino(),
            parent_ino: parent.ino(),
        }
    }

    #[test]
    fn files_and_directories_by_identity() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().to_str().unwrap().to_string();
        std::fs::create_dir_all(d.path().join("conf/sub")).unwrap();
        std::fs::write(d.path().join("secret"), "s").unwrap();
        std::fs::write(d.path().join("conf/sub/x"), "x").unwrap();
        std::fs::write(d.path().join("other"), "o").unwrap();
        // a hard link to the secret, elsewhere
        std::fs::hard_link(d.path().join("secret"), d.path().join("alias")).unwrap();
        let secret = format!("{root}/secret");
        let conf = format!("{root}/conf/");
        let p = plan(&[
            (secret.as_str(), PATH_ANY),
            (conf.as_str(), PATH_WRITE),
            ("/", PATH_ANY),
            ("/proc/1/", PATH_ANY),
            ("/nonexistent/file", PATH_ANY),
        ]);
        let id = Identity::scan(&p);
        // secret, conf and conf/sub
        assert_eq!(id.entries.len(), 3, "{:?}", id.entries);
        let alias = id_of(&d.path().join("alias"));
        assert_eq!(id.entries[&(alias.dev, alias.ino)], VI_FILE);
        assert_eq!(
            id.canonical(&alias, &format!("{root}/alias")).as_deref(),
            Some(secret.as_str())
        );
        let x = id_of(&d.path().join("conf/sub/x"));
        assert_eq!(id.entries[&(x.dev, x.parent_ino)], VI_DIR_WRITE);
        assert_eq!(
            id.canonical(&x, "/mnt/bind/sub/x").as_deref(),
            Some(format!("{root}/conf/sub/x").as_str())
        );
        // a path already under a watched name keeps it
        assert_eq!(id.canonical(&x, &format!("{root}/conf/sub/x")), None);
        let other = id_of(&d.path().join("other"));
        assert_eq!(id.canonical(&other, "/x/other"), None);
        assert_eq!(id.canonical(&FileId::default(), "/x"), None);
        let pre = id.pre_check();
        assert_eq!(pre[&ident_hash16(alias.dev, alias.ino)] & VI_FILE, VI_FILE);
    }

    #[test]
    fn a_dot_prefix_is_a_name_prefix_not_its_directory() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().to_str().unwrap().to_string();
        std::fs::create_dir_all(d.path().join("data")).unwrap();
        std::fs::write(d.path().join("data/f"), "f").unwrap();
        // "hidden files in <root>" and a `..` path: neither names a directory
        let p = plan(&[
            (&format!("{root}/."), PATH_ANY),
            (&format!("{root}/data/../data/"), PATH_ANY),
        ]);
        let id = Identity::scan(&p);
        assert!(id.entries.is_empty(), "{:?}", id.entries);
        let f = id_of(&d.path().join("data/f"));
        assert_eq!(id.canonical(&f, &format!("{root}/data/f")), None);
    }
}
