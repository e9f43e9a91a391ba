-- no-transaction
-- A deleted profile's or responsibility's id is never given to another row.
-- Without AUTOINCREMENT, SQLite numbers a new row max(id) + 1, so deleting the
-- newest profile handed its id (Profile:N, and the audit trail's `profile:N`)
-- to the next profile created. PostgreSQL's identity columns never reuse ids.
-- SQLite cannot add AUTOINCREMENT to a table, so both tables are rebuilt the
-- way https://sqlite.org/lang_altertable.html#otheralter describes: foreign
-- keys off (dropping the old table must cascade nothing to profile_modules),
-- one transaction for the rebuild, foreign keys back on. The copied ids seed
-- sqlite_sequence, so no id in use now is given again either.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

CREATE TABLE profiles_rebuilt (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id    BIGINT NOT NULL REFERENCES sites (id),
    name       TEXT NOT NULL,
    name_key   TEXT NOT NULL,
    user_count BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    CONSTRAINT profiles_site_id_key UNIQUE (site_id, id),
    CONSTRAINT profiles_name_key UNIQUE (site_id, name_key),
    CONSTRAINT profiles_user_count_nonnegative CHECK (user_count >= 0)
);
INSERT INTO profiles_rebuilt (id, site_id, name, name_key, user_count, created_at)
    SELECT id, site_id, name, name_key, user_count, created_at FROM profiles;
DROP TABLE profiles;
ALTER TABLE profiles_rebuilt RENAME TO profiles;

CREATE TABLE responsibilities_rebuilt (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id    BIGINT NOT NULL,
    person_id  BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    FOREIGN KEY (site_id, person_id) REFERENCES people (site_id, id),
    CONSTRAINT responsibilities_kind CHECK (kind IN ('FORM', 'DOCUMENT_FOLDER'))
);
INSERT INTO responsibilities_rebuilt (id, site_id, person_id, kind, name, created_at)
    SELECT id, site_id, person_id, kind, name, created_at FROM responsibilities;
DROP TABLE responsibilities;
ALTER TABLE responsibilities_rebuilt RENAME TO responsibilities;
CREATE INDEX responsibilities_person_idx ON responsibilities (person_id, id);

COMMIT;
PRAGMA foreign_keys = ON;
