//! The agent's pure parts: what it plans (`blueprint`), how it reads model output
//! (`file_stream`, `repeat`), the LLM wire formats (`llm`), who is asked with which
//! parameters (`roles`), what a prompt quotes (`context`), the pipeline's state machine
//! (`machine`), the follow-up tool loop (`tools`), hooks a model called at module scope moved
//! into their component (`hooks`), worked examples for a small model
//! (`examples`), the acceptance checks and how the check
//! runner's answers read (`checks`), `npm install` requests (`npm`) and what it asks the
//! models (`prompts`). No I/O: the room performs effects and feeds results back.

pub mod autofix;
pub mod blueprint;
pub mod checks;
pub mod context;
pub mod coverage;
pub mod driver;
pub mod examples;
pub mod file_stream;
pub mod hooks;
pub mod llm;
pub mod machine;
pub mod npm;
pub mod pipeline;
pub mod probes;
pub mod profile;
pub mod prompts;
pub mod repeat;
pub mod roles;
pub mod tools;
