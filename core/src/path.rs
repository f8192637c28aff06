//! `ProjectPath`: the only way a file path enters Kiln (invariant 5). Parsed once at the edge;
//! everything deeper takes a `ProjectPath`, never a raw string.

use serde::{Deserialize, Serialize};
use std::fmt;

pub const MAX_PATH_BYTES: usize = 512;
pub const MAX_SEGMENT_BYTES: usize = 255;

/// A relative, normalised path inside a project: `/`-separated, no empty, `.` or `..`
/// segments, no leading `/`, no backslash, no NUL or other control characters, at most
/// 512 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
pub struct ProjectPath(String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    Empty,
    TooLong,
    SegmentTooLong,
    Absolute,
    Traversal,
    /// `.`, an empty segment (`a//b`) or a trailing slash.
    NotNormalised,
    BadCharacter,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::Empty => "path is empty",
            PathError::TooLong => "path is longer than 512 bytes",
            PathError::SegmentTooLong => "a path segment is longer than 255 bytes",
            PathError::Absolute => "path must be relative",
            PathError::Traversal => "path must not contain '..'",
            PathError::NotNormalised => {
                "path must not contain '.', empty segments or a trailing '/'"
            }
            PathError::BadCharacter => {
                "path must not contain control characters, backslashes or ':' in its first segment"
            }
        })
    }
}

impl std::error::Error for PathError {}

impl ProjectPath {
    pub fn parse(raw: &str) -> Result<ProjectPath, PathError> {
        if raw.is_empty() {
            return Err(PathError::Empty);
        }
        if raw.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong);
        }
        if raw.chars().any(|c| c.is_control() || c == '\\') {
            return Err(PathError::BadCharacter);
        }
        if raw.starts_with('/') {
            return Err(PathError::Absolute);
        }
        for (i, seg) in raw.split('/').enumerate() {
            match seg {
                ".." => return Err(PathError::Traversal),
                // A server or tool that decodes once more would turn these into dot segments.
                s if is_encoded_dot_segment(s) => return Err(PathError::Traversal),
                "" | "." => return Err(PathError::NotNormalised),
                // `C:` would be absolute on Windows hosts, where exports get unpacked.
                s if i == 0 && s.contains(':') => return Err(PathError::BadCharacter),
                s if s.len() > MAX_SEGMENT_BYTES => return Err(PathError::SegmentTooLong),
                _ => {}
            }
        }
        Ok(ProjectPath(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The directories above this path, outermost first: `a/b/c.txt` → `a`, `a/b`.
    pub fn ancestors(&self) -> impl Iterator<Item = &str> {
        self.0.match_indices('/').map(|(i, _)| &self.0[..i])
    }
}

/// `%2e`, `.%2E`, `%2e%2e`, … — a segment that percent-decodes to `.` or `..`.
fn is_encoded_dot_segment(seg: &str) -> bool {
    if !seg.contains('%') || seg.len() > 6 {
        return false;
    }
    let decoded = seg.to_ascii_lowercase().replace("%2e", ".");
    decoded == "." || decoded == ".."
}

impl fmt::Display for ProjectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ProjectPath {
    type Error = PathError;
    fn try_from(s: String) -> Result<Self, PathError> {
        ProjectPath::parse(&s)
    }
}

impl From<ProjectPath> for String {
    fn from(p: ProjectPath) -> String {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_paths_parse_unchanged() {
        for good in [
            "index.html",
            "src/App.tsx",
            "a/b/c/d.txt",
            ".gitignore",
            "src/.env.example",
            "..hidden",
            "file..txt",
            "über/日本.md",
            "with space/x y.css",
        ] {
            assert_eq!(ProjectPath::parse(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn traversal_and_malformed_paths_are_refused() {
        use PathError::*;
        let long_segment = "a".repeat(300);
        let long_path = ["abcdefgh"; 70].join("/");
        let cases: Vec<(&str, PathError)> = vec![
            ("", Empty),
            ("../x", Traversal),
            ("a/../../b", Traversal),
            ("a/..", Traversal),
            ("/etc/passwd", Absolute),
            ("a\0b", BadCharacter),
            ("a\nb", BadCharacter),
            ("a\\..\\b", BadCharacter),
            ("C:/Windows", BadCharacter),
            (".", NotNormalised),
            ("./a", NotNormalised),
            ("a//b", NotNormalised),
            ("a/", NotNormalised),
            (&long_segment, SegmentTooLong),
            (&long_path, TooLong),
        ];
        for (raw, want) in cases {
            assert_eq!(ProjectPath::parse(raw), Err(want), "{raw:?}");
        }
    }

    #[test]
    fn percent_encoded_dot_segments_are_refused_too() {
        // Decoding happens once, in the router; a segment that would decode to a dot segment
        // on a second decode is refused all the same.
        for raw in ["%2e%2e/x", "a/%2E%2e/b", ".%2e/x", "%2e/x", "a/%2e"] {
            assert_eq!(
                ProjectPath::parse(raw),
                Err(PathError::Traversal),
                "{raw:?}"
            );
        }
        assert!(ProjectPath::parse("100%/x").is_ok());
        assert!(
            ProjectPath::parse("%2e%2e%2e").is_ok(),
            "three dots is a name"
        );
    }

    #[test]
    fn ancestors_and_file_name() {
        let p = ProjectPath::parse("a/b/c.txt").unwrap();
        assert_eq!(p.ancestors().collect::<Vec<_>>(), vec!["a", "a/b"]);
        assert_eq!(p.file_name(), "c.txt");
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<ProjectPath>("\"../x\"").is_err());
        assert!(serde_json::from_str::<ProjectPath>("\"src/main.ts\"").is_ok());
    }
}
