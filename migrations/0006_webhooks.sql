-- Inbound webhooks: a signed POST /hooks/<id> starts a generation in the hook's project.
-- The secret must verify HMACs, so it is kept as is (it is shown to its maker once); a
-- rotated-out one keeps verifying until `previous_until`.
CREATE TABLE webhooks (
  id              TEXT PRIMARY KEY,
  project_id      TEXT NOT NULL REFERENCES projects(id),
  created_by      TEXT NOT NULL REFERENCES users(id),
  kind            TEXT NOT NULL CHECK (kind IN ('kiln', 'github')),
  prompt_template TEXT NOT NULL,
  filters         TEXT NOT NULL,          -- JSON (core::webhooks::HookFilters)
  template        TEXT,                   -- the app template of new generations; NULL: default
  secret          TEXT NOT NULL,
  previous_secret TEXT,
  previous_until  INTEGER,
  created_at      INTEGER NOT NULL,
  deleted_at      INTEGER
);
CREATE INDEX webhooks_by_project ON webhooks(project_id, created_at);

-- One row per (hook, delivery id): the primary key makes a repeated delivery a no-op, so
-- concurrent copies start one generation.
CREATE TABLE webhook_deliveries (
  hook_id       TEXT NOT NULL REFERENCES webhooks(id),
  delivery_id   TEXT NOT NULL,
  received_at   INTEGER NOT NULL,
  status        INTEGER NOT NULL,          -- 102 while it is being handled
  generation_id TEXT,
  error         TEXT,
  PRIMARY KEY (hook_id, delivery_id)
);
CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries(hook_id, received_at);
