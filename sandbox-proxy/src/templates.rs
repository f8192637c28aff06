//! The project templates and their shared `node_modules` layers.
//!
//! A template's files are compiled into the binary. A template with a lockfile gets one
//! `node_modules` per host, installed once with `npm install` (lockfile versions) into `<cache>/layers/<name>-<hash>`
//! (the hash is over package.json and package-lock.json) and mounted read-only at
//! `/work/node_modules` in every sandbox of that template.

use kiln_core::sandbox::Template;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Stdio;

macro_rules! files {
    ($dir:literal: $($f:literal),* $(,)?) => {
        &[$(($f, include_str!(concat!("../templates/", $dir, "/", $f)))),*]
    };
}

const REACT_VITE: &[(&str, &str)] = files!("react-vite":
    "package.json", "package-lock.json", "index.html", "vite.config.ts", "tsconfig.json",
    "postcss.config.js", "tailwind.config.js", "src/main.tsx", "src/App.tsx", "src/index.css",
    "src/vite-env.d.ts", "src/lib/persist.ts",
);
const STATIC: &[(&str, &str)] = files!("static": "index.html", "style.css", "main.js", "store.js");

/// The service's helper scripts, mounted read-only at `/opt/kiln`.
pub const LIB_FILES: &[(&str, &str)] = &[
    (
        "static-server.mjs",
        include_str!("../lib/static-server.mjs"),
    ),
    ("check.mjs", include_str!("../lib/check.mjs")),
];

/// What the helper scripts import (playwright-core for `check.mjs`): one layer per host,
/// mounted read-only at `/opt/kiln/node_modules`.
const TOOLS_PACKAGE: (&str, &str) = (
    include_str!("../lib/package.json"),
    include_str!("../lib/package-lock.json"),
);

pub fn files(t: Template) -> &'static [(&'static str, &'static str)] {
    match t {
        Template::ReactVite => REACT_VITE,
        Template::Static => STATIC,
    }
}

/// Whether npm runs install scripts in this template's sandboxes. Off for every template
/// so far: a package's install scripts are untrusted code, and neither template's
/// dependencies need one (the layers are installed with `--ignore-scripts` too).
pub fn runs_install_scripts(t: Template) -> bool {
    match t {
        Template::ReactVite | Template::Static => false,
    }
}

fn file(t: Template, name: &str) -> Option<&'static str> {
    files(t).iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

fn npm_layer_dir(cache: &Path, name: &str, pkg: &str, lock: &str) -> PathBuf {
    let mut h = Sha256::new();
    h.update(pkg.as_bytes());
    h.update([0]);
    h.update(lock.as_bytes());
    let hash = crate::files::hex(&h.finalize()[..8]);
    cache.join("layers").join(format!("{name}-{hash}"))
}

/// Where the template's layer lives, if it has one.
pub fn layer_dir(cache: &Path, t: Template) -> Option<PathBuf> {
    let (pkg, lock) = (file(t, "package.json")?, file(t, "package-lock.json")?);
    Some(npm_layer_dir(cache, t.as_str(), pkg, lock))
}

/// Installs the layer if it is not there yet; returns its `node_modules`.
pub async fn ensure_layer(cache: &Path, t: Template) -> Result<Option<PathBuf>, String> {
    let (Some(pkg), Some(lock)) = (file(t, "package.json"), file(t, "package-lock.json")) else {
        return Ok(None);
    };
    ensure_npm_layer(cache, t.as_str(), pkg, lock)
        .await
        .map(Some)
}

/// Every layer a host uses (each template's and the tools'), installed where missing; their
/// directories are printed. Run while an image is built (`deploy/oci/Containerfile`).
pub async fn install_all(cache: &Path) -> Result<(), String> {
    for t in [Template::ReactVite, Template::Static] {
        if let Some(nm) = ensure_layer(cache, t).await? {
            println!("{}", nm.display());
        }
    }
    println!("{}", ensure_tools_layer(cache).await?.display());
    Ok(())
}

/// The helper scripts' layer (see [`TOOLS_PACKAGE`]); returns its `node_modules`.
pub async fn ensure_tools_layer(cache: &Path) -> Result<PathBuf, String> {
    ensure_npm_layer(cache, "tools", TOOLS_PACKAGE.0, TOOLS_PACKAGE.1).await
}

async fn ensure_npm_layer(
    cache: &Path,
    name: &str,
    pkg: &str,
    lock: &str,
) -> Result<PathBuf, String> {
    let dir = npm_layer_dir(cache, name, pkg, lock);
    let nm = dir.join("node_modules");
    remove_stale_installs(&dir).await;
    if nm.join(".package-lock.json").exists() {
        // Early layers had an empty root-owned `.vite-temp`, which hides the overlay's own.
        let _ = std::fs::remove_dir(nm.join(".vite-temp"));
        return Ok(nm);
    }
    let tmp = dir.with_extension(format!("tmp{}", std::process::id()));
    tokio::fs::create_dir_all(&tmp)
        .await
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    for (file, content) in [("package.json", pkg), ("package-lock.json", lock)] {
        tokio::fs::write(tmp.join(file), content)
            .await
            .map_err(|e| e.to_string())?;
    }
    eprintln!("sandbox-proxy: installing the {name} layer (once per host)");
    // Install scripts are not run: the layer is data, mounted read-only. Not `npm ci`: the
    // registry mirror has no other platforms' optional packages, so a lockfile made here is
    // "out of sync" for `npm ci`; `npm install` with the lockfile keeps its versions.
    let out = tokio::process::Command::new("npm")
        .args([
            "install",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--no-save",
            "--loglevel=error",
        ])
        .current_dir(&tmp)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("npm: {e}"))?;
    if !out.status.success() {
        let _ = tokio::fs::remove_dir_all(&tmp).await;
        return Err(format!(
            "npm install for the {name} layer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if nm.join(".package-lock.json").exists() {
        // Another service on this host finished first; its layer may be in use.
        let _ = tokio::fs::remove_dir_all(&tmp).await;
        return Ok(nm);
    }
    let _ = tokio::fs::remove_dir_all(&dir).await; // an incomplete one
    tokio::fs::rename(&tmp, &dir)
        .await
        .map_err(|e| e.to_string())?;
    Ok(nm)
}

/// Removes `<layer>.tmp<pid>` dirs of installs interrupted by a stop or crash; another live
/// service's install in progress is left alone.
async fn remove_stale_installs(dir: &Path) {
    let (Some(parent), Some(stem)) = (dir.parent(), dir.file_name()) else {
        return;
    };
    let stem = format!("{}.tmp", stem.to_string_lossy());
    let Ok(rd) = std::fs::read_dir(parent) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(&stem) else {
            continue;
        };
        let alive = pid != std::process::id().to_string() && Path::new("/proc").join(pid).exists();
        if !alive {
            let _ = tokio::fs::remove_dir_all(e.path()).await;
        }
    }
}

/// Mounts a project's writable view of a layer: overlayfs with the shared layer as the
/// read-only lower dir and `<rw>/upper` (owned by the sandbox user, on the project's disk
/// image, so its size counts against the project's quota) on top, at `merged`. A dependency
/// the project adds lands in its upper dir; the layer never changes.
pub fn mount_overlay(lower: &Path, rw: &Path, merged: &Path) -> std::io::Result<PathBuf> {
    let (upper, work, merged) = (rw.join("upper"), rw.join("work"), merged.to_path_buf());
    for d in [&upper, &work, &merged] {
        std::fs::create_dir_all(d)?;
    }
    unmount(&merged); // a leftover of a crash
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    let merged_s = merged.to_string_lossy().into_owned();
    let out = std::process::Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts, &merged_s])
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "mount overlay: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(merged)
}

/// Unmounts `path` if something is mounted there (lazily if it is still busy).
pub fn unmount(path: &Path) {
    let p = path.to_string_lossy().into_owned();
    let mounted = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .any(|l| l.split_whitespace().nth(4) == Some(p.as_str()))
    };
    // A sandbox's mount namespace is released a moment after its last process is killed;
    // until then the mount is busy. Waiting that out keeps a lazy unmount (and a loop device
    // that outlives the call) for what really stays busy.
    for _ in 0..40 {
        if !mounted() {
            return;
        }
        let ok = std::process::Command::new("umount")
            .arg(&p)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    if mounted() {
        let _ = std::process::Command::new("umount")
            .args(["-l", &p])
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_carry_their_files_and_layer_keys() {
        assert!(file(Template::ReactVite, "src/App.tsx").is_some());
        assert!(file(Template::Static, "index.html").is_some());
        let a = layer_dir(Path::new("/c"), Template::ReactVite).unwrap();
        assert!(a.starts_with("/c/layers"));
        assert!(a.to_string_lossy().contains("react-vite-"));
        assert!(layer_dir(Path::new("/c"), Template::Static).is_none());
        assert!(!runs_install_scripts(Template::ReactVite));
        assert!(!runs_install_scripts(Template::Static));
    }
}
