-- License lifecycle (DOMAIN.md R6, R7, R10, R11, R12): agreement owners,
-- license orders, change requests, responsibilities, restorable logins and
-- an audit trail whose actors keep their names (R7).
-- Keep in step with ../postgres/0003_lifecycle.sql.

CREATE TABLE owner_accounts (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    username      TEXT NOT NULL,
    username_key  TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

ALTER TABLE agreements ADD COLUMN owner_id BIGINT REFERENCES owner_accounts (id);
CREATE INDEX agreements_owner_idx ON agreements (owner_id);

-- Sessions now belong to one of three kinds of account.
DROP TABLE sessions;
CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    operator_id BIGINT REFERENCES operators (id),
    login_id    BIGINT REFERENCES logins (id),
    owner_id    BIGINT REFERENCES owner_accounts (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    CONSTRAINT sessions_one_principal CHECK (
        (CASE WHEN operator_id IS NULL THEN 0 ELSE 1 END)
      + (CASE WHEN login_id IS NULL THEN 0 ELSE 1 END)
      + (CASE WHEN owner_id IS NULL THEN 0 ELSE 1 END) = 1)
);
CREATE INDEX sessions_login_idx ON sessions (login_id);

-- A login deleted together with its person comes back when the person is restored.
ALTER TABLE logins ADD COLUMN deleted_with_person INTEGER NOT NULL DEFAULT 0 CHECK (deleted_with_person IN (0, 1));
CREATE INDEX logins_person_idx ON logins (person_id, id);

-- Actors: kind (OPERATOR, OWNER, LOGIN, SYSTEM), account id, and for site
-- logins the person, whose name and deletion the API shows (R7).
ALTER TABLE audit_events ADD COLUMN actor_kind TEXT NOT NULL DEFAULT 'SYSTEM';
ALTER TABLE audit_events ADD COLUMN actor_person_id BIGINT;
ALTER TABLE audit_events ADD COLUMN target_person_id BIGINT;
ALTER TABLE audit_events ADD COLUMN pools TEXT NOT NULL DEFAULT '[]';
CREATE INDEX audit_events_site_at_idx ON audit_events (site_id, at, id);

CREATE TABLE license_orders (
    id                 INTEGER PRIMARY KEY,
    site_id            BIGINT NOT NULL REFERENCES sites (id),
    status             TEXT NOT NULL,
    created_by         TEXT NOT NULL,
    created_by_person  BIGINT,
    created_at         BIGINT NOT NULL,
    checked_out_by     TEXT,
    checked_out_person BIGINT,
    checked_out_at     BIGINT,
    idempotency_key    TEXT,
    CONSTRAINT license_orders_status CHECK (status IN ('DRAFT', 'CHECKED_OUT', 'DISCARDED')),
    CONSTRAINT license_orders_idempotency_key UNIQUE (site_id, idempotency_key),
    CONSTRAINT license_orders_site_id_key UNIQUE (site_id, id)
);
CREATE INDEX license_orders_site_idx ON license_orders (site_id, id);

CREATE TABLE license_order_lines (
    order_id     BIGINT NOT NULL REFERENCES license_orders (id) ON DELETE CASCADE,
    module_id    BIGINT NOT NULL REFERENCES modules (id),
    new_total    BIGINT NOT NULL,
    total_before BIGINT,
    total_after  BIGINT,
    PRIMARY KEY (order_id, module_id),
    CONSTRAINT license_order_lines_total_nonnegative CHECK (new_total >= 0)
);

CREATE TABLE change_requests (
    id                 INTEGER PRIMARY KEY,
    site_id            BIGINT NOT NULL REFERENCES sites (id),
    status             TEXT NOT NULL,
    message            TEXT NOT NULL,
    requested_by       TEXT NOT NULL,
    requested_by_kind  TEXT NOT NULL,
    requested_by_id    BIGINT NOT NULL,
    requested_person   BIGINT,
    created_at         BIGINT NOT NULL,
    decided_by         TEXT,
    decided_at         BIGINT,
    reason             TEXT,
    CONSTRAINT change_requests_status CHECK (status IN ('PENDING', 'APPROVED', 'REJECTED', 'CANCELLED'))
);
CREATE INDEX change_requests_site_idx ON change_requests (site_id, id);
CREATE INDEX change_requests_status_idx ON change_requests (status, id);

CREATE TABLE change_request_lines (
    request_id   BIGINT NOT NULL REFERENCES change_requests (id) ON DELETE CASCADE,
    module_id    BIGINT NOT NULL REFERENCES modules (id),
    new_total    BIGINT NOT NULL,
    total_before BIGINT,
    total_after  BIGINT,
    PRIMARY KEY (request_id, module_id),
    CONSTRAINT change_request_lines_total_nonnegative CHECK (new_total >= 0)
);

-- Things a person is responsible for on the site (R12).
CREATE TABLE responsibilities (
    id         INTEGER PRIMARY KEY,
    site_id    BIGINT NOT NULL,
    person_id  BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    FOREIGN KEY (site_id, person_id) REFERENCES people (site_id, id),
    CONSTRAINT responsibilities_kind CHECK (kind IN ('FORM', 'DOCUMENT_FOLDER'))
);
CREATE INDEX responsibilities_person_idx ON responsibilities (person_id, id);
