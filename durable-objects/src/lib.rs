//! `kiln-durable-objects`: the `ProjectRoom` Durable Object, one per project
//! (`get_by_name(project_id)`), and the `RateLimiter`, one per limited key; linked into the
//! Worker's wasm.
//!
//! The room is the only writer of a project's files and agent state (invariant 1). It knows
//! nothing about HTTP auth: the Worker authorises every request before forwarding it here.

mod conn;
mod docs;
mod export;
pub mod fleet;
mod generation;
pub mod limiter;
pub mod llm_client;
pub mod publish;
pub mod repo;
mod room;
pub mod sandbox_client;
mod store;
mod versions;

pub use limiter::RateLimiter;
pub use room::ProjectRoom;
