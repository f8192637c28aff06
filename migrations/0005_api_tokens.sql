-- Personal API tokens for scripts and CI. Only the sha256 of a token is kept; it is shown
-- once. `id` is shaped like a session id: a token's sockets and grants are tied to it the
-- way a session's are, and revoking it closes them.
CREATE TABLE api_tokens (
  id           TEXT PRIMARY KEY,
  user_id      TEXT NOT NULL REFERENCES users(id),
  name         TEXT NOT NULL,
  token_hash   TEXT NOT NULL UNIQUE,
  scopes       TEXT NOT NULL,                    -- comma-separated: read, write, generate
  org_id       TEXT REFERENCES orgs(id),         -- restricted to one org, or NULL
  project_id   TEXT REFERENCES projects(id),     -- restricted to one project, or NULL
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER,                          -- NULL: until revoked
  last_used_at INTEGER,
  revoked_at   INTEGER
);
CREATE INDEX api_tokens_by_user ON api_tokens(user_id, created_at);

-- Sockets are now held by a session or a token: the holder is either, so no foreign key.
CREATE TABLE socket_holders (
  session_id TEXT NOT NULL,                    -- sessions.id or api_tokens.id
  project_id TEXT NOT NULL REFERENCES projects(id),
  PRIMARY KEY (session_id, project_id)
);
INSERT INTO socket_holders (session_id, project_id)
  SELECT session_id, project_id FROM socket_sessions;
DROP TABLE socket_sessions;
ALTER TABLE socket_holders RENAME TO socket_sessions;
