-- `logins.lock_version` was never read or written by the gateway: row locks
-- (on SQLite the one writer at a time) and conditional updates in one
-- transaction serialise the changes of a login.
ALTER TABLE logins DROP COLUMN lock_version;
