-- Every LLM call the agent makes: the cost log.
CREATE TABLE ai_calls (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id    TEXT NOT NULL REFERENCES projects(id),
  generation_id TEXT NOT NULL,
  role          TEXT NOT NULL,             -- planner, coder, fixer
  model         TEXT NOT NULL,
  input_tokens  INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL,
  cost_micros   INTEGER NOT NULL,          -- millionths of a US dollar
  latency_ms    INTEGER NOT NULL,
  status        TEXT NOT NULL,             -- ok, error
  error         TEXT,
  created_at    INTEGER NOT NULL
);
CREATE INDEX ai_calls_by_project ON ai_calls(project_id, created_at);
