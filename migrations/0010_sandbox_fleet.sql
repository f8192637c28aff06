-- The sandbox fleet (core::fleet): sandbox-proxy hosts that beat to the edge, and where
-- each project's sandbox lives. A host row is written only by that host's own beats; a
-- placement is chosen and written in one statement, so concurrent rooms serialize in D1.
CREATE TABLE sandbox_hosts (
  id              TEXT PRIMARY KEY,          -- the credential's host_id
  url             TEXT NOT NULL,             -- origin the edge calls (/v1/...)
  capacity        INTEGER NOT NULL,
  running         INTEGER NOT NULL,
  draining        INTEGER NOT NULL DEFAULT 0,
  last_beat       INTEGER NOT NULL,          -- ms; older than KILN_FLEET_TTL_MS: lost
  registered_at   INTEGER NOT NULL
);

CREATE TABLE sandbox_placements (
  project_id      TEXT PRIMARY KEY,
  host_id         TEXT NOT NULL REFERENCES sandbox_hosts(id),
  placed_at       INTEGER NOT NULL
);
CREATE INDEX sandbox_placements_by_host ON sandbox_placements(host_id);
