//! The room's client of the sandbox-proxy (invariant 7): every call carries a JWT the room
//! mints for its own project only, valid for two minutes. Which host: `crate::fleet` (a
//! fixed `KILN_SANDBOX_URL`, or the project's placement); the secret `KILN_SANDBOX_JWT_SECRET`
//! (HS256) is shared with every proxy.

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header, TimeOptions};
use kiln_core::path::ProjectPath;
use kiln_core::sandbox::{
    CreateSandbox, DevServerAction, DevServerRequest, DevServerStatus, ExecFrame, ExecRequest,
    FileEntry, SandboxClaims, SandboxInfo, Template, WriteFilesRequest,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::JsValue;
use worker::{Fetch, Headers, Method, Request, RequestInit, Response};

const TOKEN_SECS: i64 = 120;

#[derive(Clone)]
pub struct SandboxClient {
    /// The fleet host's id (`None`: the fixed `KILN_SANDBOX_URL`).
    host: Option<String>,
    base: String,
    secret: String,
    project: String,
    org: Option<String>,
}

pub use kiln_core::sandbox::{ExecResult, SandboxError};

type SbResult<T> = Result<T, SandboxError>;

fn err(message: impl Into<String>) -> SandboxError {
    SandboxError {
        message: message.into(),
        status: None,
        lost: false,
    }
}

/// A sandbox-proxy token for one project, valid for two minutes (the Worker's preview proxy
/// uses it too).
pub fn token_for(secret: &str, project: &str, org: Option<&str>) -> Result<String, String> {
    let now = DateTime::<Utc>::from_timestamp_millis(worker::Date::now().as_millis() as i64)
        .unwrap_or_default();
    let opts = TimeOptions::new(Duration::seconds(0), move || now);
    let claims = Claims::new(SandboxClaims {
        project_id: project.to_owned(),
        org_id: org.map(str::to_owned),
    })
    .set_duration_and_issuance(&opts, Duration::seconds(TOKEN_SECS));
    Hs256
        .token(&Header::empty(), &claims, &Hs256Key::new(secret.as_bytes()))
        .map_err(|e| format!("minting the sandbox token: {e}"))
}

impl SandboxClient {
    pub fn new(
        target: crate::fleet::Target,
        secret: String,
        project: &str,
        org: Option<String>,
    ) -> SandboxClient {
        SandboxClient {
            host: target.host,
            base: target.url,
            secret,
            project: project.to_owned(),
            org,
        }
    }

    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// Whether the host answers its health check.
    pub async fn healthy(&self) -> bool {
        let Ok(req) = Request::new(&format!("{}/healthz", self.base), Method::Get) else {
            return false;
        };
        matches!(Fetch::Request(req).send().await, Ok(r) if r.status_code() == 200)
    }

    fn token(&self) -> SbResult<String> {
        let now = DateTime::<Utc>::from_timestamp_millis(worker::Date::now().as_millis() as i64)
            .unwrap_or_default();
        let opts = TimeOptions::new(Duration::seconds(0), move || now);
        let claims = Claims::new(SandboxClaims {
            project_id: self.project.clone(),
            org_id: self.org.clone(),
        })
        .set_duration_and_issuance(&opts, Duration::seconds(TOKEN_SECS));
        Hs256
            .token(
                &Header::empty(),
                &claims,
                &Hs256Key::new(self.secret.as_bytes()),
            )
            .map_err(|e| err(format!("minting the sandbox token: {e}")))
    }

    async fn call(&self, method: Method, path: &str, body: Option<String>) -> SbResult<Response> {
        let headers = Headers::new();
        let set = |k: &str, v: &str| headers.set(k, v).map_err(|e| err(e.to_string()));
        set("authorization", &format!("Bearer {}", self.token()?))?;
        set("content-type", "application/json")?;
        let mut init = RequestInit::new();
        init.with_method(method).with_headers(headers.clone());
        if let Some(b) = body {
            init.with_body(Some(JsValue::from_str(&b)));
        }
        let url = format!("{}/v1/sandboxes{path}", self.base);
        let req = Request::new_with_init(&url, &init).map_err(|e| err(e.to_string()))?;
        let mut resp = Fetch::Request(req)
            .send()
            .await
            .map_err(|e| err(format!("sandbox-proxy unreachable: {e}")))?;
        let status = resp.status_code();
        if status >= 400 {
            let text = resp.text().await.unwrap_or_default();
            return Err(SandboxError {
                message: format!("sandbox-proxy {path}: HTTP {status}: {text}"),
                status: Some(status),
                lost: status == 404,
            });
        }
        Ok(resp)
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> SbResult<T> {
        let body = body
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| err(e.to_string()))?;
        let mut resp = self.call(method, path, body).await?;
        resp.json()
            .await
            .map_err(|e| err(format!("bad reply from {path}: {e}")))
    }

    /// Creates the project's sandbox (idempotent).
    pub async fn ensure(&self, template: Template) -> SbResult<SandboxInfo> {
        let body = CreateSandbox {
            project_id: self.project.clone(),
            template,
        };
        self.json(Method::Post, "", Some(&body)).await
    }

    /// Removes the project's sandbox and everything in it (a 404 means it is gone already).
    pub async fn remove(&self) -> SbResult<()> {
        let path = format!("/{}", self.project);
        match self.call(Method::Delete, &path, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.lost => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn write_files(&self, files: impl Into<WriteFilesRequest>) -> SbResult<()> {
        let files: WriteFilesRequest = files.into();
        let path = format!("/{}/files", self.project);
        let body = serde_json::to_string(&files).map_err(|e| err(e.to_string()))?;
        self.call(Method::Put, &path, Some(body)).await.map(|_| ())
    }

    /// Runs a command, handing each output piece to `on_output` as it streams.
    pub async fn exec(
        &self,
        req: &ExecRequest,
        mut on_output: impl FnMut(&str),
    ) -> SbResult<ExecResult> {
        let path = format!("/{}/exec", self.project);
        let body = serde_json::to_string(req).map_err(|e| err(e.to_string()))?;
        let mut resp = self.call(Method::Post, &path, Some(body)).await?;
        let mut stream = resp.stream().map_err(|e| err(e.to_string()))?;
        let (mut buf, mut result) = (Vec::new(), ExecResult::default());
        let mut finished = false;
        while let Some(chunk) = stream.next().await {
            buf.extend(chunk.map_err(|e| err(format!("exec stream broke: {e}")))?);
            while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                let Ok(frame) = serde_json::from_slice::<ExecFrame>(&line) else {
                    continue;
                };
                finished |= frame.is_final();
                match frame {
                    ExecFrame::Output { data, .. } => {
                        on_output(&data);
                        if result.output.len() < 64 * 1024 {
                            result.output.push_str(&data);
                        }
                    }
                    ExecFrame::Exit { exit_code } => result.exit_code = Some(exit_code),
                    ExecFrame::Signal { .. } => {}
                    ExecFrame::TimedOut { .. } => result.timed_out = true,
                    ExecFrame::OomKilled { .. } => result.oom_killed = true,
                    ExecFrame::Error { error } => return Err(err(format!("exec: {error}"))),
                }
            }
        }
        if !finished {
            return Err(err("the exec stream ended without a final frame"));
        }
        Ok(result)
    }

    /// Every file the sandbox holds (not `node_modules`).
    pub async fn list_files(&self) -> SbResult<Vec<FileEntry>> {
        #[derive(serde::Deserialize)]
        struct Listing {
            files: Vec<FileEntry>,
        }
        let path = format!("/{}/files", self.project);
        let l: Listing = self.json(Method::Get, &path, None::<&()>).await?;
        Ok(l.files.into_iter().filter(|f| !f.dir).collect())
    }

    pub async fn read_file(&self, file: &ProjectPath) -> SbResult<Vec<u8>> {
        let path = format!("/{}/files/{}", self.project, url_path(file.as_str()));
        let mut resp = self.call(Method::Get, &path, None).await?;
        resp.bytes().await.map_err(|e| err(e.to_string()))
    }

    pub async fn dev_server(&self, action: DevServerAction) -> SbResult<DevServerStatus> {
        let path = format!("/{}/dev-server", self.project);
        self.json(Method::Post, &path, Some(&DevServerRequest { action }))
            .await
    }
}

/// A project path as a URL path: each segment percent-encoded (a `#` or `?` in a file name
/// must not end the path).
fn url_path(p: &str) -> String {
    p.split('/')
        .map(|seg| {
            seg.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}
