-- Every site-owned row carries its site, so that sites can later be spread
-- over database nodes; the rows of profiles' user counts (0006) did not.
-- Existing rows take their profile's site. A row whose profile is gone is
-- dropped: it belonged to a profile deleted without users, its rows summed
-- to naught, and the fold would have dropped it with nothing to add it to.
--
-- The column stays nullable for one release (expand, then contract): an
-- instance of the previous release, still running during a rolling
-- upgrade, inserts rows without a site, and must keep working. The fold
-- does not read the site. A later migration fills what such instances left
-- and makes the column NOT NULL (on SQLite by rebuilding the table).
-- Keep in step with ../postgres/0011_profile_user_deltas_site.sql.

ALTER TABLE profile_user_deltas ADD COLUMN site_id BIGINT;
DELETE FROM profile_user_deltas WHERE NOT EXISTS (SELECT 1 FROM profiles p WHERE p.id = profile_user_deltas.profile_id);
UPDATE profile_user_deltas SET site_id = (SELECT p.site_id FROM profiles p WHERE p.id = profile_user_deltas.profile_id);
