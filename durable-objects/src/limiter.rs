//! `RateLimiter`: one Durable Object per limited key (`login:acct:…`, `register:ip:…`,
//! `generations:<org>`), so each key is counted by exactly one writer wherever the requests
//! land. The rules are `kiln_core::limits`; this only stores the state and keeps the clock.

use kiln_core::limits::{Counter, Leases, Policy};
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

#[durable_object]
pub struct RateLimiter {
    state: State,
}

/// What to do with a key (`POST /` with this as JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LimitOp {
    /// One attempt where every attempt counts (sign-ups, tokens).
    Hit {
        policy: Policy,
    },
    /// May an attempt go ahead? Counts nothing (before checking a password).
    Check {
        policy: Policy,
    },
    /// An attempt that failed (a wrong password).
    Fail {
        policy: Policy,
    },
    /// A success: the count starts over.
    Reset,
    /// Takes or renews a slot for `holder`, at most `cap` holders at once.
    Acquire {
        holder: String,
        cap: u32,
        ttl_ms: i64,
    },
    Release {
        holder: String,
    },
}

/// `allowed: false` comes with how long to wait (attempts) or how many hold a slot (leases).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LimitAnswer {
    pub allowed: bool,
    pub retry_after_ms: i64,
    #[serde(default)]
    pub held: usize,
}

const COUNTER: &str = "counter";
const LEASES: &str = "leases";

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        RateLimiter { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let op: LimitOp = req.json().await?;
        let storage = self.state.storage();
        let now = worker::Date::now().as_millis() as i64;
        let answer = match op {
            LimitOp::Acquire {
                holder,
                cap,
                ttl_ms,
            } => {
                let mut leases: Leases = storage.get(LEASES).await?.unwrap_or_default();
                let result = leases.acquire(&holder, cap, ttl_ms, now);
                storage.put(LEASES, &leases).await?;
                match result {
                    Ok(()) => allowed(),
                    Err(held) => LimitAnswer {
                        allowed: false,
                        retry_after_ms: 0,
                        held,
                    },
                }
            }
            LimitOp::Release { holder } => {
                let mut leases: Leases = storage.get(LEASES).await?.unwrap_or_default();
                leases.release(&holder);
                storage.put(LEASES, &leases).await?;
                allowed()
            }
            op => {
                let mut counter: Counter = storage.get(COUNTER).await?.unwrap_or_default();
                let result = match &op {
                    LimitOp::Hit { policy } => counter.hit(policy, now),
                    LimitOp::Check { .. } => counter.check(now),
                    LimitOp::Fail { policy } => {
                        counter.record(policy, now);
                        Ok(())
                    }
                    _ => {
                        counter.reset();
                        Ok(())
                    }
                };
                if !matches!(op, LimitOp::Check { .. }) {
                    storage.put(COUNTER, &counter).await?;
                }
                match result {
                    Ok(()) => allowed(),
                    Err(ms) => LimitAnswer {
                        allowed: false,
                        retry_after_ms: ms,
                        held: 0,
                    },
                }
            }
        };
        Response::from_json(&answer)
    }
}

fn allowed() -> LimitAnswer {
    LimitAnswer {
        allowed: true,
        retry_after_ms: 0,
        held: 0,
    }
}

/// Sends `op` to the limiter of `key` (from the Worker or from a room).
pub async fn call(env: &Env, key: &str, op: &LimitOp) -> Result<LimitAnswer> {
    let headers = worker::Headers::new();
    headers.set("content-type", "application/json")?;
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::Post)
        .with_headers(headers)
        .with_body(Some(serde_json::to_string(op)?.into()));
    let req = Request::new_with_init("https://limiter/", &init)?;
    let stub = env.durable_object("RATE_LIMITER")?.get_by_name(key)?;
    let mut resp = stub.fetch_with_request(req).await?;
    resp.json().await
}
