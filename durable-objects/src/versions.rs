//! Versions: immutable snapshots of the working tree. Each file's bytes go once to R2 at
//! `blobs/<sha256>`; the manifest `{path → sha256}` to `manifests/<sha256>`; a row to D1
//! `versions` (the SQL and the keys are in `repo`).

use std::collections::HashMap;

use kiln_core::error::ErrorCode;
use kiln_core::protocol::{ServerEvent, VersionInfo};
use kiln_core::tree::{Manifest, ManifestEntry};
use worker::{Response, Result};

use crate::repo::{Blobs, NewVersion, Versions};
use crate::room::{error, now, ProjectRoom};

pub fn blobs(room: &ProjectRoom) -> Result<Blobs> {
    Ok(Blobs(room.env().bucket("ARTIFACTS")?))
}

/// Snapshots the working tree as the next version and announces it to every client.
pub async fn create(
    room: &ProjectRoom,
    project: &str,
    author: &str,
    message: &str,
) -> Result<VersionInfo> {
    let store = room.store();
    // Everything is read before the first await, so the snapshot is one consistent moment
    // even if edits land while blobs upload.
    let files = store.live_files()?;
    let mut manifest = Manifest::default();
    let mut uploads: HashMap<String, Vec<u8>> = HashMap::new();
    for f in files {
        if !uploads.contains_key(&f.sha256) && !store.blob_uploaded(&f.sha256)? {
            if let Some(bytes) = store.content(&f.path)? {
                uploads.insert(f.sha256.clone(), bytes);
            }
        }
        manifest.files.insert(
            f.path,
            ManifestEntry {
                sha256: f.sha256,
                size: f.size,
            },
        );
    }
    let blobs = blobs(room)?;
    for (sha, bytes) in uploads {
        blobs.put_blob(&sha, bytes).await?;
        store.mark_blob_uploaded(&sha)?;
    }
    let key = blobs.put_manifest(&manifest).await?;
    let db = room.env().d1("DB")?;
    let version = Versions(&db)
        .insert_next(&NewVersion {
            project,
            message,
            author,
            manifest_key: &key,
            file_count: manifest.files.len() as u64,
            size: manifest.size(),
            created_at: now(),
        })
        .await?;
    room.broadcast(ServerEvent::VersionCreated {
        version: version.clone(),
    })?;
    Ok(version)
}

/// Loads a version's manifest; `None` if the project has no such version.
pub async fn manifest(room: &ProjectRoom, project: &str, number: u64) -> Result<Option<Manifest>> {
    let db = room.env().d1("DB")?;
    let Some((_, key)) = Versions(&db).get(project, number).await? else {
        return Ok(None);
    };
    Ok(Some(blobs(room)?.manifest(&key).await?))
}

/// A blob's bytes: from the working tree if a live file has them, else from R2.
pub async fn blob(room: &ProjectRoom, sha256: &str) -> Result<Vec<u8>> {
    if let Some(bytes) = room.store().content_by_sha(sha256)? {
        return Ok(bytes);
    }
    blobs(room)?.blob(sha256).await
}

/// Makes the working tree equal to version `number` (every client sees each change as an
/// event), then records that as a new version. Versions themselves never change.
pub async fn restore(
    room: &ProjectRoom,
    project: &str,
    author: &str,
    number: u64,
) -> Result<std::result::Result<VersionInfo, Response>> {
    let Some(target) = manifest(room, project, number).await? else {
        return Ok(Err(error(ErrorCode::NotFound, "no such version")?));
    };
    // Fetch every blob first; then apply all changes with no await in between, so the
    // restore lands as one step.
    let mut bytes: HashMap<&str, Vec<u8>> = HashMap::new();
    for entry in target.files.values() {
        if !bytes.contains_key(entry.sha256.as_str()) {
            bytes.insert(&entry.sha256, blob(room, &entry.sha256).await?);
        }
    }
    let store = room.store();
    let current: HashMap<_, _> = store
        .live_files()?
        .into_iter()
        .map(|f| (f.path, (f.rev, f.sha256)))
        .collect();
    for (path, (rev, _)) in &current {
        if !target.files.contains_key(path) {
            room.apply_delete(author, path, rev + 1)?;
        }
    }
    for (path, entry) in &target.files {
        if current
            .get(path)
            .is_some_and(|(_, sha)| *sha == entry.sha256)
        {
            continue;
        }
        let rev = store.slot(path)?.rev + 1;
        room.apply_write(author, path, rev, &bytes[entry.sha256.as_str()])?;
    }
    let version = create(room, project, author, &format!("Restore version {number}")).await?;
    Ok(Ok(version))
}
