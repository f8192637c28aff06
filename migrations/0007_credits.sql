-- Each org's credit, in micro-dollars. The balance row is what model calls spend from: a debit
-- never takes it below zero (one statement: MAX(balance - cost, 0)), so racing debits cannot
-- make it negative, and the CHECK holds whatever a statement does. The ledger keeps every
-- grant and every debit as applied.
CREATE TABLE credit_balances (
  org_id         TEXT PRIMARY KEY REFERENCES orgs(id),
  balance_micros INTEGER NOT NULL CHECK (balance_micros >= 0),
  updated_at     INTEGER NOT NULL
);

CREATE TABLE credit_ledger (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  org_id        TEXT NOT NULL REFERENCES orgs(id),
  -- grant (+), hold (-: what a starting generation sets aside), release (+: what it did
  -- not spend), debit (-: spent beyond its hold, as applied). They sum to the balance.
  kind          TEXT NOT NULL CHECK (kind IN ('grant', 'hold', 'release', 'debit')),
  amount_micros INTEGER NOT NULL,
  reason        TEXT NOT NULL,
  project_id    TEXT,
  generation_id TEXT,
  created_at    INTEGER NOT NULL
);
CREATE INDEX credit_ledger_by_org ON credit_ledger(org_id, id);

-- Orgs made before credits existed start with the default grant, as new ones do.
INSERT INTO credit_balances (org_id, balance_micros, updated_at)
  SELECT id, 5000000, created_at FROM orgs;
INSERT INTO credit_ledger (org_id, kind, amount_micros, reason, created_at)
  SELECT id, 'grant', 5000000, 'starting credit', created_at FROM orgs;
