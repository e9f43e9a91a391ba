-- Failed sign-ins, counted per subject: a username (`user:` and the SHA-256
-- of its lower-cased form, so mistyped secrets are not kept in clear) or a
-- client address (`addr:` and the address, IPv6 by its /64). Every instance
-- decides with conditional statements on these rows, so the count holds
-- across instances and concurrent attempts.
--   failures      attempts charged in the window that began at window_start
--                 (charged before the password is checked; a right password
--                 clears or refunds its charge)
--   locked_until  no attempt is admitted before this time (seconds)
--   lockouts      lockouts so far: each doubles the next one's length
--   forget_at     after this time the row means nothing and may be deleted
CREATE TABLE sign_in_throttle (
    subject      TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL CHECK (failures >= 0),
    window_start BIGINT NOT NULL,
    locked_until BIGINT NOT NULL DEFAULT 0,
    lockouts     BIGINT NOT NULL DEFAULT 0 CHECK (lockouts >= 0),
    forget_at    BIGINT NOT NULL
);
CREATE INDEX sign_in_throttle_forget_idx ON sign_in_throttle (forget_at);
