//! Webhooks that start generations: made, rotated and removed by a project's owners and
//! admins; deliveries (`POST /hooks/<id>`, no session: the signature is the credential)
//! verified over the raw body, deduplicated by delivery id, turned into a prompt.

use crate::auth::Caller;
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, read_json};
use crate::room::RoomCall;
use crate::store::projects::Projects;
use crate::store::webhooks::{NewHook, Webhooks};
use kiln_core::api::Project;
use kiln_core::api::StartGeneration;
use kiln_core::api::{
    CreateWebhook, GenerationStarted, HookAccepted, Items, User, WebhookCreated, WebhookSecret,
};
use kiln_core::ids::SessionId;
use kiln_core::room_api::RoomOp;
use kiln_core::webhooks::{self, HookKind, SignatureError};
use kiln_core::{Action, ErrorCode};
use serde_json::Value;
use worker::{Request, Response};

/// How long a rotated-out secret keeps verifying.
const ROTATION_OVERLAP_MS: i64 = 24 * 3_600_000;
/// How long a copy of a delivery waits for the first copy's generation id.
const DUPLICATE_WAIT_MS: u32 = 5_000;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn base_url(req: &Request) -> ApiResult<String> {
    let url = req.url()?;
    Ok(url.origin().ascii_serialization())
}

fn new_secret() -> ApiResult<String> {
    Ok(format!("whsec_{}", hex(&crate::random::bytes::<32>()?)))
}

pub async fn create(
    ctx: &Ctx,
    mut req: Request,
    (caller, project): (Caller, Project),
) -> ApiResult<Response> {
    let body: CreateWebhook = read_json(&mut req).await?;
    webhooks::validate_template(&body.prompt_template)
        .map_err(|m| ApiError::field("prompt_template", m))?;
    let filters = body.filters.unwrap_or_default();
    if let Some(f) = &filters.field {
        if !f.pointer.starts_with('/') {
            return Err(ApiError::field(
                "filters",
                "field.pointer is a JSON pointer, like /action",
            ));
        }
    }
    let hook_id = format!("h_{}", hex(&crate::random::bytes::<16>()?));
    let secret = new_secret()?;
    let kind = body.kind.unwrap_or_default();
    let store = Webhooks(&ctx.db);
    store
        .insert(
            &NewHook {
                id: &hook_id,
                project: &project.id,
                by: &caller.user.id,
                kind,
                template: &body.prompt_template,
                filters: &filters,
                app_template: body.template,
                secret: &secret,
            },
            ctx.now,
        )
        .await?;
    let hook = store
        .get(&hook_id, &base_url(&req)?)
        .await?
        .ok_or_else(|| ApiError::internal("the hook just made is gone"))?;
    json(
        201,
        &WebhookCreated {
            secret,
            info: hook.info,
        },
    )
}

pub async fn list(
    ctx: &Ctx,
    req: Request,
    (_caller, project): (Caller, Project),
) -> ApiResult<Response> {
    let items = Webhooks(&ctx.db)
        .list(&project.id, &base_url(&req)?)
        .await?;
    json(200, &Items { items })
}

/// The project's hook `hook`, for its managers.
async fn managed(
    ctx: &Ctx,
    req: &Request,
    project: &Project,
    hook: &str,
) -> ApiResult<crate::store::webhooks::Hook> {
    Webhooks(&ctx.db)
        .get(hook, &base_url(req)?)
        .await?
        .filter(|h| h.info.project_id == project.id)
        .ok_or_else(|| ApiError::not_found("webhook"))
}

pub async fn rotate(
    ctx: &Ctx,
    req: Request,
    (_caller, project): (Caller, Project),
    hook: &str,
) -> ApiResult<Response> {
    let h = managed(ctx, &req, &project, hook).await?;
    let secret = new_secret()?;
    let until = ctx.now + ROTATION_OVERLAP_MS;
    Webhooks(&ctx.db).rotate(&h.info.id, &secret, until).await?;
    json(
        200,
        &WebhookSecret {
            secret,
            previous_valid_until: until,
        },
    )
}

pub async fn deliveries(
    ctx: &Ctx,
    req: Request,
    (_caller, project): (Caller, Project),
    hook: &str,
) -> ApiResult<Response> {
    let h = managed(ctx, &req, &project, hook).await?;
    let items = Webhooks(&ctx.db).deliveries(&h.info.id, 100).await?;
    json(200, &Items { items })
}

pub async fn delete(
    ctx: &Ctx,
    req: Request,
    (_caller, project): (Caller, Project),
    hook: &str,
) -> ApiResult<Response> {
    let h = managed(ctx, &req, &project, hook).await?;
    Webhooks(&ctx.db).delete(&h.info.id, ctx.now).await?;
    Ok(Response::empty()?.with_status(204))
}

/// `POST /hooks/<id>`: a delivery.
pub async fn receive(ctx: &Ctx, mut req: Request, hook_id: &str) -> ApiResult<Response> {
    let store = Webhooks(&ctx.db);
    let hook = store
        .get(hook_id, &base_url(&req)?)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("a delivery may be at most {} bytes", webhooks::MAX_BODY),
        )
    };
    let declared = req
        .headers()
        .get("content-length")?
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > webhooks::MAX_BODY) {
        return Err(too_large());
    }
    let body = req.bytes().await?;
    if body.len() > webhooks::MAX_BODY {
        return Err(too_large());
    }
    let (sig_header, delivery_header, event_header) = hook.info.kind.headers();
    let h = req.headers();
    let mut secrets = vec![hook.secret.as_str()];
    if let (Some(old), Some(until)) = (&hook.previous_secret, hook.previous_until) {
        if ctx.now < until {
            secrets.push(old);
        }
    }
    let signature = h.get(sig_header)?;
    let verified = match hook.info.kind {
        HookKind::Kiln => webhooks::verify(
            signature.as_deref(),
            &body,
            &secrets,
            ctx.now.div_euclid(1000),
        ),
        HookKind::Github => webhooks::verify_github(signature.as_deref(), &body, &secrets),
    };
    verified.map_err(|e: SignatureError| {
        ApiError::new(
            ErrorCode::InvalidSignature,
            format!("{}: {}", sig_header, e.message()),
        )
    })?;
    let delivery = h
        .get(delivery_header)?
        .filter(|d| !d.trim().is_empty() && d.len() <= 200)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidParameter,
                format!("the {delivery_header} header names the delivery (1 to 200 bytes)"),
            )
        })?;
    let event = h.get(event_header)?;

    // From here on, every answer is in the hook's delivery log.
    if !store.claim(&hook.info.id, &delivery, ctx.now).await? {
        return duplicate(ctx, &hook.info.id, &delivery).await;
    }
    run(ctx, &hook, delivery, &body, event.as_deref()).await
}

/// `POST …/webhooks/:hook/test {payload, event?}`: what a delivery of `payload` would do,
/// from the hook's page — a real delivery (it starts a generation), logged as `test-…`,
/// with the manager's session instead of a signature.
pub async fn test(
    ctx: &Ctx,
    mut req: Request,
    (_caller, project): (Caller, Project),
    hook: &str,
) -> ApiResult<Response> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Test {
        payload: Value,
        #[serde(default)]
        event: Option<String>,
    }
    let h = managed(ctx, &req, &project, hook).await?;
    let t: Test = read_json(&mut req).await?;
    let delivery = format!("test-{}", hex(&crate::random::bytes::<8>()?));
    Webhooks(&ctx.db)
        .claim(&h.info.id, &delivery, ctx.now)
        .await?;
    let body = serde_json::to_vec(&t.payload).map_err(ApiError::internal)?;
    run(ctx, &h, delivery, &body, t.event.as_deref()).await
}

/// A claimed delivery: started (or refused), logged, answered.
async fn run(
    ctx: &Ctx,
    hook: &crate::store::webhooks::Hook,
    delivery: String,
    body: &[u8],
    event: Option<&str>,
) -> ApiResult<Response> {
    let store = Webhooks(&ctx.db);
    let outcome = start(ctx, hook, body, event).await;
    let (status, generation, error) = match &outcome {
        Ok(Some(g)) => (202, Some(g.as_str()), None),
        Ok(None) => (200, None, Some("skipped by the hook's filters".to_owned())),
        Err(e) => (e.code.status(), None, Some(e.message.clone())),
    };
    store
        .finish(
            &hook.info.id,
            &delivery,
            status,
            generation,
            error.as_deref(),
        )
        .await?;
    let generation_id = outcome?;
    json(
        status,
        &HookAccepted {
            delivery_id: delivery,
            skipped: generation_id.is_none(),
            generation_id,
            duplicate: false,
        },
    )
}

/// A delivery id seen before: the same answer, and nothing new. A copy that arrives while
/// the first is still being handled waits (briefly) for its generation id.
async fn duplicate(ctx: &Ctx, hook: &str, delivery: &str) -> ApiResult<Response> {
    let store = Webhooks(&ctx.db);
    let mut waited = 0;
    loop {
        let d = store
            .delivery(hook, delivery)
            .await?
            .ok_or_else(|| ApiError::internal("a claimed delivery has no row"))?;
        if d.status != 102 || waited >= DUPLICATE_WAIT_MS {
            let skipped = d.status == 200 && d.generation_id.is_none();
            return json(
                200,
                &HookAccepted {
                    delivery_id: d.delivery_id,
                    generation_id: d.generation_id,
                    duplicate: true,
                    skipped,
                },
            );
        }
        sleep(100).await;
        waited += 100;
    }
}

async fn sleep(ms: u32) {
    worker::Delay::from(std::time::Duration::from_millis(u64::from(ms))).await;
}

/// Parses, filters and renders the delivery, then starts the generation as the hook's
/// maker (who must still be allowed to). `None`: the filters passed it over.
async fn start(
    ctx: &Ctx,
    hook: &crate::store::webhooks::Hook,
    body: &[u8],
    event: Option<&str>,
) -> ApiResult<Option<String>> {
    let payload: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("the delivery is not JSON: {e}"),
        )
    })?;
    if !webhooks::passes(&hook.info.filters, event, &payload) {
        return Ok(None);
    }
    let prompt = webhooks::render(&hook.info.prompt_template, &payload)
        .map_err(|m| ApiError::new(ErrorCode::MissingField, m))?;
    if prompt.trim().is_empty() || prompt.len() > 20_000 {
        return Err(ApiError::new(
            ErrorCode::MissingField,
            "the prompt the payload makes must be 1 to 20,000 bytes",
        ));
    }
    let project = Projects(&ctx.db)
        .get(&hook.info.project_id, &hook.created_by)
        .await?
        .ok_or_else(|| {
            ApiError::forbidden("the hook's maker is no longer a member of its project")
        })?;
    if !project.role.allows(Action::Generate) {
        return Err(ApiError::forbidden(
            "the hook's maker may no longer start generations here",
        ));
    }
    // The room shows who started it: the webhook, on its maker's rights.
    let caller = Caller {
        user: User {
            id: hook.created_by.clone(),
            email: format!("webhook {}", hook.info.id),
            created_at: 0,
        },
        session: crate::random::id(SessionId::from_random)?,
        token: None,
    };
    let body = StartGeneration {
        prompt,
        template: hook.info.template,
    };
    let mut resp = RoomCall::new(RoomOp::Generate)
        .json(&body)?
        .send(ctx, &caller, &project)
        .await?;
    if resp.status_code() != 202 {
        let text = resp.text().await.unwrap_or_default();
        let err: Option<kiln_core::error::ErrorBody> = serde_json::from_str(&text).ok();
        return Err(match err {
            Some(b) => ApiError::new(b.error.code, b.error.message),
            None => ApiError::internal(format!("the room answered {}", resp.status_code())),
        });
    }
    let started: GenerationStarted = resp
        .json()
        .await
        .map_err(|e| ApiError::internal(format!("the room's answer: {e}")))?;
    Ok(Some(started.generation_id))
}
