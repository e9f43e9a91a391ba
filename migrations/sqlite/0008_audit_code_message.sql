-- An audit event's refusal code and message become columns of their own
-- (they were packed into `detail` as `CODE: message`), so clients read them
-- without parsing and the trail can be filtered by outcome cheaply.
-- Existing rows are split here, by the codes ever written; `detail` stays,
-- still written in its old form, so an instance of the previous release
-- keeps working during an upgrade (rows it writes are split when read).
-- Keep in step with ../postgres/0008_audit_code_message.sql.

ALTER TABLE audit_events ADD COLUMN code TEXT;
ALTER TABLE audit_events ADD COLUMN message TEXT;

CREATE TABLE audit_codes_0008 (code TEXT NOT NULL);
INSERT INTO audit_codes_0008 (code) VALUES
    ('FORBIDDEN'), ('LICENSE_LIMIT_EXCEEDED'), ('POOL_BELOW_USAGE'), ('USERNAME_TAKEN'),
    ('PROFILE_IN_USE'), ('PROFILE_NAME_TAKEN'), ('SITE_NAME_TAKEN'), ('PERSON_ALREADY_HAS_LOGIN'),
    ('PERSON_DELETED'), ('PERSON_HAS_RESPONSIBILITIES'), ('TOTALS_BELOW_USAGE'), ('WRONG_LICENSE_PATH'),
    ('ORDER_NOT_DRAFT'), ('REQUEST_NOT_PENDING');

UPDATE audit_events SET code = (
    SELECT c.code FROM audit_codes_0008 c
    WHERE substr(audit_events.detail, 1, length(c.code) + 2) = c.code || ': '
) WHERE outcome = 'REFUSED';
UPDATE audit_events SET message = CASE
    WHEN code IS NULL THEN detail
    ELSE substr(detail, length(code) + 3)
END;

DROP TABLE audit_codes_0008;

-- Refusals are few among many accepted changes: "a site's refusals, newest
-- first" reads this small index instead of the whole trail, and accepted
-- changes do not pay for it.
CREATE INDEX audit_events_site_refused_idx ON audit_events (site_id, id) WHERE outcome = 'REFUSED';
