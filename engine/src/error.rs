//! Load errors and warnings of rule files and test cases: each names the
//! file, line and column, the item (rule/list/macro name) and what is wrong.
//! A load collects every error it finds; [`LoadErrors`] carries them all.

use std::fmt;

/// Where something is in a source file (1-based line and column; 0 = unknown).
/// Shown as `file:line:col`, or `file` alone when the line is unknown (a
/// file that cannot be read).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.col)
        }
    }
}

/// One load error: `file:line:col: rule `X`: message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{loc}: {}{msg}", item.as_ref().map(|i| format!("{i}: ")).unwrap_or_default())]
pub struct LoadError {
    pub loc: Location,
    /// The item the error belongs to, e.g. "rule `Shell in container`", "list `shells`".
    pub item: Option<String>,
    pub msg: String,
}

/// Every error of a failed load (never empty).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl LoadErrors {
    pub fn single(loc: Location, item: Option<String>, msg: impl Into<String>) -> LoadErrors {
        LoadErrors(vec![LoadError {
            loc,
            item,
            msg: msg.into(),
        }])
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> std::slice::Iter<'_, LoadError> {
        self.0.iter()
    }
}

/// A load warning (the rule set still loads): same shape as an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadWarning {
    pub loc: Location,
    pub item: Option<String>,
    pub msg: String,
}

impl fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: warning: ", self.loc)?;
        if let Some(i) = &self.item {
            write!(f, "{i}: ")?;
        }
        f.write_str(&self.msg)
    }
}

/// Collects errors and warnings during a load.
#[allow(dead_code)]
#[derive(Default, Debug)]
pub(crate) struct Diag {
    pub errors: Vec<LoadError>,
    pub warnings: Vec<LoadWarning>,
}

#[allow(dead_code)]
impl Diag {
    pub fn err(&mut self, loc: &Location, item: Option<&str>, msg: impl Into<String>) {
        self.errors.push(LoadError {
            loc: loc.clone(),
            item: item.map(str::to_string),
            msg: msg.into(),
        });
    }
    pub fn warn(&mut self, loc: &Location, item: Option<&str>, msg: impl Into<String>) {
        self.warnings.push(LoadWarning {
            loc: loc.clone(),
            item: item.map(str::to_string),
            msg: msg.into(),
        });
    }
}
