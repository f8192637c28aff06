//! Published sites: a version of a project built once and served from a host of its own,
//! `<slug>.<sites domain>` (`KILN_SITES_URL`), never from Kiln's origin or a preview's
//! (invariant 10). Everything here is pure: which host names which site, what a slug may be,
//! what a built site's manifest holds, and how a request path resolves against it (content
//! type, cache policy, the SPA fallback, the 404 page).
//!
//! Storage (the room and the Worker do it): every built file is a blob keyed by its sha256
//! under the project (`sites/<project>/blobs/<sha>`), so a republish uploads only what
//! changed; a manifest (`sites/<project>/manifests/<publish id>.json`) lists the paths; the
//! D1 row of the site points at one manifest, and a publish switches that pointer in one
//! statement. A request reads the row once, so it sees one whole site or the other.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::origin::PreviewDomain;

/// The sites domain: parsed like the preview domain (a scheme, a host suffix, a port).
pub type SitesDomain = PreviewDomain;

pub const MIN_SLUG: usize = 3;
pub const MAX_SLUG: usize = 40;

/// Names a person might expect to mean Kiln itself, or that a phishing page would want.
const RESERVED: &[&str] = &[
    "admin",
    "api",
    "app",
    "assets",
    "auth",
    "cdn",
    "dashboard",
    "docs",
    "help",
    "kiln",
    "login",
    "mail",
    "preview",
    "root",
    "sites",
    "static",
    "status",
    "support",
    "www",
];

/// A site's name in its host: 3–40 of `a-z`, `0-9` and `-`, starting and ending with a
/// letter or digit, no `--` (the mark of punycode, `xn--`), not a reserved name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str) -> Result<Slug, String> {
        let s = raw.trim();
        if s.len() < MIN_SLUG || s.len() > MAX_SLUG {
            return Err(format!(
                "a site name has {MIN_SLUG} to {MAX_SLUG} characters (this one has {})",
                s.len()
            ));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("a site name has only lowercase letters, digits and '-'".into());
        }
        if s.starts_with('-') || s.ends_with('-') || s.contains("--") {
            return Err("a site name neither starts nor ends with '-', nor has '--'".into());
        }
        if RESERVED.contains(&s) {
            return Err(format!("{s:?} is reserved; choose another site name"));
        }
        Ok(Slug(s.to_owned()))
    }

    /// A slug made from a project's name ("My Todo App!" → `my-todo-app`), or `None` when the
    /// name gives too little (the caller then picks one at random).
    pub fn from_name(name: &str) -> Option<Slug> {
        let mut out = String::new();
        for c in name.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
            if out.len() >= MAX_SLUG - 7 {
                break;
            }
        }
        Slug::parse(out.trim_end_matches('-')).ok()
    }

    /// This slug with `-<suffix>` after it, for when the plain one is taken.
    pub fn with_suffix(&self, suffix: &str) -> Option<Slug> {
        let base = &self.0[..self.0.len().min(MAX_SLUG - suffix.len() - 1)];
        Slug::parse(&format!("{}-{suffix}", base.trim_end_matches('-'))).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Slug {
    type Error = String;
    fn try_from(s: String) -> Result<Slug, String> {
        Slug::parse(&s)
    }
}

impl From<Slug> for String {
    fn from(s: Slug) -> String {
        s.0
    }
}

impl std::fmt::Display for Slug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a request's host is, as far as sites go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteHost {
    Site(Slug),
    /// Under the sites domain but no site's name (the bare domain, a nested label, a bad
    /// name): a 404, never Kiln's UI.
    Unknown,
    /// Not under the sites domain at all.
    Elsewhere,
}

pub fn classify(domain: &SitesDomain, host_header: &str) -> SiteHost {
    let host = host_header.trim();
    let host = host
        .rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
        .to_ascii_lowercase();
    if host == domain.host {
        return SiteHost::Unknown;
    }
    match host.strip_suffix(&format!(".{}", domain.host)) {
        None => SiteHost::Elsewhere,
        Some(label) if label.contains('.') => SiteHost::Unknown,
        Some(label) => Slug::parse(label).map_or(SiteHost::Unknown, SiteHost::Site),
    }
}

/// The URL of a site: the root of its own origin.
pub fn site_url(domain: &SitesDomain, slug: &Slug) -> String {
    let scheme = if domain.secure { "https" } else { "http" };
    match domain.port {
        Some(p) => format!("{scheme}://{slug}.{}:{p}/", domain.host),
        None => format!("{scheme}://{slug}.{}/", domain.host),
    }
}

/// One built file of a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteFile {
    pub sha256: String,
    pub size: u64,
}

/// A built site: its paths (relative to the site's root, no leading `/`) and their blobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteManifest {
    pub project_id: String,
    pub version: u64,
    pub built_at: i64,
    pub files: BTreeMap<String, SiteFile>,
}

/// How a request path is answered from a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved<'a> {
    /// The file at this path, with status 200.
    File(&'a str, &'a SiteFile),
    /// `index.html` for a path that names no file and looks like an app's route (no
    /// extension): a single-page app's router takes it from there.
    Fallback(&'a SiteFile),
    /// Nothing: the site's own `404.html` when it has one, else Kiln's page.
    NotFound(Option<&'a SiteFile>),
}

impl SiteManifest {
    /// Resolves a URL path (as it came: percent-encoded, with a query) against the site.
    pub fn resolve(&self, url_path: &str) -> Resolved<'_> {
        let not_found = || Resolved::NotFound(self.files.get("404.html"));
        let Some(path) = normalise(url_path) else {
            return not_found();
        };
        let candidates = if path.is_empty() || path.ends_with('/') {
            vec![format!("{path}index.html")]
        } else {
            vec![
                path.clone(),
                format!("{path}/index.html"),
                format!("{path}.html"),
            ]
        };
        for c in &candidates {
            if let Some((k, f)) = self.files.get_key_value(c.as_str()) {
                return Resolved::File(k.as_str(), f);
            }
        }
        let last = path.rsplit('/').next().unwrap_or("");
        match self.files.get("index.html") {
            Some(index) if !last.contains('.') => Resolved::Fallback(index),
            _ => not_found(),
        }
    }
}

/// A URL path as a manifest key: percent-decoded, without the query, the leading `/` or
/// any `.`/`..` segment (`None` for one that tries to climb or is not UTF-8).
fn normalise(url_path: &str) -> Option<String> {
    let raw = url_path.split(['?', '#']).next().unwrap_or("");
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(out).ok()?;
    if decoded.contains('\\') || decoded.chars().any(char::is_control) {
        return None;
    }
    let trailing = decoded.ends_with('/');
    let mut segs = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => return None,
            s => segs.push(s),
        }
    }
    let mut p = segs.join("/");
    if trailing && !p.is_empty() {
        p.push('/');
    }
    Some(p)
}

/// The `Content-Type` of a built file, by its extension.
pub fn content_type(path: &str) -> &'static str {
    let ext = path
        .rsplit('/')
        .next()
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "wasm" => "application/wasm",
        "mp3" => "audio/mpeg",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// A file whose name carries its content's hash (Vite's `assets/index-B9x_3kQz.js`) never
/// changes under that name: browsers may keep it for a year. Anything else (the HTML above
/// all) is asked again each time, so a republish shows at once.
pub fn is_hashed_asset(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let Some((stem, _ext)) = name.rsplit_once('.') else {
        return false;
    };
    let Some((_, hash)) = stem.rsplit_once(['-', '.']) else {
        return false;
    };
    hash.len() >= 8
        && hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && hash
            .bytes()
            .any(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

pub fn cache_control(path: &str) -> &'static str {
    if is_hashed_asset(path) {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=0, must-revalidate"
    }
}

/// The quoted strong `ETag` of a blob.
pub fn etag(file: &SiteFile) -> String {
    format!("\"{}\"", file.sha256)
}

/// Whether an `If-None-Match` header already names this blob (so the answer is a 304).
pub fn not_modified(if_none_match: Option<&str>, file: &SiteFile) -> bool {
    let tag = etag(file);
    if_none_match.is_some_and(|h| {
        h.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == tag || t == "*")
    })
}

/// The publish state of a project, as `GET /api/projects/:id/publish` tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum PublishState {
    /// A build is running (a site may be live meanwhile: the last one stays up).
    Building,
    Live,
    /// The last build failed; the site that was live (if any) still is.
    Failed,
    Unpublished,
}

impl PublishState {
    pub fn as_str(&self) -> &'static str {
        match self {
            PublishState::Building => "building",
            PublishState::Live => "live",
            PublishState::Failed => "failed",
            PublishState::Unpublished => "unpublished",
        }
    }

    pub fn parse(s: &str) -> Option<PublishState> {
        Some(match s {
            "building" => PublishState::Building,
            "live" => PublishState::Live,
            "failed" => PublishState::Failed,
            "unpublished" => PublishState::Unpublished,
            _ => return None,
        })
    }
}

/// A project's site: its name and URL, what is live and what is being built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Site {
    pub slug: Slug,
    pub url: String,
    pub state: PublishState,
    /// The version that is live, if any.
    pub version: Option<u64>,
    /// The version being built, while `state` is `building`.
    pub building_version: Option<u64>,
    pub published_at: Option<i64>,
    pub error: Option<String>,
}

/// `POST /api/projects/:id/publish`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// A version number; the newest version when left out.
    #[serde(default)]
    pub version: Option<u64>,
    /// The site's name; the project's name made into one when left out (and kept across
    /// republishes).
    #[serde(default)]
    pub slug: Option<String>,
}

/// What the Worker asks of the room: build `version` and make it the site of `slug`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PublishJob {
    pub id: String,
    pub version: u64,
    pub slug: Slug,
    pub by: String,
}

/// Where the room builds a publish job in the sandbox, apart from the working tree the dev
/// server serves.
pub fn build_dir(job_id: &str) -> String {
    format!(".kiln-publish/{job_id}")
}

/// The build's output under `build_dir`.
pub const OUT_DIR: &str = "dist";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_names_are_checked() {
        for good in ["my-todo", "abc", "a1b2-c3", &"x".repeat(40)] {
            assert_eq!(Slug::parse(good).unwrap().as_str(), good, "{good}");
        }
        for bad in [
            "ab",
            &"x".repeat(41),
            "My-Todo",
            "-todo",
            "todo-",
            "xn--todo",
            "to_do",
            "to.do",
            "www",
            "api",
            "tódo",
            "",
        ] {
            assert!(Slug::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_projects_name_makes_its_site_name() {
        let s = |n: &str| Slug::from_name(n).map(|s| s.0);
        assert_eq!(s("My Todo App!").as_deref(), Some("my-todo-app"));
        assert_eq!(s("  Café — menu  ").as_deref(), Some("caf-menu"));
        assert_eq!(s("!!").as_deref(), None);
        assert_eq!(s("www").as_deref(), None);
        let long = Slug::from_name(&"word ".repeat(20)).unwrap();
        assert!(long.as_str().len() <= MAX_SLUG - 7, "{long}");
        assert_eq!(
            long.with_suffix("a1b2c3").unwrap().as_str().len(),
            long.as_str().len() + 7
        );
        assert_eq!(
            Slug::parse("todo")
                .unwrap()
                .with_suffix("x9")
                .unwrap()
                .as_str(),
            "todo-x9"
        );
    }

    #[test]
    fn hosts_under_the_sites_domain_name_sites_and_nothing_else() {
        let d = SitesDomain::parse("http://sites.localhost:8787").unwrap();
        for (host, want) in [
            (
                "todo.sites.localhost:8787",
                SiteHost::Site(Slug::parse("todo").unwrap()),
            ),
            (
                "TODO.Sites.localhost",
                SiteHost::Site(Slug::parse("todo").unwrap()),
            ),
            ("sites.localhost:8787", SiteHost::Unknown),
            ("a.todo.sites.localhost", SiteHost::Unknown),
            ("www.sites.localhost", SiteHost::Unknown),
            ("t_o.sites.localhost", SiteHost::Unknown),
            ("127.0.0.1:8787", SiteHost::Elsewhere),
            ("evilsites.localhost", SiteHost::Elsewhere),
            ("todo.preview.localhost", SiteHost::Elsewhere),
        ] {
            assert_eq!(classify(&d, host), want, "{host}");
        }
        assert_eq!(
            site_url(&d, &Slug::parse("todo").unwrap()),
            "http://todo.sites.localhost:8787/"
        );
        let prod = SitesDomain::parse("https://kiln.site").unwrap();
        assert_eq!(
            site_url(&prod, &Slug::parse("todo").unwrap()),
            "https://todo.kiln.site/"
        );
    }

    fn manifest(paths: &[&str]) -> SiteManifest {
        SiteManifest {
            project_id: "p".into(),
            version: 1,
            built_at: 0,
            files: paths
                .iter()
                .map(|p| {
                    (
                        p.to_string(),
                        SiteFile {
                            sha256: format!("sha-of-{p}"),
                            size: 1,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn paths_resolve_to_files_then_to_the_app_then_to_the_404_page() {
        let m = manifest(&[
            "index.html",
            "assets/index-B9x_3kQz.js",
            "about/index.html",
            "pricing.html",
            "logo 1.png",
        ]);
        let file = |r: Resolved| match r {
            Resolved::File(p, _) => format!("file {p}"),
            Resolved::Fallback(f) => format!("fallback {}", f.sha256),
            Resolved::NotFound(f) => format!("404 {:?}", f.map(|f| f.sha256.clone())),
        };
        for (path, want) in [
            ("/", "file index.html"),
            ("", "file index.html"),
            ("/index.html?x=1", "file index.html"),
            ("/assets/index-B9x_3kQz.js", "file assets/index-B9x_3kQz.js"),
            ("/about", "file about/index.html"),
            ("/about/", "file about/index.html"),
            ("/pricing", "file pricing.html"),
            ("/logo%201.png", "file logo 1.png"),
            (
                "//assets/./index-B9x_3kQz.js",
                "file assets/index-B9x_3kQz.js",
            ),
            ("/todos/3", "fallback sha-of-index.html"),
            ("/settings/", "fallback sha-of-index.html"),
            ("/assets/gone-A1b2C3d4.js", "404 None"),
            ("/../secret", "404 None"),
            ("/%2e%2e/secret", "404 None"),
            ("/bad%zz", "404 None"),
            ("/bad%", "404 None"),
        ] {
            assert_eq!(file(m.resolve(path)), want, "{path}");
        }
        let with_404 = manifest(&["index.html", "404.html"]);
        assert_eq!(
            file(with_404.resolve("/x.png")),
            "404 Some(\"sha-of-404.html\")"
        );
    }

    #[test]
    fn hashed_assets_are_immutable_and_pages_are_asked_again() {
        for p in [
            "assets/index-B9x_3kQz.js",
            "assets/index-DiwrgTda.css",
            "assets/logo.5f3a9c1e.svg",
        ] {
            assert!(is_hashed_asset(p), "{p}");
            assert_eq!(cache_control(p), "public, max-age=31536000, immutable");
        }
        for p in [
            "index.html",
            "favicon.ico",
            "assets/my-component.js",
            "robots.txt",
        ] {
            assert!(!is_hashed_asset(p), "{p}");
            assert_eq!(cache_control(p), "public, max-age=0, must-revalidate");
        }
    }

    #[test]
    fn content_types_follow_extensions() {
        for (p, t) in [
            ("index.html", "text/html; charset=utf-8"),
            ("assets/a-B9x_3kQz.js", "text/javascript; charset=utf-8"),
            ("a.CSS", "text/css; charset=utf-8"),
            ("img/x.svg", "image/svg+xml"),
            ("x.woff2", "font/woff2"),
            ("LICENSE", "application/octet-stream"),
            (".hidden/x", "application/octet-stream"),
        ] {
            assert_eq!(content_type(p), t, "{p}");
        }
    }

    #[test]
    fn etags_answer_conditional_requests() {
        let f = SiteFile {
            sha256: "abc".into(),
            size: 3,
        };
        assert_eq!(etag(&f), "\"abc\"");
        assert!(not_modified(Some("\"abc\""), &f));
        assert!(not_modified(Some("\"x\", W/\"abc\""), &f));
        assert!(not_modified(Some("*"), &f));
        assert!(!not_modified(Some("\"abd\""), &f));
        assert!(!not_modified(None, &f));
    }
}
