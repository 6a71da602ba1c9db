//! A rules path's declared dialect (`falco:PATH`, `vigil:PATH`). Imports
//! nothing of the crate, so the vigil loader (`rules`), the Falco dialect and
//! the callers that read rules paths all may use it.

/// A rule file's dialect, when a rules path declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Vigil,
    Falco,
}

impl Dialect {
    /// How a rules path declares it: `falco:` / `vigil:`.
    pub fn prefix(self) -> &'static str {
        match self {
            Dialect::Vigil => "vigil:",
            Dialect::Falco => "falco:",
        }
    }
}

/// A rules path with its declared dialect: `falco:PATH` and `vigil:PATH`
/// declare it for the file or every file of the directory, a plain path
/// leaves it to detection (`crate::falco`'s detection). Everything that touches the
/// file system uses the returned path.
pub fn split_dialect(p: &std::path::Path) -> (Option<Dialect>, &std::path::Path) {
    let Some(s) = p.to_str() else {
        return (None, p);
    };
    for (prefix, d) in [("falco:", Dialect::Falco), ("vigil:", Dialect::Vigil)] {
        if let Some(rest) = s.strip_prefix(prefix) {
            return (Some(d), std::path::Path::new(rest));
        }
    }
    (None, p)
}
