//! Reading rule paths into [`Source`]s: a file, or a directory's `*.yaml`
//! and `*.yml` files in name order (non-recursive, no dot files), each path
//! optionally prefixed with its dialect (`falco:PATH`).

use std::path::{Path, PathBuf};

use crate::error::{LoadErrors, Location};

/// One rule file's text.
#[derive(Clone, Debug)]
pub struct Source {
    /// Display name (the path as given, or the in-memory name).
    pub name: String,
    pub path: Option<PathBuf>,
    pub text: String,
    /// The dialect its rules path declared (`falco:PATH`); None: detected.
    pub dialect: Option<crate::dialect::Dialect>,
}

/// Read rule files/directories in order.
pub fn read_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<Source>, LoadErrors> {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    let loc = |p: &Path| Location {
        file: p.display().to_string(),
        line: 0,
        col: 0,
    };
    for p in paths {
        let (dialect, p) = crate::dialect::split_dialect(p.as_ref());
        let meta = match std::fs::metadata(p) {
            Ok(m) => m,
            Err(e) => {
                errs.push(crate::error::LoadError {
                    loc: loc(p),
                    item: None,
                    msg: format!("cannot read: {e}"),
                });
                continue;
            }
        };
        let files = if meta.is_dir() {
            match list_dir(p) {
                Ok(f) => f,
                Err(e) => {
                    errs.push(crate::error::LoadError {
                        loc: loc(p),
                        item: None,
                        msg: format!("cannot list directory: {e}"),
                    });
                    continue;
                }
            }
        } else {
            vec![p.to_path_buf()]
        };
        for f in files {
            match std::fs::read_to_string(&f) {
                Ok(text) => out.push(Source {
                    name: f.display().to_string(),
                    path: Some(f),
                    text,
                    dialect,
                }),
                Err(e) => errs.push(crate::error::LoadError {
                    loc: loc(&f),
                    item: None,
                    msg: format!("cannot read: {e}"),
                }),
            }
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(LoadErrors(errs))
    }
}

/// The `*.yaml`/`*.yml` files of a directory, name order, no dot files.
/// An entry that cannot be followed (a symlink loop, no permission) is skipped
/// with a logged warning; a dangling symlink (e.g. mid ConfigMap swap) silently.
pub fn list_dir(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    list_dir_report(dir, &mut |path, e| {
        tracing::warn!(path = %path.display(), "rule file skipped: {e}");
    })
}

/// [`list_dir`] that hands each skipped entry (other than a dangling symlink)
/// and its error to `skipped` instead of logging it.
pub fn list_dir_report(
    dir: &Path,
    skipped: &mut dyn FnMut(&Path, &std::io::Error),
) -> std::io::Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_rule_file_name(name) {
            continue;
        }
        let path = e.path();
        // follow symlinks; skip directories named *.yaml
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => v.push(path),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => skipped(&path, &e),
        }
    }
    v.sort();
    Ok(v)
}

/// Whether a directory entry named `name` is loaded as a rule file:
/// `*.yaml` or `*.yml`, not starting with `.`.
pub fn is_rule_file_name(name: &str) -> bool {
    !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_dir_reports_symlink_loops_not_dangling_links() {
        use std::os::unix::fs::symlink;
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.yaml"), "[]").unwrap();
        symlink("loop.yaml", d.path().join("loop.yaml")).unwrap();
        symlink("missing.yaml", d.path().join("dangling.yaml")).unwrap();
        let mut skipped = Vec::new();
        let files = list_dir_report(d.path(), &mut |p, e| {
            skipped.push((p.to_path_buf(), e.raw_os_error()))
        })
        .unwrap();
        assert_eq!(files, vec![d.path().join("a.yaml")]);
        assert_eq!(skipped, vec![(d.path().join("loop.yaml"), Some(40))]); // ELOOP
    }
}
