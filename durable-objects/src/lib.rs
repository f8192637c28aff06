//! `kiln-durable-objects`: the `ProjectRoom` Durable Object, one per project
//! (`idFromName(project_id)`), linked into the Worker's wasm.
//!
//! The room is the only writer of a project's files and agent state (invariant 1). It knows
//! nothing about HTTP auth: the Worker authorises every request before forwarding it here.

mod room;

pub use room::ProjectRoom;
