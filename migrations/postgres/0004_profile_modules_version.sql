-- A profile's modules_version counts the changes of its modules (R2, R4).
-- A change of modules bumps it in the transaction that holds the profile's
-- row lock. A login moving between two profiles locks both and gets their
-- versions back from that same statement: when they equal the versions its
-- lock-free read saw, the modules it read then are still the modules now,
-- and it needs no second read of profile_modules under the locks.
-- Keep in step with ../sqlite/0004_profile_modules_version.sql.

ALTER TABLE profiles ADD COLUMN modules_version BIGINT NOT NULL DEFAULT 0;
