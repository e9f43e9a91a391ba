-- EXTRA_SQL of compare-ours.sh, applied to compare.sh's `app` seed before our server runs (and
-- only then: compare.sh seeds afresh for every server). In our domain a deleted person's login
-- is deleted with them (R6, R7); seed.sql keeps those logins. Removing them from the `app` copy
-- makes compare.sh's reference Q1 (first 50 logins by username) the same set of users as ours.
-- Pool usage is unchanged: it never counted deleted people.
\set ON_ERROR_STOP on
DELETE FROM app.logins l USING app.people p WHERE p.id = l.person_id AND p.deleted_at IS NOT NULL;
