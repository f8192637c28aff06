//! The agent's pure parts: what it plans (`blueprint`), how it reads model output
//! (`file_stream`). No I/O: the room performs effects and feeds results back.

pub mod blueprint;
pub mod file_stream;
pub mod llm;
