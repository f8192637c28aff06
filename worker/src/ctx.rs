//! Per-request context: the bindings, fetched once by name, and the request's clock.

use worker::{D1Database, Env};

pub struct Ctx {
    pub env: Env,
    pub db: D1Database,
    /// Milliseconds since the epoch, read once per request.
    pub now: i64,
}

impl Ctx {
    pub fn new(env: Env) -> worker::Result<Ctx> {
        Ok(Ctx {
            db: env.d1("DB")?,
            env,
            now: worker::Date::now().as_millis() as i64,
        })
    }
}
