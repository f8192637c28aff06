//! Versions: immutable snapshots of the working tree. Each file's bytes go once to R2 at
//! `blobs/<sha256>`; the manifest `{path → sha256}` to `manifests/<sha256>`; a row to D1
//! `versions`, whose number is allocated inside the INSERT (one statement, no race).

use std::collections::HashMap;

use kiln_core::error::ErrorCode;
use kiln_core::protocol::{ServerEvent, VersionInfo};
use kiln_core::tree::{blob_key, manifest_key, sha256_hex, Manifest, ManifestEntry};
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{Response, Result};

use crate::room::{error, now, ProjectRoom};

#[derive(Deserialize)]
struct NumberRow {
    number: i64,
    parent: Option<i64>,
}

#[derive(Deserialize)]
struct ManifestRow {
    manifest_key: String,
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
    let manifest_json = serde_json::to_vec(&manifest)?;
    let key = manifest_key(&sha256_hex(&manifest_json));

    let bucket = room.env().bucket("ARTIFACTS")?;
    for (sha, bytes) in uploads {
        bucket.put(blob_key(&sha), bytes).execute().await?;
        store.mark_blob_uploaded(&sha)?;
    }
    bucket.put(&key, manifest_json).execute().await?;

    let created_at = now();
    let file_count = manifest.files.len() as u64;
    let size = manifest.size();
    let db = room.env().d1("DB")?;
    let row: Option<NumberRow> = db
        .prepare(
            "INSERT INTO versions (project_id, number, message, author, parent, manifest_key, \
             file_count, size, created_at) \
             SELECT ?1, COALESCE(MAX(number), 0) + 1, ?2, ?3, MAX(number), ?4, ?5, ?6, ?7 \
             FROM versions WHERE project_id = ?1 RETURNING number, parent",
        )
        .bind(&[
            project.into(),
            message.into(),
            author.into(),
            key.as_str().into(),
            JsValue::from_f64(file_count as f64),
            JsValue::from_f64(size as f64),
            JsValue::from_f64(created_at as f64),
        ])?
        .first(None)
        .await?;
    let row = row.ok_or_else(|| worker::Error::from("versions insert returned no row"))?;
    let version = VersionInfo {
        number: row.number as u64,
        message: message.to_owned(),
        author: author.to_owned(),
        parent: row.parent.map(|p| p as u64),
        file_count,
        size,
        created_at,
    };
    room.broadcast(ServerEvent::VersionCreated {
        version: version.clone(),
    })?;
    Ok(version)
}

/// Loads a version's manifest; `None` if the project has no such version.
pub async fn manifest(room: &ProjectRoom, project: &str, number: u64) -> Result<Option<Manifest>> {
    let row: Option<ManifestRow> = room
        .env()
        .d1("DB")?
        .prepare("SELECT manifest_key FROM versions WHERE project_id = ?1 AND number = ?2")
        .bind(&[project.into(), JsValue::from_f64(number as f64)])?
        .first(None)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let object = room
        .env()
        .bucket("ARTIFACTS")?
        .get(&row.manifest_key)
        .execute()
        .await?
        .ok_or_else(|| worker::Error::from(format!("manifest {} missing", row.manifest_key)))?;
    let bytes = object
        .body()
        .ok_or_else(|| worker::Error::from("manifest without body"))?
        .bytes()
        .await?;
    Ok(Some(serde_json::from_slice(&bytes)?))
}

/// A blob's bytes: from the working tree if a live file has them, else from R2.
pub async fn blob(room: &ProjectRoom, sha256: &str) -> Result<Vec<u8>> {
    if let Some(bytes) = room.store().content_by_sha(sha256)? {
        return Ok(bytes);
    }
    let object = room
        .env()
        .bucket("ARTIFACTS")?
        .get(blob_key(sha256))
        .execute()
        .await?
        .ok_or_else(|| worker::Error::from(format!("blob {sha256} missing")))?;
    object
        .body()
        .ok_or_else(|| worker::Error::from("blob without body"))?
        .bytes()
        .await
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
