-- license-gateway core schema (SQLite). Keep in step with ../postgres/0001_core.sql:
-- the two files differ only where the dialects do (identity columns).
-- Every site-owned row carries site_id, and composite foreign keys make a
-- cross-site reference impossible (DOMAIN.md R13). Flags are INTEGER 0/1 on
-- both backends because sqlx's Any driver carries no SQLite booleans.

CREATE TABLE modules (
    id       BIGINT PRIMARY KEY,
    code     TEXT NOT NULL UNIQUE,
    name     TEXT NOT NULL
);
INSERT INTO modules (id, code, name) VALUES (1, 'CASE', 'Case'), (2, 'DOCUMENT', 'Document');

CREATE TABLE sites (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    name_key   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT sites_name_key UNIQUE (name_key)
);

CREATE TABLE agreements (
    id           INTEGER PRIMARY KEY,
    site_id      BIGINT NOT NULL REFERENCES sites (id),
    name         TEXT NOT NULL,
    self_service INTEGER NOT NULL DEFAULT 0 CHECK (self_service IN (0, 1)),
    created_at   BIGINT NOT NULL,
    CONSTRAINT agreements_site_key UNIQUE (site_id)
);

-- One pool per (site, module). `used` is a counter maintained in the same
-- transaction as every change that occupies or frees a license (R2, R4, R6);
-- the checks are the last line of defence behind the conditional updates.
CREATE TABLE license_pools (
    site_id   BIGINT NOT NULL REFERENCES sites (id),
    module_id BIGINT NOT NULL REFERENCES modules (id),
    total     BIGINT NOT NULL,
    used      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (site_id, module_id),
    CONSTRAINT license_pools_total_nonnegative CHECK (total >= 0),
    CONSTRAINT license_pools_used_nonnegative CHECK (used >= 0),
    CONSTRAINT license_pools_not_overallocated CHECK (used <= total)
);

CREATE TABLE people (
    id         INTEGER PRIMARY KEY,
    site_id    BIGINT NOT NULL REFERENCES sites (id),
    name       TEXT NOT NULL,
    email      TEXT,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT,
    CONSTRAINT people_site_id_key UNIQUE (site_id, id)
);
CREATE INDEX people_site_name_idx ON people (site_id, name, id);

-- user_count = logins on this profile that occupy licenses. Every change of
-- a login's profile or of a profile's modules updates this row first, so the
-- row lock serialises the two (a login never misses a module being added).
CREATE TABLE profiles (
    id         INTEGER PRIMARY KEY,
    site_id    BIGINT NOT NULL REFERENCES sites (id),
    name       TEXT NOT NULL,
    name_key   TEXT NOT NULL,
    user_count BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    CONSTRAINT profiles_site_id_key UNIQUE (site_id, id),
    CONSTRAINT profiles_name_key UNIQUE (site_id, name_key),
    CONSTRAINT profiles_user_count_nonnegative CHECK (user_count >= 0)
);

CREATE TABLE profile_modules (
    site_id    BIGINT NOT NULL,
    profile_id BIGINT NOT NULL,
    module_id  BIGINT NOT NULL,
    PRIMARY KEY (profile_id, module_id),
    FOREIGN KEY (site_id, profile_id) REFERENCES profiles (site_id, id) ON DELETE CASCADE,
    FOREIGN KEY (site_id, module_id) REFERENCES license_pools (site_id, module_id)
);

-- Usernames are unique in the whole installation, without case, across
-- site logins and operator accounts alike (DOMAIN.md decisions).
CREATE TABLE usernames (
    username_key TEXT PRIMARY KEY,
    kind         TEXT NOT NULL
);

-- A login makes a person a user (R1). `occupying` is true while the login and
-- its person are both live: exactly the logins that hold licenses (R2).
CREATE TABLE logins (
    id            INTEGER PRIMARY KEY,
    site_id       BIGINT NOT NULL,
    person_id     BIGINT NOT NULL,
    username      TEXT NOT NULL,
    username_key  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    valid_until   TEXT,
    profile_id    BIGINT NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    occupying     INTEGER NOT NULL DEFAULT 1 CHECK (occupying IN (0, 1)),
    lock_version  BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    deleted_at    BIGINT,
    FOREIGN KEY (site_id, person_id) REFERENCES people (site_id, id),
    FOREIGN KEY (site_id, profile_id) REFERENCES profiles (site_id, id),
    CONSTRAINT logins_valid_until_is_date CHECK (valid_until IS NULL OR length(valid_until) = 10)
);
CREATE UNIQUE INDEX logins_live_person_key ON logins (person_id) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX logins_live_username_key ON logins (username_key) WHERE deleted_at IS NULL;
CREATE INDEX logins_site_username_idx ON logins (site_id, username_key) WHERE deleted_at IS NULL;
CREATE INDEX logins_profile_idx ON logins (profile_id);

CREATE TABLE operators (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL,
    username_key  TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- Opaque bearer sessions; only the SHA-256 of the token is stored.
CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    operator_id BIGINT REFERENCES operators (id),
    login_id    BIGINT REFERENCES logins (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    CONSTRAINT sessions_one_principal CHECK ((operator_id IS NULL) <> (login_id IS NULL))
);
CREATE INDEX sessions_login_idx ON sessions (login_id);

-- Every accepted and every refused change, with its actor's name copied so
-- it survives deletion (R7).
CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY,
    site_id    BIGINT,
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    rule       TEXT,
    detail     TEXT NOT NULL
);
CREATE INDEX audit_events_site_idx ON audit_events (site_id, id);
