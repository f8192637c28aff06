//! The agent's pure parts: what it plans (`blueprint`), how it reads model output
//! (`file_stream`), the LLM wire formats (`llm`), the pipeline's state machine (`machine`)
//! and what it asks the models (`prompts`). No I/O: the room performs effects and feeds
//! results back.

pub mod autofix;
pub mod blueprint;
pub mod checks;
pub mod file_stream;
pub mod llm;
pub mod machine;
pub mod prompts;
pub mod tools;
