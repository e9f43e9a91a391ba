-- A profile's module set carries a version, raised by every change of the set,
-- so a license move planned on a lock-free read can check, under the profile
-- row lock, that the modules it counted are still the profile's (R2, R4).
-- logins.lock_version has been unused since row locks became SELECT ... FOR UPDATE.
-- Keep in step with ../postgres/0004_profile_modules_version.sql.
ALTER TABLE profiles ADD COLUMN modules_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE logins DROP COLUMN lock_version;
