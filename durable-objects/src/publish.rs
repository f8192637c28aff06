//! Publishing (core::sites): the room builds one version in the project's sandbox, apart
//! from the working tree the dev server serves, uploads the output to R2 content-addressed
//! (each blob once, shared with versions' `blobs/<sha256>`), writes the site's manifest and
//! switches the `sites` row to it in one UPDATE. The build's output streams to the room like
//! any command. The job runs beside the generation (not in its alarm), so a publish never
//! waits for a model call; it is kept in the room's meta until it ends, so a room that was
//! evicted mid-build runs it again (every step is idempotent, and the switch is guarded by
//! the job's id, so a superseded or cancelled job changes nothing).

use std::collections::BTreeMap;

use kiln_core::path::ProjectPath;
use kiln_core::protocol::ServerEvent;
use kiln_core::sandbox::{ExecRequest, FileEncoding, FileWrite, Template, WriteFiles};
use kiln_core::sites::{
    build_dir, site_url, PublishJob, PublishState, Site, SiteFile, SiteManifest, SitesDomain, Slug,
    OUT_DIR,
};
use kiln_core::tree::{blob_key, sha256_hex};
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{D1Database, Result};

use crate::generation::host::sandbox_client;
use crate::room::{encode, now, ProjectRoom};
use crate::versions;

/// The room's meta key of the job that is running (JSON `PublishJob`).
const JOB_KEY: &str = "publish_job";
/// A built site at most this big, in files and bytes (a static site, not a media library).
const MAX_FILES: usize = 2_000;
const MAX_BYTES: u64 = 50 * 1024 * 1024;
const BUILD_TIMEOUT_MS: u64 = 180_000;

pub const DEFAULT_SITES_URL: &str = "http://sites.localhost:8787";

/// The sites domain the deployment is configured with (`KILN_SITES_URL`).
pub fn sites_domain(env: &worker::Env) -> std::result::Result<SitesDomain, String> {
    let url = env
        .var("KILN_SITES_URL")
        .map(|v| v.to_string())
        .unwrap_or_else(|_| DEFAULT_SITES_URL.to_owned());
    SitesDomain::parse(&url).map_err(|e| format!("KILN_SITES_URL: {e}"))
}

/// The R2 key of a site's manifest.
pub fn manifest_key(project: &str, job: &str) -> String {
    format!("sites/{project}/{job}.json")
}

/// Starts `job` beside whatever else the room does; returns at once. A job with the id of
/// the one already running is not started twice.
pub fn start(room: &ProjectRoom, project: &str, job: PublishJob) -> Result<()> {
    let stored = room.store().meta(JOB_KEY)?;
    let running = stored
        .as_deref()
        .and_then(|s| serde_json::from_str::<PublishJob>(s).ok())
        .is_some_and(|j| j.id == job.id)
        && room.publishing();
    if running {
        return Ok(());
    }
    room.store()
        .set_meta(JOB_KEY, &serde_json::to_string(&job)?)?;
    let view = room.view();
    let project = project.to_owned();
    room.set_publishing(true);
    room.state().wait_until(async move {
        if let Err(e) = run(&view, &project, &job).await {
            worker::console_error!("publishing {project} ({}): {e}", job.id);
        }
        view.set_publishing(false);
    });
    Ok(())
}

/// A job left by a room that stopped mid-build is run again.
pub fn resume(room: &ProjectRoom, project: &str) -> Result<()> {
    if room.publishing() {
        return Ok(());
    }
    let Some(job) = room
        .store()
        .meta(JOB_KEY)?
        .and_then(|s| serde_json::from_str::<PublishJob>(&s).ok())
    else {
        return Ok(());
    };
    start(room, project, job)
}

async fn run(room: &ProjectRoom, project: &str, job: &PublishJob) -> Result<()> {
    let db = room.env().d1("DB")?;
    let sites = Sites(&db);
    let built = build(room, project, job).await;
    let switched = match built {
        Ok(manifest) => {
            let key = manifest_key(project, &job.id);
            let json = serde_json::to_vec(&manifest)?;
            versions::blobs(room)?.put(&key, json).await?;
            sites
                .go_live(project, &job.id, &key, job.version, &job.by, now())
                .await?
        }
        Err(why) => {
            room.broadcast(ServerEvent::CommandOutput {
                command: "publish".into(),
                output: format!("publishing v{} failed: {why}\n", job.version),
            })?;
            sites.fail(project, &job.id, &why, now()).await?
        }
    };
    if switched {
        if let Some(site) = sites.get(project, &sites_domain(room.env())?).await? {
            room.broadcast(ServerEvent::Site { site })?;
        }
    }
    // Only this job's own record: a newer one may have been stored meanwhile.
    let still_ours = room
        .store()
        .meta(JOB_KEY)?
        .and_then(|s| serde_json::from_str::<PublishJob>(&s).ok())
        .is_some_and(|j| j.id == job.id);
    if still_ours {
        room.store().set_meta_opt(JOB_KEY, None)?;
    }
    Ok(())
}

/// Builds the job's version; the manifest of what it made, or why it could not.
async fn build(
    room: &ProjectRoom,
    project: &str,
    job: &PublishJob,
) -> std::result::Result<SiteManifest, String> {
    let text = |e: worker::Error| e.to_string();
    let source = versions::manifest(room, project, job.version)
        .await
        .map_err(text)?
        .ok_or_else(|| format!("version {} does not exist", job.version))?;
    let say = |line: String| {
        let _ = room.broadcast(ServerEvent::CommandOutput {
            command: "publish".into(),
            output: line,
        });
    };
    say(format!("publishing v{} as {}\n", job.version, job.slug));
    let mut files = BTreeMap::new();
    if !source.files.keys().any(|p| p.as_str() == "package.json") {
        // A static project is served as it is: its blobs are in R2 already.
        for (path, entry) in source.files {
            if path.as_str().starts_with(".kiln/") {
                continue;
            }
            files.insert(
                path.as_str().to_owned(),
                SiteFile {
                    sha256: entry.sha256,
                    size: entry.size,
                },
            );
        }
    } else {
        files = vite_build(room, project, job, source, &say).await?;
    }
    if !files.contains_key("index.html") {
        return Err("the site has no index.html".into());
    }
    say(format!("{} files ready\n", files.len()));
    Ok(SiteManifest {
        project_id: project.to_owned(),
        version: job.version,
        built_at: now(),
        files,
    })
}

async fn vite_build(
    room: &ProjectRoom,
    project: &str,
    job: &PublishJob,
    source: kiln_core::tree::Manifest,
    say: &impl Fn(String),
) -> std::result::Result<BTreeMap<String, SiteFile>, String> {
    let text = |e: worker::Error| e.to_string();
    let sb = |e: kiln_core::sandbox::SandboxError| e.message;
    let sandbox = sandbox_client(room, project).await.map_err(sb)?;
    sandbox.ensure(Template::ReactVite).await.map_err(sb)?;
    let dir = build_dir(&job.id);
    let under = |p: &str| ProjectPath::parse(&format!("{dir}/{p}")).map_err(|e| e.to_string());
    let blobs = versions::blobs(room).map_err(text)?;
    let mut writes = Vec::new();
    for (path, entry) in &source.files {
        let bytes = versions::blob(room, &entry.sha256).await.map_err(text)?;
        let (content, enc) = encode(bytes);
        writes.push(FileWrite {
            path: under(path.as_str())?,
            content,
            encoding: if enc.is_utf8() {
                FileEncoding::Utf8
            } else {
                FileEncoding::Base64
            },
        });
    }
    sandbox
        .write_files(WriteFiles { files: writes })
        .await
        .map_err(sb)?;
    say("vite build\n".into());
    let exec = ExecRequest {
        cmd: "node".into(),
        args: [
            "/work/node_modules/vite/bin/vite.js",
            "build",
            "--outDir",
            OUT_DIR,
            "--emptyOutDir",
            "--logLevel",
            "warn",
        ]
        .map(String::from)
        .to_vec(),
        cwd: Some(ProjectPath::parse(&dir).map_err(|e| e.to_string())?),
        timeout_ms: Some(BUILD_TIMEOUT_MS),
        env: Default::default(),
    };
    let result = sandbox
        .exec(&exec, |out| say(out.to_owned()))
        .await
        .map_err(sb)?;
    let outcome = if result.timed_out {
        Err(format!(
            "the build took longer than {} s",
            BUILD_TIMEOUT_MS / 1000
        ))
    } else if result.oom_killed {
        Err("the build ran out of memory".to_owned())
    } else if result.exit_code != Some(0) {
        let tail: Vec<&str> = result.output.lines().rev().take(12).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(format!(
            "vite build exited with {}:\n{}",
            result.exit_code.map_or("no code".into(), |c| c.to_string()),
            tail.join("\n")
        ))
    } else {
        upload_output(&sandbox, &blobs, &dir).await
    };
    // The build's tree is the sandbox's litter either way.
    let clean = ExecRequest {
        cmd: "rm".into(),
        args: vec!["-rf".into(), dir.clone()],
        cwd: None,
        timeout_ms: Some(30_000),
        env: Default::default(),
    };
    if let Err(e) = sandbox.exec(&clean, |_| {}).await {
        worker::console_warn!("removing {dir} from {project}'s sandbox: {}", e.message);
    }
    outcome
}

/// Every file of the build's output into R2 (those not there yet), as the site's paths.
async fn upload_output(
    sandbox: &crate::sandbox_client::SandboxClient,
    blobs: &crate::repo::Blobs,
    dir: &str,
) -> std::result::Result<BTreeMap<String, SiteFile>, String> {
    let prefix = format!("{dir}/{OUT_DIR}/");
    let listed = sandbox.list_files().await.map_err(|e| e.message)?;
    let out: Vec<_> = listed
        .into_iter()
        .filter(|f| f.path.as_str().starts_with(&prefix))
        .collect();
    if out.len() > MAX_FILES {
        return Err(format!(
            "the build made {} files; a site holds at most {MAX_FILES}",
            out.len()
        ));
    }
    let total: u64 = out.iter().map(|f| f.size).sum();
    if total > MAX_BYTES {
        return Err(format!(
            "the build made {total} bytes; a site holds at most {MAX_BYTES}"
        ));
    }
    let mut files = BTreeMap::new();
    for f in out {
        let bytes = sandbox.read_file(&f.path).await.map_err(|e| e.message)?;
        let sha = sha256_hex(&bytes);
        let size = bytes.len() as u64;
        let present = blobs
            .0
            .head(blob_key(&sha))
            .await
            .map_err(|e| e.to_string())?
            .is_some();
        if !present {
            blobs
                .put_blob(&sha, bytes)
                .await
                .map_err(|e| e.to_string())?;
        }
        let path = f.path.as_str()[prefix.len()..].to_owned();
        files.insert(path, SiteFile { sha256: sha, size });
    }
    Ok(files)
}

/// The `sites` table: which slug each project's site has and which manifest is live.
pub struct Sites<'a>(pub &'a D1Database);

#[derive(Deserialize)]
pub struct SiteRow {
    pub project_id: String,
    pub slug: String,
    pub state: String,
    pub manifest_key: Option<String>,
    pub previous_key: Option<String>,
    pub version: Option<i64>,
    pub job_id: Option<String>,
    pub building_version: Option<i64>,
    pub error: Option<String>,
    pub published_at: Option<i64>,
    pub updated_at: i64,
}

impl SiteRow {
    pub fn site(self, domain: &SitesDomain) -> Option<Site> {
        let slug = Slug::parse(&self.slug).ok()?;
        Some(Site {
            url: site_url(domain, &slug),
            slug,
            state: PublishState::parse(&self.state)?,
            version: self.version.map(|v| v as u64),
            building_version: self.building_version.map(|v| v as u64),
            published_at: self.published_at,
            error: self.error,
        })
    }
}

const COLUMNS: &str = "project_id, slug, state, manifest_key, previous_key, version, job_id, \
                       building_version, error, published_at, updated_at";

fn int(v: i64) -> JsValue {
    JsValue::from_f64(v as f64)
}

/// Whether a guarded write changed a row.
fn changed(res: &worker::D1Result) -> Result<bool> {
    Ok(res.meta()?.and_then(|m| m.changes).unwrap_or(0) > 0)
}

/// Why a slug could not be had.
pub struct SlugTaken;

impl Sites<'_> {
    pub async fn row(&self, project: &str) -> Result<Option<SiteRow>> {
        self.0
            .prepare(format!("SELECT {COLUMNS} FROM sites WHERE project_id = ?1"))
            .bind(&[project.into()])?
            .first(None)
            .await
    }

    pub async fn get(&self, project: &str, domain: &SitesDomain) -> Result<Option<Site>> {
        Ok(self.row(project).await?.and_then(|r| r.site(domain)))
    }

    pub async fn by_slug(&self, slug: &Slug) -> Result<Option<SiteRow>> {
        self.0
            .prepare(format!("SELECT {COLUMNS} FROM sites WHERE slug = ?1"))
            .bind(&[slug.as_str().into()])?
            .first(None)
            .await
    }

    /// Records a new build of `project` under `slug` (taking the slug, or keeping it). What
    /// is live stays live until the build switches it.
    pub async fn begin(
        &self,
        project: &str,
        slug: &Slug,
        job: &str,
        version: u64,
        now: i64,
    ) -> Result<std::result::Result<(), SlugTaken>> {
        let res = self
            .0
            .prepare(
                "INSERT INTO sites (project_id, slug, state, job_id, building_version, updated_at) \
                 VALUES (?1, ?2, 'building', ?3, ?4, ?5) \
                 ON CONFLICT (project_id) DO UPDATE SET slug = excluded.slug, state = 'building', \
                 job_id = excluded.job_id, building_version = excluded.building_version, \
                 error = NULL, updated_at = excluded.updated_at",
            )
            .bind(&[
                project.into(),
                slug.as_str().into(),
                job.into(),
                int(version as i64),
                int(now),
            ])?
            .run()
            .await;
        match res {
            Ok(_) => Ok(Ok(())),
            Err(e) if e.to_string().contains("UNIQUE constraint failed") => Ok(Err(SlugTaken)),
            Err(e) => Err(e),
        }
    }

    /// Makes `key` the live manifest, if `job` is still the project's build; the last live
    /// one becomes the previous (its hashed assets stay reachable a while).
    pub async fn go_live(
        &self,
        project: &str,
        job: &str,
        key: &str,
        version: u64,
        by: &str,
        now: i64,
    ) -> Result<bool> {
        let res = self
            .0
            .prepare(
                "UPDATE sites SET previous_key = manifest_key, manifest_key = ?3, version = ?4, \
                 state = 'live', published_at = ?5, published_by = ?6, building_version = NULL, \
                 error = NULL, updated_at = ?5 WHERE project_id = ?1 AND job_id = ?2",
            )
            .bind(&[
                project.into(),
                job.into(),
                key.into(),
                int(version as i64),
                int(now),
                by.into(),
            ])?
            .run()
            .await?;
        changed(&res)
    }

    /// The build failed: what was live stays live.
    pub async fn fail(&self, project: &str, job: &str, why: &str, now: i64) -> Result<bool> {
        let res = self
            .0
            .prepare(
                "UPDATE sites SET state = 'failed', error = ?3, building_version = NULL, \
                 updated_at = ?4 WHERE project_id = ?1 AND job_id = ?2",
            )
            .bind(&[project.into(), job.into(), why.into(), int(now)])?
            .run()
            .await?;
        changed(&res)
    }

    /// Nothing is served any more; the slug stays the project's, and a build under way
    /// changes nothing when it ends.
    pub async fn unpublish(&self, project: &str, now: i64) -> Result<bool> {
        let res = self
            .0
            .prepare(
                "UPDATE sites SET state = 'unpublished', manifest_key = NULL, previous_key = NULL, \
                 version = NULL, job_id = NULL, building_version = NULL, error = NULL, \
                 updated_at = ?2 WHERE project_id = ?1",
            )
            .bind(&[project.into(), int(now)])?
            .run()
            .await?;
        changed(&res)
    }
}
