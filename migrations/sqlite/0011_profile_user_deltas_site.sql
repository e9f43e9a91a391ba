-- Every site-owned row carries its site, so that sites can later be spread
-- over database nodes; the rows of profiles' user counts (0006) did not.
-- Existing rows take their profile's site. A row whose profile is gone is
-- dropped: it belonged to a profile deleted without users, its rows summed
-- to naught, and the fold would have dropped it with nothing to add it to.
--
-- SQLite cannot make a column NOT NULL after adding it, and adding one NOT
-- NULL needs a default (which would hide a write that forgot the site), so
-- the table is rebuilt, the same way on both databases. Renaming it first
-- locks it on PostgreSQL until the migration commits, so no fold running
-- meanwhile can delete rows after they were copied and count them twice.
-- Still no foreign key: deleting a profile leaves its rows for the fold.
-- An instance of the previous release inserts rows without a site, which
-- this refuses: changes of users fail there until it runs this release.
-- Keep in step with ../postgres/0011_profile_user_deltas_site.sql.

ALTER TABLE profile_user_deltas RENAME TO profile_user_deltas_0006;
CREATE TABLE profile_user_deltas (
    site_id    BIGINT NOT NULL,
    profile_id BIGINT NOT NULL,
    delta      BIGINT NOT NULL
);
INSERT INTO profile_user_deltas (site_id, profile_id, delta)
    SELECT p.site_id, d.profile_id, d.delta FROM profile_user_deltas_0006 d JOIN profiles p ON p.id = d.profile_id;
DROP TABLE profile_user_deltas_0006;
CREATE INDEX profile_user_deltas_profile_idx ON profile_user_deltas (profile_id);
