-- Outgoing notifications: a project's URLs that receive generation.completed / .failed,
-- signed with their secret (kept as is: it must sign; shown to its maker once).
CREATE TABLE notify_targets (
  id          TEXT PRIMARY KEY,
  project_id  TEXT NOT NULL REFERENCES projects(id),
  url         TEXT NOT NULL,
  secret      TEXT NOT NULL,
  events      TEXT NOT NULL,              -- JSON array of core::notify::EVENTS
  created_by  TEXT NOT NULL REFERENCES users(id),
  created_at  INTEGER NOT NULL,
  deleted_at  INTEGER
);
CREATE INDEX notify_targets_by_project ON notify_targets(project_id, created_at);

-- Every attempt of every delivery, for the target's log.
CREATE TABLE notify_attempts (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  target_id   TEXT NOT NULL REFERENCES notify_targets(id),
  event_id    TEXT NOT NULL,
  event       TEXT NOT NULL,
  attempt     INTEGER NOT NULL,
  status      INTEGER,                    -- the receiver's HTTP status; NULL: no answer
  error       TEXT,
  at          INTEGER NOT NULL
);
CREATE INDEX notify_attempts_by_target ON notify_attempts(target_id, id);
