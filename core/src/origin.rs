//! The kinds of origin Kiln serves, kept apart (invariant 10): Kiln's own (UI + API, holds
//! the session), and one origin per project's preview on a separate domain. Bytes that a
//! model, a package or a collaborator wrote are served only on the second kind.
//!
//! Everything here is pure: the Worker hands in the request's `Host`, `Origin` and headers,
//! and gets back which site it is and what may pass.

use crate::ids::ProjectId;

/// The preview domain as configured (`KILN_PREVIEW_URL`, e.g. `http://preview.localhost:8787`
/// locally, `https://kiln-preview.dev` in production): a scheme, a host suffix and a port.
/// Project `p_<hex>` is served at `<scheme>://p-<hex>.<host>[:port]/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewDomain {
    pub secure: bool,
    pub host: String,
    pub port: Option<u16>,
}

impl PreviewDomain {
    /// Parses `http(s)://host[:port]` (a trailing `/` is allowed, nothing else after it).
    pub fn parse(url: &str) -> Result<PreviewDomain, String> {
        let (secure, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("{url:?}: must start with http:// or https://"));
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('?') || rest.contains('@') {
            return Err(format!("{url:?}: give only a scheme, a host and a port"));
        }
        let (host, port) = split_port(rest).ok_or_else(|| format!("{url:?}: bad port"))?;
        if host.is_empty() || !host.split('.').all(valid_label) {
            return Err(format!("{url:?}: bad host name"));
        }
        Ok(PreviewDomain {
            secure,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// The host name (no port) of a project's preview.
    pub fn host_for(&self, project: &ProjectId) -> String {
        format!("{}.{}", preview_label(project), self.host)
    }

    /// The origin of a project's preview, e.g. `http://p-ab12….preview.localhost:8787`.
    pub fn origin_for(&self, project: &ProjectId) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        match self.port {
            Some(p) => format!("{scheme}://{}:{p}", self.host_for(project)),
            None => format!("{scheme}://{}", self.host_for(project)),
        }
    }

    /// Which site a request's `Host` header names. A host under the preview domain is never
    /// the app, whatever its label; only a well-formed label names a project.
    pub fn classify(&self, host_header: &str) -> Site {
        let host = split_port(host_header.trim())
            .map(|(h, _)| h.to_ascii_lowercase())
            .unwrap_or_default();
        if host == self.host {
            return Site::PreviewUnknown;
        }
        let Some(label) = host.strip_suffix(&format!(".{}", self.host)) else {
            return Site::App;
        };
        match label
            .strip_prefix("p-")
            .and_then(|hex| ProjectId::parse(&format!("p_{hex}")))
        {
            Some(id) if !label.contains('.') => Site::Preview(id),
            _ => Site::PreviewUnknown,
        }
    }
}

/// What a request's host is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Site {
    /// Kiln's own origin: the UI and `/api`.
    App,
    /// A project's preview.
    Preview(ProjectId),
    /// Under the preview domain but naming no project: nothing is served there.
    PreviewUnknown,
}

/// `p_<hex>` → `p-<hex>`: an underscore is not allowed in a DNS host name.
pub fn preview_label(project: &ProjectId) -> String {
    project.as_str().replacen('_', "-", 1)
}

fn split_port(s: &str) -> Option<(&str, Option<u16>)> {
    match s.rsplit_once(':') {
        Some((h, p)) => Some((h, Some(p.parse().ok()?))),
        None => Some((s, None)),
    }
}

fn valid_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// The name of the cookie that carries a preview grant on a preview host. `__Host-` pins it
/// to exactly that host (no `Domain`, `Path=/`, `Secure`), so no other host can set or read it.
pub const PREVIEW_COOKIE: &str = "__Host-kiln_preview";

/// Cookie names a dev server must never set: Kiln's own, on any origin.
pub fn is_kiln_cookie(set_cookie: &str) -> bool {
    let name = set_cookie
        .split(['=', ';'])
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    name.starts_with("kiln_")
        || name.starts_with("__host-kiln")
        || name.starts_with("__secure-kiln")
}

/// Response headers of a preview that could act beyond its own app: a service worker scope
/// wider than the script's, wiping the origin's storage. Always removed.
pub const STRIPPED_PREVIEW_HEADERS: &[&str] = &["service-worker-allowed", "clear-site-data"];

/// Whether a state-changing request comes from another site, and so must be refused.
/// `origin` and `sec_fetch_site` are the request's headers; `allowed` lists the origins of
/// Kiln's own UI (the request's own origin among them). Browsers send `Origin` on every
/// cross-origin request and on every POST/PUT/PATCH/DELETE, and `Sec-Fetch-Site` since 2020;
/// a request with neither is not from a browser page, so it cannot ride a victim's cookie.
pub fn is_cross_site(origin: Option<&str>, sec_fetch_site: Option<&str>, allowed: &[&str]) -> bool {
    if let Some(site) = sec_fetch_site {
        // `none`: typed into the address bar or a bookmark — the user's own action.
        if !matches!(site.trim(), "same-origin" | "none") {
            return true;
        }
    }
    match origin.map(str::trim) {
        None => false,
        Some(o) => !allowed
            .iter()
            .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(o)),
    }
}

/// The URL a project's preview is announced at (`server_started`, `GET …/generation`): the
/// root of its own origin under `domain` (`KILN_PREVIEW_URL`); with a domain or an id that
/// does not parse, the path on Kiln's origin that redirects through a preview link.
pub fn preview_url(domain: &str, project: &str) -> String {
    match (PreviewDomain::parse(domain), ProjectId::parse(project)) {
        (Ok(d), Some(id)) => format!("{}/", d.origin_for(&id)),
        _ => format!("/preview/{project}/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_is_announced_on_its_own_origin_or_through_kiln() {
        let id = "p_0123456789abcdef0123456789abcdef";
        assert_eq!(
            preview_url("http://preview.localhost:8787", id),
            "http://p-0123456789abcdef0123456789abcdef.preview.localhost:8787/"
        );
        assert_eq!(
            preview_url("https://kiln-preview.dev/", id),
            "https://p-0123456789abcdef0123456789abcdef.kiln-preview.dev/"
        );
        assert_eq!(preview_url("not a url", id), format!("/preview/{id}/"));
        assert_eq!(preview_url("http://preview.localhost", "x"), "/preview/x/");
    }

    fn id() -> ProjectId {
        ProjectId::from_random([0xab; 16])
    }

    #[test]
    fn preview_hosts_are_one_per_project() {
        let d = PreviewDomain::parse("http://preview.localhost:8787").unwrap();
        let hex = "ab".repeat(16);
        assert_eq!(
            d.origin_for(&id()),
            format!("http://p-{hex}.preview.localhost:8787")
        );
        for (host, site) in [
            (
                format!("p-{hex}.preview.localhost:8787"),
                Site::Preview(id()),
            ),
            (
                format!("P-{}.PREVIEW.localhost", hex.to_uppercase()),
                Site::Preview(id()),
            ),
            (format!("p-{hex}.preview.localhost"), Site::Preview(id())),
            ("preview.localhost:8787".into(), Site::PreviewUnknown),
            ("x.preview.localhost".into(), Site::PreviewUnknown),
            (format!("a.p-{hex}.preview.localhost"), Site::PreviewUnknown),
            (format!("p_{hex}.preview.localhost"), Site::PreviewUnknown),
            ("127.0.0.1:8787".into(), Site::App),
            ("localhost:8787".into(), Site::App),
            ("kiln.example.com".into(), Site::App),
            ("evilpreview.localhost".into(), Site::App),
        ] {
            assert_eq!(d.classify(&host), site, "{host}");
        }
    }

    #[test]
    fn preview_domains_parse_strictly() {
        let d = PreviewDomain::parse("https://kiln-preview.dev/").unwrap();
        assert!(d.secure && d.port.is_none() && d.host == "kiln-preview.dev");
        for bad in [
            "preview.localhost",
            "ftp://x.dev",
            "http://x.dev/path",
            "http://u@x.dev",
            "http://x.dev:99999",
            "http://",
            "http://-x.dev",
        ] {
            assert!(PreviewDomain::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kiln_cookies_are_recognised_in_set_cookie_lines() {
        assert!(is_kiln_cookie("kiln_session=x; Path=/"));
        assert!(is_kiln_cookie(" KILN_SESSION=x"));
        assert!(is_kiln_cookie("__Host-kiln_preview=1"));
        assert!(!is_kiln_cookie("theme=dark; Path=/"));
        assert!(!is_kiln_cookie("mykiln_x=1"));
    }

    #[test]
    fn cross_site_requests_are_told_apart() {
        let allowed = ["http://127.0.0.1:8787", "http://localhost:8787/"];
        let cases: &[(Option<&str>, Option<&str>, bool)] = &[
            (Some("http://127.0.0.1:8787"), Some("same-origin"), false),
            (Some("http://localhost:8787"), None, false),
            (None, None, false),
            (None, Some("none"), false),
            (Some("http://evil.test"), None, true),
            (Some("null"), None, true),
            (
                Some("http://p-1.preview.localhost:8787"),
                Some("cross-site"),
                true,
            ),
            (None, Some("same-site"), true),
            (Some("http://127.0.0.1:8787"), Some("cross-site"), true),
        ];
        for (origin, site, want) in cases {
            assert_eq!(
                is_cross_site(*origin, *site, &allowed),
                *want,
                "{origin:?} {site:?}"
            );
        }
    }
}
