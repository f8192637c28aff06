//! `RateLimiter`: one Durable Object per limited key (`login:acct:…`, `register:ip:…`), so
//! each key's attempts are counted by exactly one writer wherever the requests land. The
//! counting rules are `kiln_core::limits`; this only stores the counter and keeps the clock.

use kiln_core::limits::{Counter, Policy};
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

#[durable_object]
pub struct RateLimiter {
    state: State,
}

/// A request to a key's limiter: `POST /<op>` with a policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LimitRequest {
    pub policy: Policy,
}

/// `allowed: false` comes with how long to wait.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LimitAnswer {
    pub allowed: bool,
    pub retry_after_ms: i64,
}

const KEY: &str = "counter";

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        RateLimiter { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let op = req.path().trim_start_matches('/').to_owned();
        let body: LimitRequest = req.json().await?;
        let storage = self.state.storage();
        let mut counter: Counter = storage.get(KEY).await?.unwrap_or_default();
        let now = worker::Date::now().as_millis() as i64;
        let result = match op.as_str() {
            // Every attempt counts (sign-ups, tokens).
            "hit" => counter.hit(&body.policy, now),
            // May an attempt go ahead? Counts nothing (before checking a password).
            "check" => counter.check(now),
            // An attempt that failed (a wrong password).
            "fail" => {
                counter.record(&body.policy, now);
                Ok(())
            }
            "reset" => {
                counter.reset();
                Ok(())
            }
            _ => return Response::error("no such limiter op", 404),
        };
        if op != "check" {
            storage.put(KEY, &counter).await?;
        }
        Response::from_json(&match result {
            Ok(()) => LimitAnswer {
                allowed: true,
                retry_after_ms: 0,
            },
            Err(ms) => LimitAnswer {
                allowed: false,
                retry_after_ms: ms,
            },
        })
    }
}
