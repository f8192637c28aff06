//! Each project's disk quota: a sparse ext4 image, loop-mounted, that holds everything a
//! sandbox can write on disk (its files and the upper dir of its `node_modules` overlay).
//! When the image is full, writes fail with ENOSPC inside the sandbox and in the file API,
//! and the host's filesystem loses at most the image's size.
//!
//! Layout: `<state>/disks/<id>.img`, mounted at `<state>/disks/<id>/` with
//! `project/` (the sandbox's `/work`) and `overlay/{upper,work}` on it. The image is the
//! project's storage: it is kept while the project exists (unmounted when the sandbox
//! stops) and removed when the project is deleted.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone)]
pub struct Disk {
    pub image: PathBuf,
    pub mount: PathBuf,
}

impl Disk {
    pub fn new(state_dir: &Path, id: &str) -> Disk {
        let dir = disks_dir(state_dir);
        Disk {
            image: dir.join(format!("{id}.img")),
            mount: dir.join(id),
        }
    }

    /// The sandbox's `/work`.
    pub fn project(&self) -> PathBuf {
        self.mount.join("project")
    }

    /// The overlay's upper and work dirs (they must share a filesystem).
    pub fn overlay(&self) -> PathBuf {
        self.mount.join("overlay")
    }

    pub fn is_mounted(&self) -> bool {
        is_mount_point(&self.mount)
    }

    /// Creates the image if there is none (`bytes` large, sparse) and mounts it; the project
    /// and overlay dirs are made owned by the sandbox user. `legacy_project` and
    /// `legacy_upper` are where a project's files and overlay upper dir lived before disk
    /// images: they are moved onto a new image once. `true` if this call made the image and
    /// the project has no files yet (the caller seeds it).
    pub fn ensure(
        &self,
        bytes: u64,
        uid: u32,
        gid: u32,
        legacy_project: &Path,
        legacy_upper: &Path,
    ) -> io::Result<bool> {
        if self.is_mounted() {
            return Ok(false);
        }
        let made = !self.image.exists();
        if made {
            make_image(&self.image, bytes)?;
        }
        std::fs::create_dir_all(&self.mount)?;
        let (image, mount) = (path_str(&self.image)?, path_str(&self.mount)?);
        // nosuid/nodev: nothing the sandbox writes there gains privileges on the host.
        run(Command::new("mount").args([
            "-t",
            "ext4",
            "-o",
            "loop,nosuid,nodev,noatime",
            image,
            mount,
        ]))?;
        // Only after the mount: created before it, these would land on the host's disk.
        let owner = (
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        );
        let (project, upper, work) = (
            self.project(),
            self.overlay().join("upper"),
            self.overlay().join("work"),
        );
        for d in [&project, &upper, &work] {
            std::fs::create_dir_all(d)?;
        }
        nix::unistd::chown(&project, owner.0, owner.1)?;
        nix::unistd::chown(&upper, owner.0, owner.1)?;
        if !made {
            return Ok(false);
        }
        if legacy_upper.is_dir() {
            migrate(legacy_upper, &upper)?;
        }
        if legacy_project.is_dir() {
            migrate(legacy_project, &project)?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Unmounts the image (lazily if something still holds it); the image stays.
    pub fn unmount(&self) {
        crate::templates::unmount(&self.mount);
    }

    /// Unmounts and removes the image and its mount point.
    pub async fn remove(&self) -> io::Result<()> {
        let this = self.clone();
        let _ = tokio::task::spawn_blocking(move || this.unmount()).await;
        // The loop device goes when the kernel drops the filesystem's last reference, which
        // may come a moment after the unmount: wait for it so a delete leaves nothing behind.
        for _ in 0..80 {
            if loops_of(&self.image).is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        for dev in loops_of(&self.image) {
            let _ = Command::new("losetup").args(["-d", &dev]).status();
        }
        match tokio::fs::remove_file(&self.image).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if !self.is_mounted() {
            let _ = tokio::fs::remove_dir_all(&self.mount).await;
        }
        Ok(())
    }
}

pub fn disks_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("disks")
}

fn path_str(p: &Path) -> io::Result<&str> {
    p.to_str()
        .ok_or_else(|| io::Error::other(format!("{} is not UTF-8", p.display())))
}

fn run(cmd: &mut Command) -> io::Result<()> {
    let out = cmd.output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{:?}: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// A sparse file formatted as ext4, made under a temporary name so a crash never leaves a
/// half-made image behind under the real one.
fn make_image(image: &Path, bytes: u64) -> io::Result<()> {
    let tmp = image.with_extension("img.tmp");
    if let Some(dir) = image.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let f = std::fs::File::create(&tmp)?;
    f.set_len(bytes)?;
    drop(f);
    // -m 0: no blocks reserved for root (the service writes as root: its writes get the same
    // limit). Lazy init keeps the journal and inode tables sparse until used. One inode per
    // 8 KiB: node_modules is many small files.
    let r = run(Command::new("mkfs.ext4").args([
        "-q",
        "-F",
        "-m",
        "0",
        "-i",
        "8192",
        "-E",
        "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
        path_str(&tmp)?,
    ]))
    .and_then(|()| std::fs::rename(&tmp, image));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// Moves a pre-image project directory's files onto the image (`cp -a` keeps owners and
/// modes, and copies symlinks as symlinks).
fn migrate(legacy: &Path, project: &Path) -> io::Result<()> {
    let src = format!("{}/.", path_str(legacy)?);
    run(Command::new("cp").args(["-a", "--", &src, path_str(project)?]))?;
    std::fs::remove_dir_all(legacy)
}

fn is_mount_point(p: &Path) -> bool {
    let Some(p) = p.to_str() else { return false };
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(4) == Some(p))
}

/// Start-up cleanup: half-made images, and images whose project is gone (a crash during a
/// delete). `known` says whether a project id still exists. Returns how many it removed.
pub fn remove_orphans(state_dir: &Path, known: impl Fn(&str) -> bool) -> usize {
    let Ok(rd) = std::fs::read_dir(disks_dir(state_dir)) else {
        return 0;
    };
    let mut n = 0;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let orphan = if name.ends_with(".img.tmp") {
            true
        } else if let Some(id) = name.strip_suffix(".img") {
            !known(id)
        } else {
            false
        };
        if orphan && std::fs::remove_file(e.path()).is_ok() {
            n += 1;
        }
    }
    n
}

/// The loop devices backed by `image` (`losetup -j`).
fn loops_of(image: &Path) -> Vec<String> {
    let Ok(out) = Command::new("losetup").arg("-j").arg(image).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(':').map(|(dev, _)| dev.to_string()))
        .collect()
}

/// Loop devices still attached to an image under `dir` (their mount was lazily unmounted
/// while busy, or a crash came between attach and mount), detached. Returns how many.
pub fn detach_loops_under(dir: &Path) -> usize {
    let Ok(out) = Command::new("losetup").arg("-a").output() else {
        return 0;
    };
    let prefix = dir.to_string_lossy().into_owned();
    let mut n = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // `/dev/loop0: [65024]:123 (/path/to/file)`
        let Some((dev, rest)) = line.split_once(':') else {
            continue;
        };
        let backing = rest.rsplit_once('(').map(|(_, b)| b.trim_end_matches(')'));
        if backing.is_some_and(|b| b.starts_with(&prefix))
            && Command::new("losetup")
                .args(["-d", dev])
                .status()
                .is_ok_and(|s| s.success())
        {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphaned_and_half_made_images_are_found() {
        let mut r = [0u8; 6];
        crate::random_bytes(&mut r).unwrap();
        let state = std::env::temp_dir().join(format!("kiln-disk-{}", crate::files::hex(&r)));
        let d = disks_dir(&state);
        std::fs::create_dir_all(d.join("kept")).unwrap();
        for f in ["kept.img", "gone.img", "new.img.tmp"] {
            std::fs::write(d.join(f), "").unwrap();
        }
        assert_eq!(remove_orphans(&state, |id| id == "kept"), 2);
        assert!(d.join("kept.img").exists());
        assert!(!d.join("gone.img").exists() && !d.join("new.img.tmp").exists());
        std::fs::remove_dir_all(state).unwrap();
    }
}
