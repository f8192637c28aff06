//! The file API's disk side. Every operation resolves its path beneath the project directory
//! with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, so a symlink or `..` planted by code
//! in the sandbox can never lead the (root) service outside the project. Writes go to a temp
//! file renamed into place (never through an existing hard link); reads only return regular
//! files owned by the sandbox user.

use kiln_core::sandbox::FileEntry;
use kiln_core::ProjectPath;
use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{fchown, unlinkat, Gid, Uid, UnlinkatFlags};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// Directories the listing does not descend into.
const SKIP_DIRS: &[&str] = &["node_modules", ".vite", ".git"];
const MAX_LIST: usize = 20_000;
/// Directories a prune neither enters nor removes, at any depth: what the sandbox makes for
/// itself (installed packages, Vite's cache, build output, caches, git metadata), which the
/// edge's tree never holds.
pub const PRUNE_KEEP_DIRS: &[&str] = &[
    "node_modules",
    ".vite",
    "dist",
    ".git",
    ".cache",
    ".npm",
    ".kiln-publish",
];
/// How deep a prune descends; deeper trees are left alone rather than recursed without end.
const MAX_PRUNE_DEPTH: usize = 64;

#[derive(Debug)]
pub enum FsError {
    NotFound,
    TooLarge,
    /// A directory where a file is expected, or the other way round; or a symlink.
    Conflict(String),
    /// The project's disk image is full.
    NoSpace,
    Io(io::Error),
}

impl From<Errno> for FsError {
    fn from(e: Errno) -> Self {
        match e {
            Errno::ENOENT => FsError::NotFound,
            Errno::ELOOP | Errno::EXDEV => FsError::Conflict("path crosses a symlink".into()),
            Errno::EISDIR | Errno::ENOTDIR | Errno::ENOTEMPTY | Errno::EEXIST => {
                FsError::Conflict(e.desc().into())
            }
            Errno::ENOSPC | Errno::EDQUOT => FsError::NoSpace,
            e => FsError::Io(e.into()),
        }
    }
}

impl From<io::Error> for FsError {
    fn from(e: io::Error) -> Self {
        match e.raw_os_error() {
            Some(n) if n == Errno::ENOSPC as i32 || n == Errno::EDQUOT as i32 => FsError::NoSpace,
            _ => FsError::Io(e),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProjectFs {
    pub root: PathBuf,
    pub uid: u32,
    pub gid: u32,
}

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        )
}

fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open and is owned by no one else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

impl ProjectFs {
    fn open_root(&self) -> Result<OwnedFd, FsError> {
        let f = File::open(&self.root)?;
        Ok(f.into())
    }

    fn open_dir(&self, root: &OwnedFd, rel: &str) -> Result<OwnedFd, FsError> {
        if rel.is_empty() {
            return Ok(root.try_clone()?);
        }
        let fd = openat2(
            root.as_raw_fd(),
            rel,
            how(OFlag::O_RDONLY | OFlag::O_DIRECTORY),
        )?;
        Ok(owned(fd))
    }

    /// Opens (creating as needed, owned by the sandbox user) the directories of `rel`.
    fn make_dirs(&self, root: &OwnedFd, rel: &str) -> Result<OwnedFd, FsError> {
        let mut dir = root.try_clone()?;
        if rel.is_empty() {
            return Ok(dir);
        }
        for seg in rel.split('/') {
            match mkdirat(Some(dir.as_raw_fd()), seg, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e.into()),
            }
            let next = owned(openat2(
                dir.as_raw_fd(),
                seg,
                how(OFlag::O_RDONLY | OFlag::O_DIRECTORY),
            )?);
            let st = fstat(next.as_raw_fd())?;
            if st.st_uid == 0 {
                fchown(next.as_raw_fd(), Some(self.owner()), Some(self.group()))?;
            }
            dir = next;
        }
        Ok(dir)
    }

    fn owner(&self) -> Uid {
        Uid::from_raw(self.uid)
    }
    fn group(&self) -> Gid {
        Gid::from_raw(self.gid)
    }

    /// Writes one file atomically (temp file + rename), creating its directories.
    pub fn write(&self, path: &ProjectPath, bytes: &[u8]) -> Result<(), FsError> {
        let root = self.open_root()?;
        let (parent, name) = split(path);
        let dir = self.make_dirs(&root, parent)?;
        let mut rnd = [0u8; 8];
        crate::random_bytes(&mut rnd)?;
        let tmp = format!(".kiln-tmp-{}", hex(&rnd));
        let fd = owned(openat2(
            dir.as_raw_fd(),
            tmp.as_str(),
            how(OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL)
                .mode(Mode::from_bits_truncate(0o644)),
        )?);
        let result = (|| -> Result<(), FsError> {
            fchown(fd.as_raw_fd(), Some(self.owner()), Some(self.group()))?;
            let mut f = File::from(fd);
            f.write_all(bytes)?;
            nix::fcntl::renameat(
                Some(dir.as_raw_fd()),
                tmp.as_str(),
                Some(dir.as_raw_fd()),
                name,
            )?;
            Ok(())
        })();
        if result.is_err() {
            let _ = unlinkat(
                Some(dir.as_raw_fd()),
                tmp.as_str(),
                UnlinkatFlags::NoRemoveDir,
            );
        }
        result
    }

    /// A regular file's bytes, at most `max` of them.
    pub fn read(&self, path: &ProjectPath, max: usize) -> Result<Vec<u8>, FsError> {
        let root = self.open_root()?;
        let fd = owned(openat2(
            root.as_raw_fd(),
            path.as_str(),
            how(OFlag::O_RDONLY),
        )?);
        let st = fstat(fd.as_raw_fd())?;
        if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
            return Err(FsError::Conflict("not a regular file".into()));
        }
        if st.st_uid != self.uid {
            return Err(FsError::Conflict("file is not the project's".into()));
        }
        if st.st_size as u64 > max as u64 {
            return Err(FsError::TooLarge);
        }
        let mut out = Vec::with_capacity(st.st_size as usize);
        File::from(fd).take(max as u64 + 1).read_to_end(&mut out)?;
        if out.len() > max {
            return Err(FsError::TooLarge);
        }
        Ok(out)
    }

    /// Removes a file, symlink or directory tree.
    pub fn delete(&self, path: &ProjectPath) -> Result<(), FsError> {
        let root = self.open_root()?;
        let (parent, name) = split(path);
        let dir = self.open_dir(&root, parent)?;
        let st = fstatat(
            Some(dir.as_raw_fd()),
            name,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR {
            // `dir` is already resolved safely; std's remove_dir_all never follows symlinks.
            let p = Path::new("/proc/self/fd")
                .join(dir.as_raw_fd().to_string())
                .join(name);
            std::fs::remove_dir_all(p)?;
        } else {
            unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir)?;
        }
        Ok(())
    }

    /// Removes every file and symlink not in `keep` (project paths), then every directory
    /// left empty, except [`PRUNE_KEEP_DIRS`] and the temp files of writes in flight.
    /// Returns how many files and symlinks it removed. Directories are opened beneath the
    /// project without following symlinks, so a symlink planted by the sandbox is removed,
    /// never followed.
    pub fn prune(&self, keep: &std::collections::HashSet<&str>) -> Result<usize, FsError> {
        let root = self.open_root()?;
        let mut removed = 0;
        self.prune_dir(&root, "", keep, 0, &mut removed)?;
        Ok(removed)
    }

    /// `true` if `dir` is empty afterwards.
    fn prune_dir(
        &self,
        dir: &OwnedFd,
        prefix: &str,
        keep: &std::collections::HashSet<&str>,
        depth: usize,
        removed: &mut usize,
    ) -> Result<bool, FsError> {
        let rd = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))?;
        let mut left = 0usize;
        for e in rd {
            let e = e?;
            let (name, ft) = (e.file_name(), e.file_type()?);
            // A name that is not UTF-8 cannot be a project path: it is never kept.
            let utf8 = name.to_str();
            let rel = utf8.map(|n| {
                if prefix.is_empty() {
                    n.to_owned()
                } else {
                    format!("{prefix}/{n}")
                }
            });
            if utf8.is_some_and(|n| n.starts_with(".kiln-tmp-")) {
                left += 1;
                continue;
            }
            if ft.is_dir() {
                if utf8.is_some_and(|n| PRUNE_KEEP_DIRS.contains(&n)) || depth >= MAX_PRUNE_DEPTH {
                    left += 1;
                    continue;
                }
                let sub = match openat2(
                    dir.as_raw_fd(),
                    name.as_os_str(),
                    how(OFlag::O_RDONLY | OFlag::O_DIRECTORY),
                ) {
                    Ok(fd) => owned(fd),
                    Err(Errno::ENOENT) => continue,
                    Err(e) => return Err(e.into()),
                };
                let empty =
                    self.prune_dir(&sub, rel.as_deref().unwrap_or(""), keep, depth + 1, removed)?;
                if !empty {
                    left += 1;
                    continue;
                }
                match unlinkat(
                    Some(dir.as_raw_fd()),
                    name.as_os_str(),
                    UnlinkatFlags::RemoveDir,
                ) {
                    Ok(()) | Err(Errno::ENOENT) => {}
                    // The sandbox wrote into it meanwhile: it stays.
                    Err(Errno::ENOTEMPTY | Errno::EEXIST) => left += 1,
                    Err(e) => return Err(e.into()),
                }
            } else if rel.as_deref().is_some_and(|r| keep.contains(r)) {
                left += 1;
            } else {
                match unlinkat(
                    Some(dir.as_raw_fd()),
                    name.as_os_str(),
                    UnlinkatFlags::NoRemoveDir,
                ) {
                    Ok(()) => *removed += 1,
                    Err(Errno::ENOENT) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(left == 0)
    }

    /// Every file and directory, depth first, skipping `node_modules`, `.vite` and `.git`.
    pub fn list(&self) -> Result<Vec<FileEntry>, FsError> {
        let root = self.open_root()?;
        let mut out = Vec::new();
        self.list_dir(&root, "", &mut out)?;
        Ok(out)
    }

    fn list_dir(
        &self,
        dir: &OwnedFd,
        prefix: &str,
        out: &mut Vec<FileEntry>,
    ) -> Result<(), FsError> {
        let rd = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))?;
        let mut names: Vec<(String, std::fs::FileType)> = rd
            .flatten()
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.file_type().ok()?)))
            .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, ft) in names {
            if out.len() >= MAX_LIST || name.starts_with(".kiln-tmp-") {
                continue;
            }
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let Ok(path) = ProjectPath::parse(&rel) else {
                continue;
            };
            if ft.is_dir() {
                out.push(FileEntry {
                    path,
                    size: 0,
                    dir: true,
                });
                if SKIP_DIRS.contains(&name.as_str()) {
                    continue;
                }
                if let Ok(fd) = openat2(
                    dir.as_raw_fd(),
                    name.as_str(),
                    how(OFlag::O_RDONLY | OFlag::O_DIRECTORY),
                ) {
                    self.list_dir(&owned(fd), &rel, out)?;
                }
            } else if ft.is_file() {
                let size = fstatat(
                    Some(dir.as_raw_fd()),
                    name.as_str(),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map(|s| s.st_size as u64)
                .unwrap_or(0);
                out.push(FileEntry {
                    path,
                    size,
                    dir: false,
                });
            }
        }
        Ok(())
    }
}

fn split(path: &ProjectPath) -> (&str, &str) {
    match path.as_str().rsplit_once('/') {
        Some((p, n)) => (p, n),
        None => ("", path.as_str()),
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs() -> (ProjectFs, PathBuf) {
        let mut r = [0u8; 6];
        crate::random_bytes(&mut r).unwrap();
        let d = std::env::temp_dir().join(format!("kiln-files-{}", hex(&r)));
        std::fs::create_dir_all(d.join("p")).unwrap();
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        (
            ProjectFs {
                root: d.join("p"),
                uid,
                gid,
            },
            d,
        )
    }

    fn p(s: &str) -> ProjectPath {
        ProjectPath::parse(s).unwrap()
    }

    #[test]
    fn write_read_list_delete_round_trip() {
        let (fs, d) = fs();
        fs.write(&p("src/a/b.txt"), b"hello").unwrap();
        fs.write(&p("src/a/b.txt"), b"hello again").unwrap();
        assert_eq!(fs.read(&p("src/a/b.txt"), 100).unwrap(), b"hello again");
        assert!(matches!(
            fs.read(&p("src/a/b.txt"), 3),
            Err(FsError::TooLarge)
        ));
        let names: Vec<String> = fs
            .list()
            .unwrap()
            .into_iter()
            .map(|e| e.path.to_string())
            .collect();
        assert_eq!(names, vec!["src", "src/a", "src/a/b.txt"]);
        fs.delete(&p("src")).unwrap();
        assert!(fs.list().unwrap().is_empty());
        assert!(matches!(fs.delete(&p("nope")), Err(FsError::NotFound)));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn prune_removes_what_was_not_written_and_keeps_build_and_cache_dirs() {
        let (fs, d) = fs();
        for f in [
            "index.html",
            "src/App.tsx",
            "src/old/Gone.tsx",
            "stale.txt",
            "node_modules/x/index.js",
            "sub/node_modules/y.js",
            ".vite/deps/a.js",
            "dist/index.html",
            ".kiln-tmp-0123",
        ] {
            fs.write(&p(f), b"x").unwrap();
        }
        let outside = d.join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep-me"), "k").unwrap();
        std::os::unix::fs::symlink(&outside, fs.root.join("src/link")).unwrap();
        std::fs::create_dir_all(fs.root.join("empty/deeper")).unwrap();

        let keep: std::collections::HashSet<&str> = ["index.html", "src/App.tsx"].into();
        // stale.txt, src/old/Gone.tsx, src/link
        assert_eq!(fs.prune(&keep).unwrap(), 3);
        let mut names: Vec<String> = fs
            .list()
            .unwrap()
            .into_iter()
            .map(|e| e.path.to_string())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                ".vite",
                "dist",
                "dist/index.html",
                "index.html",
                "node_modules",
                "src",
                "src/App.tsx",
                "sub",
                "sub/node_modules",
            ]
        );
        assert!(fs.root.join(".kiln-tmp-0123").exists());
        assert!(fs.root.join(".vite/deps/a.js").exists());
        assert!(fs.root.join("sub/node_modules/y.js").exists());
        assert!(!fs.root.join("empty").exists() && !fs.root.join("src/old").exists());
        assert!(outside.join("keep-me").exists(), "the symlink was followed");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn symlinks_planted_in_the_project_are_never_followed() {
        let (fs, d) = fs();
        let outside = d.join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(&outside, fs.root.join("link")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), fs.root.join("file")).unwrap();
        assert!(fs.write(&p("link/x"), b"x").is_err());
        assert!(!outside.join("x").exists());
        assert!(fs.read(&p("link/secret"), 100).is_err());
        assert!(fs.read(&p("file"), 100).is_err());
        fs.delete(&p("link")).unwrap();
        assert!(
            outside.join("secret").exists(),
            "delete removed the link, not the target"
        );
        std::fs::remove_dir_all(d).unwrap();
    }
}
