-- Preview links, invitations, and which sessions hold sockets to which projects.

-- A preview link is good once, for one project, within two minutes: opening it on the
-- project's preview host trades it for a cookie of that host. Only its sha256 is stored.
CREATE TABLE preview_links (
  token_hash TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL REFERENCES users(id),
  session_id TEXT NOT NULL REFERENCES sessions(id), -- revoking the session voids the link
  project_id TEXT NOT NULL REFERENCES projects(id),
  expires_at INTEGER NOT NULL,
  used_at    INTEGER
);

-- Adding someone to an org is an invitation they answer from their own session; until then
-- they are not a member. Keyed by email, so the inviter learns nothing about accounts.
CREATE TABLE invitations (
  id          TEXT PRIMARY KEY,
  org_id      TEXT NOT NULL REFERENCES orgs(id),
  email       TEXT NOT NULL,                   -- normalised like users.email
  role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'client')),
  invited_by  TEXT NOT NULL REFERENCES users(id),
  status      TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'declined', 'revoked')),
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  answered_at INTEGER
);
-- One open invitation per person per org.
CREATE UNIQUE INDEX invitations_pending ON invitations(org_id, email) WHERE status = 'pending';
CREATE INDEX invitations_by_email ON invitations(email, status);

-- Every WebSocket a session opened, by project, so that logging out closes them.
CREATE TABLE socket_sessions (
  session_id TEXT NOT NULL REFERENCES sessions(id),
  project_id TEXT NOT NULL REFERENCES projects(id),
  PRIMARY KEY (session_id, project_id)
);
