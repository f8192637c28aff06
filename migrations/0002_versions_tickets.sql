-- Versions of a project's files (content lives in R2) and single-use WebSocket tickets.

CREATE TABLE versions (
  project_id   TEXT NOT NULL REFERENCES projects(id),
  number       INTEGER NOT NULL,               -- 1, 2, … per project; allocated in the INSERT
  message      TEXT NOT NULL,
  author       TEXT NOT NULL,                  -- a user id, or "agent"
  parent       INTEGER,                        -- the version before this one
  manifest_key TEXT NOT NULL,                  -- R2 key of {path → sha256}
  file_count   INTEGER NOT NULL,
  size         INTEGER NOT NULL,
  created_at   INTEGER NOT NULL,
  PRIMARY KEY (project_id, number)
);

-- A browser cannot set headers on a WebSocket: it may trade its session for a ticket that
-- is good for one connection to one project within a minute.
CREATE TABLE ws_tickets (
  id         TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL REFERENCES users(id),
  session_id TEXT NOT NULL REFERENCES sessions(id), -- revoking the session voids the ticket
  project_id TEXT NOT NULL REFERENCES projects(id),
  expires_at INTEGER NOT NULL,
  used_at    INTEGER
);
