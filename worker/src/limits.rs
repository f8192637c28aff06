//! Rate limits on what can be guessed or flooded: sign-ups, logins, and the tokens a session
//! can mint. Each key is counted by its own `RateLimiter` Durable Object; the settings are
//! Worker variables so an operator (or a test) can tune them.
//!
//! | key | counts | default |
//! |---|---|---|
//! | `register:ip:<ip>` | sign-ups from one address | 20 / hour |
//! | `register:email:<email>` | sign-ups for one email | 5 / hour |
//! | `login:acct:<email>:<ip>` | wrong passwords, one account from one address | 10 / 15 min, doubling lock-out |
//! | `login:acct:<email>` | wrong passwords for one account from anywhere | 100 / 15 min |
//! | `login:ip:<ip>` | wrong passwords from one address | 50 / 15 min |
//! | `tokens:<user>` | WebSocket tickets and preview links | 300 / min |

use crate::auth::Caller;
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use kiln_core::limits::{retry_after_secs, Policy};
use kiln_core::ErrorCode;
use kiln_durable_objects::limiter::{self, LimitAnswer, LimitOp};
use worker::Request;

/// The caller's address as Cloudflare saw it (it sets this header; clients cannot).
pub fn client_ip(req: &Request) -> String {
    req.headers()
        .get("cf-connecting-ip")
        .ok()
        .flatten()
        .unwrap_or_else(|| "unknown".to_owned())
}

fn policy(ctx: &Ctx, name: &str, limit: u64, window_secs: u64, backoff: bool) -> Policy {
    Policy {
        limit: ctx.number(&format!("KILN_LIMIT_{name}"), limit) as u32,
        window_ms: ctx.number(&format!("KILN_LIMIT_{name}_WINDOW_SECS"), window_secs) as i64 * 1000,
        backoff,
    }
}

async fn call(ctx: &Ctx, op: &str, key: &str, policy: Policy) -> ApiResult<LimitAnswer> {
    let op = match op {
        "hit" => LimitOp::Hit { policy },
        "check" => LimitOp::Check { policy },
        "fail" => LimitOp::Fail { policy },
        _ => LimitOp::Reset,
    };
    Ok(limiter::call(&ctx.env, key, &op).await?)
}

fn refused(answer: &LimitAnswer, what: &str) -> ApiError {
    let secs = retry_after_secs(answer.retry_after_ms);
    ApiError::new(
        ErrorCode::RateLimited,
        format!("too many {what}; try again in {secs} s"),
    )
    .retry_after(secs)
}

async fn hit(ctx: &Ctx, key: &str, policy: Policy, what: &str) -> ApiResult<()> {
    let answer = call(ctx, "hit", key, policy).await?;
    if answer.allowed {
        Ok(())
    } else {
        Err(refused(&answer, what))
    }
}

/// Before a sign-up does any work.
pub async fn register(ctx: &Ctx, ip: &str, email: &str) -> ApiResult<()> {
    let per_ip = policy(ctx, "REGISTER_PER_IP", 20, 3600, false);
    hit(
        ctx,
        &format!("register:ip:{ip}"),
        per_ip,
        "sign-ups from your address",
    )
    .await?;
    let per_email = policy(ctx, "REGISTER_PER_EMAIL", 5, 3600, false);
    hit(
        ctx,
        &format!("register:email:{email}"),
        per_email,
        "sign-ups for this email",
    )
    .await
}

struct LoginKeys {
    pair: (String, Policy),
    account: (String, Policy),
    ip: (String, Policy),
}

fn login_keys(ctx: &Ctx, ip: &str, email: &str) -> LoginKeys {
    let window = ctx.number("KILN_LIMIT_LOGIN_WINDOW_SECS", 900);
    let p = |name: &str, limit: u64, backoff: bool| Policy {
        limit: ctx.number(&format!("KILN_LIMIT_{name}"), limit) as u32,
        window_ms: window as i64 * 1000,
        backoff,
    };
    LoginKeys {
        pair: (
            format!("login:acct:{email}:{ip}"),
            p("LOGIN_FAILS_PER_ACCOUNT_IP", 10, true),
        ),
        account: (
            format!("login:acct:{email}"),
            p("LOGIN_FAILS_PER_ACCOUNT", 100, false),
        ),
        ip: (format!("login:ip:{ip}"), p("LOGIN_FAILS_PER_IP", 50, false)),
    }
}

/// Before a password is checked: refused while any of its keys is locked out.
pub async fn login_allowed(ctx: &Ctx, ip: &str, email: &str) -> ApiResult<()> {
    let keys = login_keys(ctx, ip, email);
    for (key, policy) in [keys.pair, keys.account, keys.ip] {
        let answer = call(ctx, "check", &key, policy).await?;
        if !answer.allowed {
            return Err(refused(&answer, "failed sign-ins"));
        }
    }
    Ok(())
}

/// A wrong password: counted against the account from this address, the account, and the
/// address.
pub async fn login_failed(ctx: &Ctx, ip: &str, email: &str) -> ApiResult<()> {
    let keys = login_keys(ctx, ip, email);
    for (key, policy) in [keys.pair, keys.account, keys.ip] {
        call(ctx, "fail", &key, policy).await?;
    }
    Ok(())
}

/// The right password: this account's count from this address starts over.
pub async fn login_succeeded(ctx: &Ctx, ip: &str, email: &str) -> ApiResult<()> {
    let (key, policy) = login_keys(ctx, ip, email).pair;
    call(ctx, "reset", &key, policy).await.map(|_| ())
}

/// WebSocket tickets and preview links.
pub async fn tokens(ctx: &Ctx, caller: &Caller) -> ApiResult<()> {
    let p = policy(ctx, "TOKENS_PER_USER", 300, 60, false);
    hit(
        ctx,
        &format!("tokens:{}", caller.user.id),
        p,
        "tokens requested",
    )
    .await
}
