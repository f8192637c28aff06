//! The rules of a project's working tree, as pure functions: revisions, optimistic
//! concurrency and size limits. The room stores the tree; these decide what may change.

use crate::error::ErrorCode;
use crate::path::ProjectPath;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
pub const MAX_FILES: u64 = 2_000;
pub const MAX_PROJECT_BYTES: u64 = 50 * 1024 * 1024;

/// What a listing shows of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FileMeta {
    pub path: ProjectPath,
    pub rev: u64,
    pub size: u64,
    pub sha256: String,
}

/// The current state of one path: `rev` keeps counting across deletes (a tombstone keeps
/// it), so an edit based on a file that has since been deleted and re-created is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub rev: u64,
    pub exists: bool,
    pub size: u64,
}

impl Slot {
    pub const EMPTY: Slot = Slot {
        rev: 0,
        exists: false,
        size: 0,
    };
}

/// Totals of the live tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `base_rev` is not the current rev: someone else changed the file first.
    Stale {
        current_rev: u64,
    },
    /// The file to delete or rename does not exist.
    Missing,
    /// The rename target already exists.
    Exists,
    FileTooLarge,
    TooManyFiles,
    ProjectTooLarge,
}

impl Refusal {
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Refusal::Stale { .. } => ErrorCode::RevMismatch,
            Refusal::Missing => ErrorCode::NotFound,
            Refusal::Exists => ErrorCode::AlreadyExists,
            Refusal::FileTooLarge => ErrorCode::FileTooLarge,
            Refusal::TooManyFiles => ErrorCode::TooManyFiles,
            Refusal::ProjectTooLarge => ErrorCode::ProjectTooLarge,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::Stale { current_rev } => {
                format!("the file changed first; its current rev is {current_rev}")
            }
            Refusal::Missing => "no such file".into(),
            Refusal::Exists => "a file already exists at the target path".into(),
            Refusal::FileTooLarge => format!("a file may hold at most {MAX_FILE_BYTES} bytes"),
            Refusal::TooManyFiles => format!("a project may hold at most {MAX_FILES} files"),
            Refusal::ProjectTooLarge => {
                format!("a project may hold at most {MAX_PROJECT_BYTES} bytes")
            }
        }
    }
}

/// May `slot` be overwritten with `new_size` bytes by an edit based on `base_rev`?
/// Returns the new rev.
pub fn check_write(
    slot: Slot,
    base_rev: u64,
    new_size: u64,
    totals: Totals,
) -> Result<u64, Refusal> {
    if base_rev != slot.rev {
        return Err(Refusal::Stale {
            current_rev: slot.rev,
        });
    }
    check_fits(slot, new_size, totals)?;
    Ok(slot.rev + 1)
}

/// Size limits alone, for writes that are not based on a rev (restore, the agent).
pub fn check_fits(slot: Slot, new_size: u64, totals: Totals) -> Result<(), Refusal> {
    if new_size > MAX_FILE_BYTES {
        return Err(Refusal::FileTooLarge);
    }
    if !slot.exists && totals.files >= MAX_FILES {
        return Err(Refusal::TooManyFiles);
    }
    let old = if slot.exists { slot.size } else { 0 };
    if totals.bytes - old.min(totals.bytes) + new_size > MAX_PROJECT_BYTES {
        return Err(Refusal::ProjectTooLarge);
    }
    Ok(())
}

/// May the file in `slot` be deleted by a client that saw `base_rev`? Returns the
/// tombstone's rev.
pub fn check_delete(slot: Slot, base_rev: u64) -> Result<u64, Refusal> {
    if !slot.exists {
        return Err(Refusal::Missing);
    }
    if base_rev != slot.rev {
        return Err(Refusal::Stale {
            current_rev: slot.rev,
        });
    }
    Ok(slot.rev + 1)
}

/// May `from` move to `to`? Returns (tombstone rev of `from`, new rev of `to`).
pub fn check_rename(from: Slot, to: Slot, base_rev: u64) -> Result<(u64, u64), Refusal> {
    let from_rev = check_delete(from, base_rev)?;
    if to.exists {
        return Err(Refusal::Exists);
    }
    Ok((from_rev, to.rev + 1))
}

/// The content type a file is served with, by extension.
pub fn mime_type(path: &ProjectPath) -> &'static str {
    let ext = path
        .file_name()
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" | "cjs" | "jsx" => "text/javascript; charset=utf-8",
        "ts" | "tsx" | "mts" => "text/plain; charset=utf-8",
        "json" | "map" => "application/json",
        "md" | "txt" | "gitignore" | "env" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// Whether a browser would run this file if it were served inline: markup that can carry
/// scripts (HTML, SVG, XML) and scripts themselves. Such files are sent as attachments, and
/// every file read carries `nosniff` and a sandbox CSP, so that no stored file ever runs on
/// Kiln's origin.
pub fn is_active_content(path: &ProjectPath) -> bool {
    let ext = path
        .file_name()
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    matches!(
        ext.as_str(),
        "html"
            | "htm"
            | "xhtml"
            | "shtml"
            | "svg"
            | "svgz"
            | "xml"
            | "xsl"
            | "xslt"
            | "js"
            | "mjs"
            | "cjs"
            | "jsx"
            | "wasm"
            | "swf"
            | "pdf"
    ) || mime_type(path) == "application/octet-stream"
}

/// The headers every read of a stored file carries (the files API and version files).
pub fn stored_file_headers(path: &ProjectPath) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("content-type", mime_type(path).to_owned()),
        ("x-content-type-options", "nosniff".to_owned()),
        (
            "content-security-policy",
            "sandbox; default-src 'none'".to_owned(),
        ),
    ];
    if is_active_content(path) {
        h.push(("content-disposition", "attachment".to_owned()));
    }
    h
}

/// A version's content: each path's blob, by sha256. Stored in R2 at
/// `manifests/<sha256 of this JSON>`; blobs at `blobs/<sha256>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub files: std::collections::BTreeMap<ProjectPath, ManifestEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub sha256: String,
    pub size: u64,
}

impl Manifest {
    pub fn size(&self) -> u64 {
        self.files.values().map(|e| e.size).sum()
    }
}

pub fn blob_key(sha256: &str) -> String {
    format!("blobs/{sha256}")
}

pub fn manifest_key(sha256: &str) -> String {
    format!("manifests/{sha256}")
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::ids::hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_a_browser_would_run_are_attachments() {
        for (path, attachment) in [
            ("index.html", true),
            ("a/b.HTM", true),
            ("logo.svg", true),
            ("feed.xml", true),
            ("src/main.js", true),
            ("x.mjs", true),
            ("noext", true),
            ("src/App.tsx", false),
            ("style.css", false),
            ("photo.png", false),
            ("README.md", false),
        ] {
            let p = ProjectPath::parse(path).unwrap();
            let h = stored_file_headers(&p);
            let has = |k: &str, v: &str| h.iter().any(|(hk, hv)| *hk == k && hv == v);
            assert!(has("x-content-type-options", "nosniff"), "{path}");
            assert!(
                has("content-security-policy", "sandbox; default-src 'none'"),
                "{path}"
            );
            assert_eq!(
                has("content-disposition", "attachment"),
                attachment,
                "{path}"
            );
        }
    }

    const T: Totals = Totals {
        files: 3,
        bytes: 300,
    };

    fn live(rev: u64, size: u64) -> Slot {
        Slot {
            rev,
            exists: true,
            size,
        }
    }

    #[test]
    fn an_edit_on_the_current_rev_wins_and_a_stale_one_is_refused() {
        assert_eq!(check_write(live(4, 10), 4, 20, T), Ok(5));
        assert_eq!(
            check_write(live(4, 10), 3, 20, T),
            Err(Refusal::Stale { current_rev: 4 })
        );
        assert_eq!(check_write(Slot::EMPTY, 0, 1, T), Ok(1));
        assert_eq!(
            check_write(Slot::EMPTY, 1, 1, T),
            Err(Refusal::Stale { current_rev: 0 })
        );
    }

    #[test]
    fn revs_continue_across_a_delete() {
        let tomb = Slot {
            rev: 7,
            exists: false,
            size: 0,
        };
        assert_eq!(check_write(tomb, 7, 1, T), Ok(8));
        assert_eq!(
            check_write(tomb, 0, 1, T),
            Err(Refusal::Stale { current_rev: 7 })
        );
        assert_eq!(check_delete(tomb, 7), Err(Refusal::Missing));
        assert_eq!(check_delete(live(2, 1), 2), Ok(3));
        assert_eq!(
            check_delete(live(2, 1), 1),
            Err(Refusal::Stale { current_rev: 2 })
        );
    }

    #[test]
    fn limits() {
        assert_eq!(
            check_write(Slot::EMPTY, 0, MAX_FILE_BYTES + 1, T),
            Err(Refusal::FileTooLarge)
        );
        assert_eq!(check_write(Slot::EMPTY, 0, MAX_FILE_BYTES, T), Ok(1));
        let full = Totals {
            files: MAX_FILES,
            bytes: 10,
        };
        assert_eq!(
            check_write(Slot::EMPTY, 0, 1, full),
            Err(Refusal::TooManyFiles)
        );
        assert_eq!(
            check_write(live(1, 5), 1, 1, full),
            Ok(2),
            "overwrites still fit"
        );
        let heavy = Totals {
            files: 60,
            bytes: MAX_PROJECT_BYTES - 10,
        };
        assert_eq!(
            check_write(Slot::EMPTY, 0, 11, heavy),
            Err(Refusal::ProjectTooLarge)
        );
        assert_eq!(
            check_write(live(1, 100), 1, 110, heavy),
            Ok(2),
            "counts the replaced bytes"
        );
    }

    #[test]
    fn renames_need_a_live_source_and_a_free_target() {
        let tomb = Slot {
            rev: 3,
            exists: false,
            size: 0,
        };
        assert_eq!(check_rename(live(2, 1), tomb, 2), Ok((3, 4)));
        assert_eq!(
            check_rename(live(2, 1), live(1, 1), 2),
            Err(Refusal::Exists)
        );
        assert_eq!(
            check_rename(Slot::EMPTY, Slot::EMPTY, 0),
            Err(Refusal::Missing)
        );
        assert_eq!(
            check_rename(live(2, 1), Slot::EMPTY, 1),
            Err(Refusal::Stale { current_rev: 2 })
        );
    }

    #[test]
    fn manifests_serialise_paths_as_keys() {
        let mut m = Manifest::default();
        m.files.insert(
            ProjectPath::parse("src/a.ts").unwrap(),
            ManifestEntry {
                sha256: "ab".into(),
                size: 2,
            },
        );
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"files":{"src/a.ts":{"sha256":"ab","size":2}}}"#);
        assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), m);
        assert!(
            serde_json::from_str::<Manifest>(r#"{"files":{"../x":{"sha256":"a","size":1}}}"#)
                .is_err()
        );
    }

    #[test]
    fn mime_types_by_extension() {
        let m = |p: &str| mime_type(&ProjectPath::parse(p).unwrap());
        assert_eq!(m("index.html"), "text/html; charset=utf-8");
        assert_eq!(m("a/b.SVG"), "image/svg+xml");
        assert_eq!(m("Makefile"), "application/octet-stream");
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
