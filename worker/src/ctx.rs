//! Per-request context: the bindings, fetched once by name, the request's clock, and the
//! origins Kiln serves.

use kiln_core::origin::PreviewDomain;
use kiln_core::sites::SitesDomain;
use worker::{D1Database, Env};

pub struct Ctx {
    pub env: Env,
    pub db: D1Database,
    /// Milliseconds since the epoch, read once per request.
    pub now: i64,
    /// Where previews live (`KILN_PREVIEW_URL`): a domain of their own, never the app's.
    pub preview: PreviewDomain,
    /// Where published sites live (`KILN_SITES_URL`): a domain of their own too.
    pub sites: SitesDomain,
    /// The origins of Kiln's own UI (`KILN_APP_ORIGINS`, comma-separated; the first is the
    /// canonical one, used for redirects and `frame-ancestors`).
    pub app_origins: Vec<String>,
}

pub const DEFAULT_PREVIEW_URL: &str = "http://preview.localhost:8787";
const DEFAULT_APP_ORIGINS: &str = "http://127.0.0.1:8787,http://localhost:8787";

impl Ctx {
    /// A new org's credit (`KILN_CREDIT_GRANT_MICROS`, `core::credits::starting_grant`).
    pub fn starting_credit(&self) -> u64 {
        let set = self
            .env
            .var("KILN_CREDIT_GRANT_MICROS")
            .ok()
            .map(|v| v.to_string());
        kiln_core::credits::starting_grant(set.as_deref())
    }

    pub fn new(env: Env) -> Result<Ctx, String> {
        let var = |name: &str, default: &str| {
            env.var(name)
                .map(|v| v.to_string())
                .unwrap_or_else(|_| default.to_owned())
        };
        let preview = PreviewDomain::parse(&var("KILN_PREVIEW_URL", DEFAULT_PREVIEW_URL))
            .map_err(|e| format!("KILN_PREVIEW_URL: {e}"))?;
        let sites = kiln_durable_objects::publish::sites_domain(&env)?;
        if sites.host == preview.host {
            return Err("KILN_SITES_URL and KILN_PREVIEW_URL must name different domains".into());
        }
        let app_origins: Vec<String> = var("KILN_APP_ORIGINS", DEFAULT_APP_ORIGINS)
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        if app_origins.is_empty() {
            return Err("KILN_APP_ORIGINS names no origin".into());
        }
        Ok(Ctx {
            db: env.d1("DB").map_err(|e| e.to_string())?,
            env,
            now: worker::Date::now().as_millis() as i64,
            preview,
            sites,
            app_origins,
        })
    }

    /// A secret (or, in local runs, a plain variable) by name.
    pub fn secret(&self, name: &str) -> Option<String> {
        self.env
            .secret(name)
            .map(|s| s.to_string())
            .or_else(|_| self.env.var(name).map(|v| v.to_string()))
            .ok()
            .filter(|s| !s.is_empty())
    }

    /// A numeric setting, e.g. a rate limit.
    pub fn number(&self, name: &str, default: u64) -> u64 {
        self.env
            .var(name)
            .ok()
            .and_then(|v| v.to_string().trim().parse().ok())
            .unwrap_or(default)
    }
}
