//! The browser UI: `web/dist`, served from the assets binding on Kiln's own origin only
//! (the router never reaches here for a preview host). Every page carries a CSP that lets it
//! talk only to Kiln's origin and frame only preview hosts, and forbids framing the UI.

use crate::ctx::Ctx;
use crate::error::ApiResult;
use worker::{Headers, Request, Response};

pub async fn serve(ctx: &Ctx, req: Request) -> ApiResult<Response> {
    let resp = ctx.env.assets("ASSETS")?.fetch_request(req).await?;
    let upstream = resp.headers().clone();
    let (builder, body) = resp.into_parts();
    let headers = Headers::new();
    for (k, v) in upstream.entries() {
        headers.append(&k, &v)?;
    }
    let preview = &ctx.preview;
    let frames = format!(
        "{}://*.{}{}",
        if preview.secure { "https" } else { "http" },
        preview.host,
        preview.port.map(|p| format!(":{p}")).unwrap_or_default()
    );
    headers.set(
        "content-security-policy",
        &format!(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data: blob:; connect-src 'self'; frame-src {frames}; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
        ),
    )?;
    headers.set("x-content-type-options", "nosniff")?;
    headers.set("referrer-policy", "same-origin")?;
    Ok(builder.with_headers(headers).body(body))
}
