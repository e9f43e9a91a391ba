-- A profile's user count is `profiles.user_count` plus the sum of its rows
-- here. A change of users (a login created, moved, deleted or restored)
-- inserts a row instead of updating the profile, so concurrent changes
-- never wait for each other on a profile's row; they hold a shared lock on
-- it, which only a change of the profile itself (its modules, its deletion)
-- waits for. The gateway folds the rows into `user_count` now and then.
CREATE TABLE profile_user_deltas (
    profile_id BIGINT NOT NULL,
    delta      BIGINT NOT NULL
);
CREATE INDEX profile_user_deltas_profile_idx ON profile_user_deltas (profile_id);
