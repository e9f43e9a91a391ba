-- Names are searched without regard to case the same way on both
-- databases: by a folded copy kept beside each searched name (a person's
-- name, an audit event's actor), which the application computes (Unicode
-- case folding, docs/architecture.md#search) and writes with the name.
-- SQL cannot compute that fold (SQLite's lower() folds only A-Z), so the
-- copies start NULL here and the application fills every row still NULL
-- right after migrating, before it serves, on every start (idempotent);
-- that pass also brings the name keys of profiles and sites to the same
-- folding. A row written by an instance of the previous release during an
-- upgrade is filled at the next start (or `migrate`) of this one.
-- The searches match anywhere in a name (LIKE '%...%'), which no b-tree
-- index serves, so the copies get none; the partial indexes only find the
-- rows still to fill, and are empty once they are.
-- Keep in step with ../sqlite/0009_folded_names.sql.

ALTER TABLE people ADD COLUMN name_folded TEXT;
ALTER TABLE audit_events ADD COLUMN actor_folded TEXT;
CREATE INDEX people_unfolded_idx ON people (id) WHERE name_folded IS NULL;
CREATE INDEX audit_events_unfolded_idx ON audit_events (id) WHERE actor_folded IS NULL;
