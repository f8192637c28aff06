//! `kiln-core`: the pure heart of Kiln, shared by the Worker, the Durable Objects and the
//! sandbox-proxy.
//!
//! This crate must never know about workers-rs, tokio, HTTP clients, storage or clocks: it
//! takes values and returns values. Untrusted input is parsed here into types that cannot be
//! wrong (`ProjectPath`, `Role`, `Email`, …) so deeper code never re-validates strings.

pub mod agent;
pub mod api;
pub mod credits;
pub mod diff;
pub mod doc;
pub mod error;
pub mod fleet;
pub mod ids;
pub mod limits;
pub mod notify;
pub mod origin;
pub mod path;
pub mod protocol;
pub mod role;
pub mod room_api;
pub mod sandbox;
pub mod sites;
pub mod tokens;
pub mod tree;
pub mod usage;
pub mod validate;
pub mod webhooks;

pub use error::ErrorCode;
pub use path::ProjectPath;
pub use role::{Action, Role};
