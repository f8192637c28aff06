//! `kiln-worker`: the Cloudflare Worker entry point. It authenticates and authorises every
//! request, serves the REST API from D1, and hands everything about a project's files and
//! agent to that project's `ProjectRoom` Durable Object.
//!
//! This crate never writes a project's files itself (invariant 1) and never runs untrusted
//! code (that is the sandbox-proxy's job).

mod access;
mod auth;
mod ctx;
mod error;
mod http;
mod limits;
mod notify;
mod password;
mod random;
mod room;
mod router;
mod routes;
mod store;

// Linking the Durable Objects crate exports its classes from this wasm module.
pub use kiln_durable_objects::{ProjectRoom, RateLimiter};

use worker::{event, Context, Env, MessageBatch, Request, Response};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let ctx = match ctx::Ctx::new(env) {
        Ok(ctx) => ctx,
        Err(e) => return Ok(error::ApiError::internal(e).into_response()),
    };
    Ok(router::handle(req, &ctx)
        .await
        .unwrap_or_else(error::ApiError::into_response))
}

/// Outgoing notifications (`notify`): the `kiln-notify` queue's batches.
#[event(queue)]
async fn queue(
    batch: MessageBatch<kiln_core::notify::NotifyJob>,
    env: Env,
    _ctx: Context,
) -> worker::Result<()> {
    notify::consume(batch, env).await
}
