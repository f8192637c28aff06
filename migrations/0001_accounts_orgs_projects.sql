-- Accounts, orgs with roles, projects. Timestamps are milliseconds since the Unix epoch.

CREATE TABLE users (
  id            TEXT PRIMARY KEY,
  email         TEXT NOT NULL UNIQUE,          -- normalised: trimmed, lower-case
  password_hash TEXT NOT NULL,                 -- pbkdf2-sha256$iterations$salt$hash
  created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
  id         TEXT PRIMARY KEY,                 -- the JWT's jti
  user_id    TEXT NOT NULL REFERENCES users(id),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE INDEX sessions_by_user ON sessions(user_id);

CREATE TABLE orgs (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  personal_of TEXT UNIQUE REFERENCES users(id), -- set on the org a user gets at registration
  created_at  INTEGER NOT NULL
);

CREATE TABLE memberships (
  org_id     TEXT NOT NULL REFERENCES orgs(id),
  user_id    TEXT NOT NULL REFERENCES users(id),
  role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'client')),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships(user_id);

CREATE TABLE projects (
  id          TEXT PRIMARY KEY,
  org_id      TEXT NOT NULL REFERENCES orgs(id),
  name        TEXT NOT NULL,
  description TEXT,
  created_by  TEXT NOT NULL REFERENCES users(id),
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  deleted_at  INTEGER                          -- soft delete: gone from lists and reads
);
-- Newest-first pages per org, live projects only.
CREATE INDEX projects_by_org_newest ON projects(org_id, created_at DESC, id DESC)
  WHERE deleted_at IS NULL;
