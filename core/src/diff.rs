//! Unified diffs between two versions of a file (the `similar` crate does the diffing).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Change {
    Added,
    Removed,
    Modified,
}

/// One changed file between two versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FileDiff {
    pub path: String,
    pub change: Change,
    /// Unified diff text; `None` for binary files.
    pub diff: Option<String>,
}

/// A unified diff of `old` → `new` with three lines of context, `a/` and `b/` headers as git
/// writes them. Either side may be empty (added or removed file).
pub fn unified(path: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_line_shows_as_minus_and_plus() {
        let d = unified("src/a.txt", "one\ntwo\nthree\n", "one\n2\nthree\n");
        assert!(d.starts_with("--- a/src/a.txt\n+++ b/src/a.txt\n"), "{d}");
        assert!(d.contains("\n-two\n+2\n"), "{d}");
        assert!(d.contains("@@ -1,3 +1,3 @@"), "{d}");
    }

    #[test]
    fn added_file_is_all_plus() {
        let d = unified("n.txt", "", "x\ny\n");
        assert!(d.contains("+x\n+y\n"), "{d}");
        assert!(!d.contains("\n-"), "{d}");
    }

    #[test]
    fn identical_texts_give_an_empty_diff() {
        assert_eq!(unified("a", "same\n", "same\n"), "");
    }
}
