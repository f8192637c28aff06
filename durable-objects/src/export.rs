//! ZIP export of the working tree or of a version, streamed: one file is compressed and
//! sent at a time, so memory stays at about one file whatever the project's size.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use futures::stream::{self, StreamExt};
use kiln_core::error::ErrorCode;
use kiln_core::path::ProjectPath;
use worker::{Response, Result};

use crate::repo::Blobs;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::room::{error, ProjectRoom};
use crate::store::RoomStore;
use crate::versions;

/// Where the next file's bytes come from.
enum Source {
    Tree(RoomStore),
    Blobs(Blobs),
}

/// A `Write` whose bytes the stream takes after each file.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Zipper {
    zip: Option<ZipWriter<zip::write::StreamWriter<Shared>>>,
    out: Shared,
    files: std::vec::IntoIter<(ProjectPath, String)>,
    source: Source,
}

pub async fn zip(room: &ProjectRoom, project: &str, version: Option<u64>) -> Result<Response> {
    let (files, source, name) = match version {
        None => {
            let files = room
                .store()
                .live_files()?
                .into_iter()
                .map(|f| (f.path, f.sha256))
                .collect::<Vec<_>>();
            (
                files,
                Source::Tree(room.store().clone()),
                "working-tree".to_owned(),
            )
        }
        Some(n) => {
            let Some(manifest) = versions::manifest(room, project, n).await? else {
                return error(ErrorCode::NotFound, "no such version");
            };
            let files = manifest
                .files
                .into_iter()
                .map(|(p, e)| (p, e.sha256))
                .collect();
            (
                files,
                Source::Blobs(versions::blobs(room)?),
                format!("v{n}"),
            )
        }
    };
    let out = Shared::default();
    let state = Zipper {
        zip: Some(ZipWriter::new_stream(out.clone())),
        out,
        files: files.into_iter(),
        source,
    };
    let body = stream::unfold(state, |mut z| async move {
        let step = next_chunk(&mut z).await;
        match step {
            Ok(Some(chunk)) => Some((Ok(chunk), z)),
            Ok(None) => None,
            Err(e) => Some((
                Err(e),
                Zipper {
                    zip: None,
                    files: Vec::new().into_iter(),
                    ..z
                },
            )),
        }
    })
    .boxed_local();
    let mut resp = Response::from_stream(body)?;
    let h = resp.headers_mut();
    h.set("content-type", "application/zip")?;
    h.set(
        "content-disposition",
        &format!("attachment; filename=\"{project}-{name}.zip\""),
    )?;
    Ok(resp)
}

/// Compresses the next file and returns the bytes produced; after the last file, the
/// central directory; then `None`.
async fn next_chunk(z: &mut Zipper) -> Result<Option<Vec<u8>>> {
    let Some(mut zip) = z.zip.take() else {
        return Ok(None);
    };
    match z.files.next() {
        Some((path, sha)) => {
            let bytes = match &z.source {
                Source::Tree(store) => store.content(&path)?.unwrap_or_default(),
                Source::Blobs(blobs) => blobs.blob(&sha).await?,
            };
            let options = SimpleFileOptions::default()
                .compression_method(CompressionMethod::Deflated)
                .unix_permissions(0o644);
            zip.start_file(path.as_str(), options).map_err(zip_err)?;
            zip.write_all(&bytes)
                .map_err(|e| worker::Error::from(e.to_string()))?;
            z.zip = Some(zip);
        }
        None => {
            zip.finish().map_err(zip_err)?;
        }
    }
    Ok(Some(std::mem::take(&mut *z.out.0.borrow_mut())))
}

fn zip_err(e: zip::result::ZipError) -> worker::Error {
    worker::Error::from(format!("zip: {e}"))
}
