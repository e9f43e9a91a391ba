-- Each pool counts its changes: the statement that changes `used` or
-- `total` adds one to `version` in the same row, so of two reads of a pool
-- the one with the higher version is the newer. Live subscribers are sent
-- pools only in increasing versions, and clients can compare them.
-- Keep in step with ../sqlite/0010_pool_versions.sql.

ALTER TABLE license_pools ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
