//! Line bookkeeping of one rule source: where each YAML item and key
//! starts, for error positions.

use crate::error::Location;

/// Line bookkeeping of one source, for error positions.
#[derive(Clone, Debug)]
pub(crate) struct SrcLines {
    pub name: String,
    pub lines: Vec<String>,
}

impl SrcLines {
    pub fn new(name: &str, text: &str) -> SrcLines {
        SrcLines {
            name: name.to_string(),
            lines: text.lines().map(str::to_string).collect(),
        }
    }

    pub fn loc(&self, line: usize, col: usize) -> Location {
        Location {
            file: self.name.clone(),
            line,
            col,
        }
    }

    /// 1-based start lines of the top-level sequence items.
    pub fn item_lines(&self) -> Vec<usize> {
        let mut indent = None;
        let mut out = Vec::new();
        for (i, l) in self.lines.iter().enumerate() {
            let t = l.trim_start();
            if t.is_empty() || t.starts_with('#') || t.starts_with("---") {
                continue;
            }
            let ind = l.len() - t.len();
            if t == "-" || t.starts_with("- ") {
                match indent {
                    None => {
                        indent = Some(ind);
                        out.push(i + 1);
                    }
                    Some(x) if x == ind => out.push(i + 1),
                    _ => {}
                }
            }
        }
        out
    }

    /// Location of `key:` within lines `[from, to)` (1-based), at the first match.
    pub fn key_loc(&self, from: usize, to: usize, key: &str) -> Option<Location> {
        for ln in from..to.min(self.lines.len() + 1) {
            let l = &self.lines[ln - 1];
            let t = l.trim_start();
            let t2 = t.strip_prefix("- ").map(str::trim_start).unwrap_or(t);
            let t2 = t2.strip_prefix('{').map(str::trim_start).unwrap_or(t2);
            if let Some(rest) = t2.strip_prefix(key) {
                if rest.trim_start().starts_with(':') {
                    let col = l.len() - t2.len() + 1;
                    return Some(self.loc(ln, col));
                }
            }
            // flow mappings: `{rule: x, condition: ...}` on one line
            if let Some(pos) = l.find(&format!(", {key}:")) {
                return Some(self.loc(ln, pos + 3));
            }
        }
        None
    }

    /// Where `key` is given the second time in the block mapping whose
    /// first key is at `line`:`col` (1-based), and the line of the first
    /// time. Also finds repeats inside a one-line flow mapping.
    pub fn duplicate_key(&self, line: usize, col: usize, key: &str) -> Option<(Location, usize)> {
        let indent = col.checked_sub(1)?;
        let is_key_at = |l: &str, at: usize| {
            let rest = l.get(at..).unwrap_or("");
            let rest = rest
                .strip_prefix(key)
                .or_else(|| rest.strip_prefix(&format!("\"{key}\"")))
                .or_else(|| rest.strip_prefix(&format!("'{key}'")));
            rest.is_some_and(|r| r.trim_start().starts_with(':'))
        };
        let mut first = None;
        for ln in line..=self.lines.len() {
            let l = self.lines.get(ln.checked_sub(1)?)?;
            let t = l.trim_start();
            let ind = l.len() - t.len();
            let ended = ind < indent || (ind == indent && t.starts_with("- "));
            if ln > line && !(t.is_empty() || t.starts_with('#')) && ended {
                break; // the mapping ended
            }
            let mut hits: Vec<usize> = Vec::new();
            if (ln == line || ind == indent) && is_key_at(l, indent) {
                hits.push(indent);
            }
            // flow mappings: `{a: 1, a: 2}` / `- {rule: x, a: 1}`
            for (p, _) in l.match_indices(", ") {
                let at = p + 2 + (l[p + 2..].len() - l[p + 2..].trim_start().len());
                if at > indent && is_key_at(l, at) {
                    hits.push(at);
                }
            }
            if ln == line {
                if let Some(p) = l.find('{') {
                    let at = p + 1 + (l[p + 1..].len() - l[p + 1..].trim_start().len());
                    if is_key_at(l, at) && !hits.contains(&at) {
                        hits.insert(0, at);
                    }
                }
            }
            for at in hits {
                match first {
                    None => first = Some(ln),
                    Some(f) => return Some((self.loc(ln, at + 1), f)),
                }
            }
        }
        None
    }

    /// Find `needle` at or after `base` (at most 60 lines on); `base` if absent.
    pub fn find_from(&self, base: &Location, needle: &str) -> Location {
        if needle.is_empty() || base.line == 0 {
            return base.clone();
        }
        let start = base.line;
        for ln in start..(start + 60).min(self.lines.len() + 1) {
            let l = &self.lines[ln - 1];
            let from = if ln == start {
                base.col.saturating_sub(1).min(l.len())
            } else {
                0
            };
            if let Some(p) = l.get(from..).and_then(|s| s.find(needle)) {
                return self.loc(ln, from + p + 1);
            }
        }
        base.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_lines_and_keys() {
        let s = SrcLines::new(
            "f.yaml",
            "# c\n- list: a\n  items: [x]\n\n- rule: r\n  desc: >\n    - not an item\n  condition: x\n",
        );
        assert_eq!(s.item_lines(), vec![2, 5]);
        let l = s.key_loc(5, usize::MAX, "condition").unwrap();
        assert_eq!((l.line, l.col), (8, 3));
        let l = s.key_loc(5, usize::MAX, "rule").unwrap();
        assert_eq!((l.line, l.col), (5, 3));
    }
}
