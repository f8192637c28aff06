-- Published sites (core::sites): one per project, on a host of its own. The row points at
-- one manifest in R2; a publish switches `manifest_key` in one UPDATE, so a request that
-- reads the row once sees one whole site. The previous manifest is kept so that a page
-- loaded just before a switch still gets its hashed assets.
CREATE TABLE sites (
  project_id        TEXT PRIMARY KEY REFERENCES projects(id),
  slug              TEXT NOT NULL UNIQUE,
  state             TEXT NOT NULL,            -- core::sites::PublishState
  manifest_key      TEXT,                     -- NULL: nothing is live
  previous_key      TEXT,
  version           INTEGER,                  -- the live version
  job_id            TEXT,                     -- the build running or last run
  building_version  INTEGER,
  error             TEXT,
  published_at      INTEGER,
  published_by      TEXT REFERENCES users(id),
  updated_at        INTEGER NOT NULL
);
