//! Writes, always inside a [`Tx`]. Locks are taken in one fixed order —
//! person, login, profiles (by id), pools (by module id) — so concurrent
//! transactions never wait on each other in a cycle. Capacity (R4) and
//! reduction (R5) are conditional updates: the row lock and the condition are
//! one statement, which stays correct with any number of gateway processes.

use sqlx::Row;

use super::forget_idle_if_unreachable;
use super::sql::Sql;

use super::live::{self, Announcement};
use super::reads::{
    LOGIN_RETURNING, LOGIN_SELECT, PERSON_RETURNING, login_from, person_from, pool_from, profile_columns, profile_from,
    profiles_with_users,
};
use super::{AnyQuery, Backend, SessionGuard, Store, StoreResult, Tx};
use crate::domain::*;

/// A new login's fields.
pub struct NewLogin<'a> {
    pub site: SiteId,
    pub person: PersonId,
    pub username: &'a Username,
    pub password_hash: &'a str,
    pub valid_until: Option<Date>,
    pub profile: ProfileId,
    pub is_admin: bool,
    pub now: i64,
}

/// An audit event: every accepted and every refused change.
pub struct AuditEvent<'a> {
    pub site: Option<SiteId>,
    pub actor: &'a Actor,
    pub action: &'a str,
    pub target: &'a str,
    pub target_person: Option<PersonId>,
    pub outcome: &'a str,
    pub rule: Option<&'a str>,
    /// A refusal's stable code (`NOT_FOUND`, `LICENSE_LIMIT_EXCEEDED`, ...).
    pub code: Option<&'a str>,
    /// A refusal's message as its answer gave it; for other events a note.
    pub message: String,
    pub pools: &'a [PoolChange],
}

impl Tx {
    pub async fn insert_operator(&mut self, username: &Username, password_hash: &str, now: i64) -> StoreResult<bool> {
        if !self.reserve_username(&username.key(), "OPERATOR").await? {
            return Ok(false);
        }
        let sql = "INSERT INTO operators (username, username_key, password_hash, created_at) VALUES ($1, $2, $3, $4)";
        self.execute(
            sqlx::query(sql)
                .bind(username.as_str().to_string())
                .bind(username.key())
                .bind(password_hash.to_string())
                .bind(now),
        )
        .await?;
        Ok(true)
    }

    pub async fn operator_count(&mut self) -> StoreResult<i64> {
        let row = self.fetch_optional(sqlx::query("SELECT COUNT(*) AS n FROM operators")).await?;
        Ok(row.map(|r| r.try_get("n")).transpose()?.unwrap_or(0))
    }

    /// Claims `key` in the installation-wide username registry; false when taken.
    pub async fn reserve_username(&mut self, key: &str, kind: &str) -> StoreResult<bool> {
        let sql = "INSERT INTO usernames (username_key, kind) VALUES ($1, $2) ON CONFLICT (username_key) DO NOTHING";
        Ok(self.execute(sqlx::query(sql).bind(key.to_string()).bind(kind.to_string())).await? == 1)
    }

    pub async fn release_username(&mut self, key: &str) -> StoreResult<()> {
        self.execute(sqlx::query("DELETE FROM usernames WHERE username_key = $1").bind(key.to_string())).await?;
        Ok(())
    }

    /// Inserts a site; `None` when the name is taken.
    pub async fn insert_site(&mut self, name: &SiteName, now: i64) -> StoreResult<Option<SiteId>> {
        let sql = "INSERT INTO sites (name, name_key, created_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (name_key) DO NOTHING RETURNING id";
        let row =
            self.fetch_optional(sqlx::query(sql).bind(name.as_str().to_string()).bind(name.key()).bind(now)).await?;
        row.map(|r| r.try_get("id").map(SiteId)).transpose()
    }

    pub async fn insert_agreement(
        &mut self,
        site: SiteId,
        name: &AgreementName,
        self_service: bool,
        now: i64,
    ) -> StoreResult<()> {
        let sql = "INSERT INTO agreements (site_id, name, self_service, created_at) VALUES ($1, $2, $3, $4)";
        self.execute(sqlx::query(sql).bind(site.0).bind(name.as_str().to_string()).bind(self_service as i64).bind(now))
            .await?;
        Ok(())
    }

    pub async fn insert_pool(&mut self, site: SiteId, module: ModuleId, total: LicenseTotal) -> StoreResult<()> {
        let sql = "INSERT INTO license_pools (site_id, module_id, total, used) VALUES ($1, $2, $3, 0)";
        self.execute(sqlx::query(sql).bind(site.0).bind(module.0).bind(total.get())).await?;
        Ok(())
    }

    pub async fn modules(&mut self) -> StoreResult<Vec<Module>> {
        let rows = self.fetch_all(sqlx::query("SELECT id, code, name FROM modules ORDER BY id")).await?;
        rows.iter()
            .map(|r| Ok(Module { id: ModuleId(r.try_get("id")?), code: r.try_get("code")?, name: r.try_get("name")? }))
            .collect()
    }

    pub async fn self_service(&mut self, site: SiteId) -> StoreResult<bool> {
        let row = self
            .fetch_optional(sqlx::query("SELECT self_service FROM agreements WHERE site_id = $1").bind(site.0))
            .await?;
        Ok(row.map(|r| r.try_get::<i64, _>("self_service")).transpose()?.unwrap_or(0) != 0)
    }

    pub async fn site_exists(&mut self, site: SiteId) -> StoreResult<bool> {
        Ok(self.fetch_optional(sqlx::query("SELECT id FROM sites WHERE id = $1").bind(site.0)).await?.is_some())
    }

    /// What a refused consuming change reports, in one statement: the site's
    /// pools, every module (a change may ask for one the site has no pool of),
    /// and whether the site's agreement is self-service.
    pub async fn shortage_context(&mut self, site: SiteId) -> StoreResult<(Vec<Pool>, Vec<Module>, bool)> {
        let sql = "SELECT m.id AS module_id, m.code, m.name, lp.site_id, lp.total, lp.used, lp.version, \
                   (SELECT a.self_service FROM agreements a WHERE a.site_id = $1) AS self_service \
                   FROM modules m LEFT JOIN license_pools lp ON lp.module_id = m.id AND lp.site_id = $1 \
                   ORDER BY m.id";
        let rows = self.fetch_all(sqlx::query(sql).bind(site.0)).await?;
        let (mut pools, mut modules, mut self_service) = (Vec::new(), Vec::new(), false);
        for row in &rows {
            let module = ModuleId(row.try_get("module_id")?);
            modules.push(Module { id: module, code: row.try_get("code")?, name: row.try_get("name")? });
            if row.try_get::<Option<i64>, _>("site_id")?.is_some() {
                pools.push(Pool {
                    site_id: site,
                    module_id: module,
                    total: row.try_get("total")?,
                    used: row.try_get("used")?,
                    version: row.try_get("version")?,
                });
            }
            self_service = row.try_get::<Option<i64>, _>("self_service")?.unwrap_or(0) != 0;
        }
        Ok((pools, modules, self_service))
    }

    /// Adds `delta` to a pool's usage if the result stays within its total
    /// (R4); false when it would not. Negative deltas (R6) always apply.
    /// The row lock and the check are one statement.
    pub async fn apply_pool_delta(&mut self, site: SiteId, module: ModuleId, delta: i64) -> StoreResult<bool> {
        let sql = "UPDATE license_pools SET used = used + $1, version = version + 1 \
                   WHERE site_id = $2 AND module_id = $3 AND used + $1 <= total RETURNING used, total";
        let Some(row) = self.fetch_optional(sqlx::query(sql).bind(delta).bind(site.0).bind(module.0)).await? else {
            return Ok(false);
        };
        let (used, total): (i64, i64) = (row.try_get("used")?, row.try_get("total")?);
        self.announce(Announcement::Pools(site));
        self.journal.push(PoolChange {
            module_id: module,
            used_before: used - delta,
            used_after: used,
            total_before: total,
            total_after: total,
        });
        Ok(true)
    }

    /// Sets a pool's total unless that is below its usage (R5). Returns the
    /// pool as it was before when applied, `Err(pool)` with the current
    /// state when refused, or `Ok(None)` when there is no such pool.
    pub async fn set_pool_total(
        &mut self,
        site: SiteId,
        module: ModuleId,
        total: LicenseTotal,
    ) -> StoreResult<Result<Option<Pool>, Pool>> {
        let before = self
            .fetch_optional(
                sqlx::query("UPDATE license_pools SET used = used WHERE site_id = $1 AND module_id = $2 RETURNING site_id, module_id, total, used, version")
                    .bind(site.0)
                    .bind(module.0),
            )
            .await?;
        let Some(before) = before.as_ref().map(pool_from).transpose()? else {
            return Ok(Ok(None));
        };
        if total.get() < before.used {
            return Ok(Err(before));
        }
        let sql = "UPDATE license_pools SET total = $1, version = version + 1 WHERE site_id = $2 AND module_id = $3 AND used <= $1";
        self.execute(sqlx::query(sql).bind(total.get()).bind(site.0).bind(module.0)).await?;
        self.announce(Announcement::Pools(site));
        self.journal.push(PoolChange::new_total(&before, total.get()));
        Ok(Ok(Some(before)))
    }

    pub async fn insert_person(
        &mut self,
        site: SiteId,
        name: &PersonName,
        email: Option<&Email>,
        now: i64,
    ) -> StoreResult<Person> {
        let sql = format!(
            "INSERT INTO people (site_id, name, email, created_at, name_folded) VALUES ($1, $2, $3, $4, $5) \
             RETURNING {PERSON_RETURNING}"
        );
        let row = self
            .fetch_all(
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(site.0)
                    .bind(name.as_str().to_string())
                    .bind(email.map(|e| e.as_str().to_string()))
                    .bind(now)
                    .bind(name.key()),
            )
            .await?;
        person_from(&row[0])
    }

    /// Locks a person row of `site` and returns it (deleted or not).
    pub async fn lock_person(&mut self, site: SiteId, id: PersonId) -> StoreResult<Option<Person>> {
        let lock = self.row_lock();
        let sql = format!("SELECT {PERSON_RETURNING} FROM people WHERE id = $1 AND site_id = $2{lock}");
        let row = self.fetch_optional(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.0).bind(site.0)).await?;
        row.as_ref().map(person_from).transpose()
    }

    pub async fn update_person(&mut self, id: PersonId, name: &PersonName, email: Option<&Email>) -> StoreResult<()> {
        let sql = "UPDATE people SET name = $1, email = $2, name_folded = $3 WHERE id = $4";
        let email = email.map(|e| e.as_str().to_string());
        self.execute(sqlx::query(sql).bind(name.as_str().to_string()).bind(email).bind(name.key()).bind(id.0)).await?;
        Ok(())
    }

    pub async fn mark_person_deleted(&mut self, id: PersonId, now: i64) -> StoreResult<()> {
        self.execute(sqlx::query("UPDATE people SET deleted_at = $1 WHERE id = $2").bind(now).bind(id.0)).await?;
        Ok(())
    }

    /// Locks the live login of a person, if any.
    pub async fn lock_login_of_person(&mut self, site: SiteId, person: PersonId) -> StoreResult<Option<Login>> {
        let lock = self.row_lock();
        let sql = format!(
            "SELECT {LOGIN_RETURNING} FROM logins WHERE person_id = $1 AND site_id = $2 AND deleted_at IS NULL{lock}"
        );
        let row = self.fetch_optional(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(person.0).bind(site.0)).await?;
        row.as_ref().map(login_from).transpose()
    }

    /// Locks a live login of `site` like [`Tx::lock_login`] and, in the same
    /// statement, shares the locks of its profile and of profile `to` of the
    /// site (see [`Tx::share_profiles`]): the start of a profile change.
    /// `None` when there is no such login or no such profile, and also when
    /// the login moved while this waited for it (PostgreSQL rechecks the row
    /// it waited for, not the profile joined to it): the caller then locks
    /// the login alone and shares the profiles' locks in a statement of their
    /// own, which finds out which is the case.
    pub async fn lock_login_to_move(&mut self, site: SiteId, id: LoginId, to: ProfileId) -> StoreResult<Option<Login>> {
        // The login's row lock, and the profiles' shared one (see Backend::shared_row_lock).
        let locks = match self.backend {
            Backend::Postgres => " FOR UPDATE OF l FOR KEY SHARE OF src, dst",
            Backend::Sqlite => "",
        };
        let mut q = Sql::new(LOGIN_SELECT);
        q.push(
            " JOIN profiles src ON src.id = l.profile_id JOIN profiles dst ON dst.site_id = l.site_id AND dst.id = ",
        );
        q.bind(to.0).push(" WHERE l.id = ").bind(id.0).push(" AND l.site_id = ").bind(site.0);
        q.push(" AND l.deleted_at IS NULL").push(locks);
        let row = self.fetch_optional(q.build()).await?;
        row.as_ref().map(login_from).transpose()
    }

    /// Locks a live login of `site`: its state cannot change under us until commit.
    pub async fn lock_login(&mut self, site: SiteId, id: LoginId) -> StoreResult<Option<Login>> {
        let lock = self.row_lock();
        let sql =
            format!("SELECT {LOGIN_RETURNING} FROM logins WHERE id = $1 AND site_id = $2 AND deleted_at IS NULL{lock}");
        let row = self.fetch_optional(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.0).bind(site.0)).await?;
        row.as_ref().map(login_from).transpose()
    }

    pub async fn insert_login(&mut self, new: NewLogin<'_>) -> StoreResult<Login> {
        let sql = format!(
            "INSERT INTO logins (site_id, person_id, username, username_key, password_hash, valid_until, \
             profile_id, is_admin, occupying, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9) \
             RETURNING {LOGIN_RETURNING}"
        );
        let rows = self
            .fetch_all(
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(new.site.0)
                    .bind(new.person.0)
                    .bind(new.username.as_str().to_string())
                    .bind(new.username.key())
                    .bind(new.password_hash.to_string())
                    .bind(new.valid_until.map(|d| d.format()))
                    .bind(new.profile.0)
                    .bind(new.is_admin as i64)
                    .bind(new.now),
            )
            .await?;
        login_from(&rows[0])
    }

    /// Moves a login locked by this transaction from profile `from` to `to`,
    /// and returns the modules of both, in one round trip. The profiles must
    /// be locked already: then this statement, which waits for no lock (so
    /// reads as of its own start), sees their modules as they stay until
    /// commit.
    pub async fn repoint_login(
        &mut self,
        id: LoginId,
        from: ProfileId,
        to: ProfileId,
    ) -> StoreResult<(Vec<ModuleId>, Vec<ModuleId>)> {
        let sql = "UPDATE logins SET profile_id = $1 WHERE id = $2 RETURNING \
                   (SELECT string_agg(CAST(module_id AS TEXT), ',') FROM profile_modules WHERE profile_id = $3) AS from_modules, \
                   (SELECT string_agg(CAST(module_id AS TEXT), ',') FROM profile_modules WHERE profile_id = $1) AS to_modules";
        let row = self.fetch_optional(sqlx::query(sql).bind(to.0).bind(id.0).bind(from.0)).await?;
        let row = row.ok_or_else(|| sqlx::Error::RowNotFound)?;
        Ok((module_list(row.try_get("from_modules")?)?, module_list(row.try_get("to_modules")?)?))
    }

    pub async fn set_login_username(&mut self, id: LoginId, username: &Username) -> StoreResult<()> {
        let sql = "UPDATE logins SET username = $1, username_key = $2 WHERE id = $3";
        self.execute(sqlx::query(sql).bind(username.as_str().to_string()).bind(username.key()).bind(id.0)).await?;
        Ok(())
    }

    pub async fn set_login_password(&mut self, id: LoginId, password_hash: &str) -> StoreResult<()> {
        self.execute(
            sqlx::query("UPDATE logins SET password_hash = $1 WHERE id = $2")
                .bind(password_hash.to_string())
                .bind(id.0),
        )
        .await?;
        Ok(())
    }

    pub async fn set_login_valid_until(&mut self, id: LoginId, valid_until: Option<Date>) -> StoreResult<()> {
        let sql = "UPDATE logins SET valid_until = $1 WHERE id = $2";
        self.execute(sqlx::query(sql).bind(valid_until.map(|d| d.format())).bind(id.0)).await?;
        Ok(())
    }

    pub async fn set_login_admin(&mut self, id: LoginId, is_admin: bool) -> StoreResult<()> {
        self.execute(sqlx::query("UPDATE logins SET is_admin = $1 WHERE id = $2").bind(is_admin as i64).bind(id.0))
            .await?;
        Ok(())
    }

    /// Deletes a login (kept for restoring); `with_person` marks one that
    /// comes back when its person is restored.
    pub async fn mark_login_deleted(&mut self, id: LoginId, now: i64, with_person: bool) -> StoreResult<()> {
        let sql = "UPDATE logins SET deleted_at = $1, occupying = 0, deleted_with_person = $2 WHERE id = $3";
        self.execute(sqlx::query(sql).bind(now).bind(with_person as i64).bind(id.0)).await?;
        Ok(())
    }

    /// Ends every session of a login (deleted, or its password changed).
    pub async fn revoke_login_sessions(&mut self, id: LoginId, now: i64) -> StoreResult<()> {
        let sql = "UPDATE sessions SET revoked_at = $1 WHERE login_id = $2 AND revoked_at IS NULL";
        self.execute(sqlx::query(sql).bind(now).bind(id.0)).await?;
        Ok(())
    }

    pub async fn insert_profile(
        &mut self,
        site: SiteId,
        name: &ProfileName,
        now: i64,
    ) -> StoreResult<Option<ProfileId>> {
        let sql = "INSERT INTO profiles (site_id, name, name_key, user_count, created_at) VALUES ($1, $2, $3, 0, $4) \
                   ON CONFLICT (site_id, name_key) DO NOTHING RETURNING id";
        let row = self
            .fetch_optional(sqlx::query(sql).bind(site.0).bind(name.as_str().to_string()).bind(name.key()).bind(now))
            .await?;
        row.map(|r| r.try_get("id").map(ProfileId)).transpose()
    }

    /// Takes a shared lock on profiles of `site` (PostgreSQL `FOR KEY SHARE`):
    /// their modules and their existence stay as they are until commit, while
    /// other changes of their users go on. Returns how many of `ids` exist.
    pub async fn share_profiles(&mut self, site: SiteId, ids: &[ProfileId]) -> StoreResult<usize> {
        let lock = self.shared_row_lock();
        let mut q = Sql::new("SELECT id FROM profiles WHERE site_id = ");
        q.bind(site.0).push(" AND id IN ").bind_list(ids.iter().map(|p| p.0)).push(lock);
        Ok(self.fetch_all(q.build()).await?.len())
    }

    /// Records changes of the user counts of profiles of `site` (see
    /// migration 0006), in one statement.
    pub async fn add_profile_users(&mut self, site: SiteId, changes: &[(ProfileId, i64)]) -> StoreResult<()> {
        let mut q = Sql::new("INSERT INTO profile_user_deltas (site_id, profile_id, delta) VALUES ");
        for (i, (p, d)) in changes.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" }).bind(site.0).push(", ").bind(p.0).push(", ").bind(*d).push(")");
        }
        self.execute(q.build()).await?;
        Ok(())
    }

    /// Shares the lock of a profile of `site` (see [`Tx::share_profiles`]) and
    /// adds `user_delta` to its user count; false when there is no such profile.
    pub async fn join_profile(&mut self, site: SiteId, id: ProfileId, user_delta: i64) -> StoreResult<bool> {
        if self.share_profiles(site, &[id]).await? == 0 {
            return Ok(false);
        }
        if user_delta != 0 {
            self.add_profile_users(site, &[(id, user_delta)]).await?;
        }
        Ok(true)
    }

    /// Locks a profile of `site` for a change of the profile itself (its
    /// modules, its deletion): waits for every transaction that shares it
    /// and keeps new ones out until commit. The user count is read after the
    /// lock, so it counts every change of users that committed before.
    pub async fn lock_profile(&mut self, site: SiteId, id: ProfileId) -> StoreResult<Option<Profile>> {
        let lock = self.row_lock();
        let mut q = Sql::new("SELECT id FROM profiles WHERE id = ");
        q.bind(id.0).push(" AND site_id = ").bind(site.0).push(lock);
        if self.fetch_optional(q.build()).await?.is_none() {
            return Ok(None);
        }
        let sql = concat!("SELECT ", profile_columns!(), " FROM ", profiles_with_users!(), " WHERE pr.id = $1");
        let row = self.fetch_optional(sqlx::query(sql).bind(id.0)).await?;
        row.as_ref().map(profile_from).transpose()
    }

    /// Renames a profile; false when another profile of the site has the name.
    pub async fn rename_profile(&mut self, id: ProfileId, name: &ProfileName) -> StoreResult<bool> {
        let sql = "UPDATE profiles SET name = $1, name_key = $2 WHERE id = $3 AND NOT EXISTS \
                   (SELECT 1 FROM profiles o WHERE o.site_id = profiles.site_id AND o.name_key = $2 AND o.id <> $3)";
        Ok(self.execute(sqlx::query(sql).bind(name.as_str().to_string()).bind(name.key()).bind(id.0)).await? == 1)
    }

    pub async fn delete_profile(&mut self, id: ProfileId) -> StoreResult<()> {
        // The caller found no users under the profile's lock, so its user-count
        // rows sum to naught. They stay for the next fold, which drops them with
        // nothing to add them to: deleting them here could deadlock with a fold
        // that has taken them and waits for this profile's lock.
        self.execute(sqlx::query("DELETE FROM profiles WHERE id = $1").bind(id.0)).await?;
        Ok(())
    }

    /// Logins (live or deleted) that still refer to the profile.
    pub async fn logins_referencing_profile(&mut self, id: ProfileId) -> StoreResult<i64> {
        let row = self
            .fetch_optional(sqlx::query("SELECT COUNT(*) AS n FROM logins WHERE profile_id = $1").bind(id.0))
            .await?;
        Ok(row.map(|r| r.try_get("n")).transpose()?.unwrap_or(0))
    }

    pub async fn profile_module_ids(&mut self, ids: &[ProfileId]) -> StoreResult<Vec<(ProfileId, ModuleId)>> {
        let mut qb = Sql::new("SELECT profile_id, module_id FROM profile_modules WHERE profile_id IN ");
        qb.bind_list(ids.iter().map(|p| p.0)).push(" ORDER BY module_id");
        let rows = self.fetch_all(qb.build()).await?;
        rows.iter().map(|r| Ok((ProfileId(r.try_get("profile_id")?), ModuleId(r.try_get("module_id")?)))).collect()
    }

    pub async fn add_profile_module(&mut self, site: SiteId, profile: ProfileId, module: ModuleId) -> StoreResult<()> {
        let sql = "INSERT INTO profile_modules (site_id, profile_id, module_id) VALUES ($1, $2, $3)";
        self.execute(sqlx::query(sql).bind(site.0).bind(profile.0).bind(module.0)).await?;
        Ok(())
    }

    pub async fn remove_profile_module(&mut self, profile: ProfileId, module: ModuleId) -> StoreResult<()> {
        let sql = "DELETE FROM profile_modules WHERE profile_id = $1 AND module_id = $2";
        self.execute(sqlx::query(sql).bind(profile.0).bind(module.0)).await?;
        Ok(())
    }

    pub async fn insert_session(
        &mut self,
        token_hash: &str,
        owner: &Principal,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        let (operator, login, account) = match owner {
            Principal::Operator { id, .. } => (Some(id.0), None, None),
            Principal::SiteLogin { login_id, .. } => (None, Some(login_id.0), None),
            Principal::Owner { id, .. } => (None, None, Some(id.0)),
        };
        let sql = "INSERT INTO sessions (token_hash, operator_id, login_id, owner_id, created_at, expires_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        self.execute(
            sqlx::query(sql)
                .bind(token_hash.to_string())
                .bind(operator)
                .bind(login)
                .bind(account)
                .bind(now)
                .bind(expires_at),
        )
        .await?;
        Ok(())
    }

    pub async fn revoke_session(&mut self, token_hash: &str, now: i64) -> StoreResult<bool> {
        let sql = "UPDATE sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL";
        let revoked = self.execute(sqlx::query(sql).bind(now).bind(token_hash.to_string())).await? == 1;
        if revoked {
            self.announce(Announcement::SessionEnded(token_hash.to_string()));
        }
        Ok(revoked)
    }

    /// Appends `event` to the audit trail; false when the transaction's
    /// session guard failed (nothing was written). On PostgreSQL with live
    /// subscribers its statement also passes this transaction's
    /// announcements so far, and its own, to `pg_notify` (see `store::live`).
    pub async fn insert_audit(&mut self, event: AuditEvent<'_>, now: i64) -> StoreResult<bool> {
        let notify = match (self.backend, &self.live, event.site) {
            (Backend::Postgres, Some(_), Some(site)) => {
                Some(live::audit_prefix(&self.announced[self.notified..], site, event.action))
            }
            _ => None,
        };
        let notifies = notify.is_some();
        let Some(row) = self.fetch_optional(audit_insert(&event, now, self.guard.as_deref(), notify)).await? else {
            return Ok(false);
        };
        if let Some(site) = event.site {
            let id = row.try_get("id")?;
            self.announce(Announcement::Audit { site, id, action: event.action.to_string() });
        }
        if notifies {
            self.notified = self.announced.len();
        }
        Ok(true)
    }
}

macro_rules! audit_insert_into {
    () => {
        "INSERT INTO audit_events (site_id, at, actor, actor_kind, actor_person_id, action, target, \
         target_person_id, outcome, rule, detail, pools, code, message, actor_folded) "
    };
}

macro_rules! audit_plain {
    () => {
        concat!(audit_insert_into!(), "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)")
    };
}

macro_rules! audit_guarded {
    () => {
        concat!(
            audit_insert_into!(),
            "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 WHERE EXISTS (SELECT 1 FROM sessions s \
             JOIN logins l ON l.id = s.login_id JOIN people p ON p.id = l.person_id \
             WHERE s.token_hash = $16 AND s.revoked_at IS NULL AND s.expires_at > $2 \
             AND l.id = $17 AND l.site_id = $18 AND l.deleted_at IS NULL AND p.deleted_at IS NULL \
             AND (l.valid_until IS NULL OR l.valid_until >= $19) AND l.is_admin = $20 \
             AND l.username = $21 AND p.name = $22)"
        )
    };
}

const AUDIT_PLAIN: &str = concat!(audit_plain!(), " RETURNING id");
const AUDIT_GUARDED: &str = concat!(audit_guarded!(), " RETURNING id");
// The channel is `live::CHANNEL` (a test checks).
const AUDIT_PLAIN_NOTIFYING: &str = concat!(
    "WITH e AS (",
    audit_plain!(),
    " RETURNING id) SELECT id, CAST(pg_notify('license_gateway', $16 || CAST(id AS TEXT)) AS TEXT) AS notified FROM e"
);
const AUDIT_GUARDED_NOTIFYING: &str = concat!(
    "WITH e AS (",
    audit_guarded!(),
    " RETURNING id) SELECT id, CAST(pg_notify('license_gateway', $23 || CAST(id AS TEXT)) AS TEXT) AS notified FROM e"
);
/// The statement that appends `event` to the audit trail and answers its
/// `id` (no row: not written); with a session guard, only while that
/// session holds ([`crate::store::SessionGuard`]): the conditions
/// `Store::session_owner` and `auth::authenticate_hash` apply to a lookup,
/// here in one statement; a change to one must be made to the other.
/// With `notify` (PostgreSQL), the same statement passes `notify` and the
/// event's id to `pg_notify`, for live subscribers (see `store::live`).
fn audit_insert<'q>(
    event: &AuditEvent<'_>,
    now: i64,
    guard: Option<&SessionGuard>,
    notify: Option<String>,
) -> AnyQuery<'q> {
    let notifying = notify.is_some();
    let q = match guard {
        None => audit_values(sqlx::query(if notifying { AUDIT_PLAIN_NOTIFYING } else { AUDIT_PLAIN }), event, now),
        Some(g) => {
            audit_values(sqlx::query(if notifying { AUDIT_GUARDED_NOTIFYING } else { AUDIT_GUARDED }), event, now)
                .bind(g.token_hash.clone())
                .bind(g.login_id.0)
                .bind(g.site_id.0)
                .bind(g.today.format())
                .bind(g.is_admin as i64)
                .bind(g.username.clone())
                .bind(g.name.clone())
        }
    };
    match notify {
        Some(payload) => q.bind(payload),
        None => q,
    }
}

/// Binds `event` as the parameters $1 to $15. `detail` ($11) keeps the
/// `CODE: message` text of the column's first form, so an instance of the
/// previous release that reads it during an upgrade still shows it.
fn audit_values<'q>(q: AnyQuery<'q>, event: &AuditEvent<'_>, now: i64) -> AnyQuery<'q> {
    let pools: Vec<serde_json::Value> = event
        .pools
        .iter()
        .map(|p| serde_json::json!([p.module_id.0, p.used_before, p.used_after, p.total_before, p.total_after]))
        .collect();
    q.bind(event.site.map(|s| s.0))
        .bind(now)
        .bind(event.actor.name.clone())
        .bind(event.actor.kind.to_string())
        .bind(event.actor.person.map(|p| p.0))
        .bind(event.action.to_string())
        .bind(event.target.to_string())
        .bind(event.target_person.map(|p| p.0))
        .bind(event.outcome.to_string())
        .bind(event.rule.map(str::to_string))
        .bind(match event.code {
            Some(code) => format!("{code}: {}", event.message),
            None => event.message.clone(),
        })
        .bind(serde_json::Value::Array(pools).to_string())
        .bind(event.code.map(str::to_string))
        .bind(event.message.clone())
        .bind(crate::domain::fold(&event.actor.name))
}

impl Store {
    /// Appends `event` to the audit trail in a statement of its own (a
    /// refusal decided on reads before any write); false when this handle's
    /// session guard failed (nothing was written).
    pub async fn insert_audit(&self, event: AuditEvent<'_>, now: i64) -> StoreResult<bool> {
        let _gate = match &self.write_gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        };
        // Its statement commits by itself: on PostgreSQL it announces itself.
        let notify = match (self.backend, &self.live, event.site) {
            (Backend::Postgres, Some(_), Some(site)) => Some(live::audit_prefix(&[], site, event.action)),
            _ => None,
        };
        self.tick();
        let _turn = self.read_turn().await;
        let done = audit_insert(&event, now, self.guard.as_deref(), notify).fetch_optional(&self.pool).await;
        let Some(row) = done.inspect_err(|e| forget_idle_if_unreachable(&self.pool, e))? else { return Ok(false) };
        if let (Backend::Sqlite, Some(changes), Some(site)) = (self.backend, &self.live, event.site) {
            let action = event.action.to_string();
            changes.publish([Announcement::Audit { site, id: row.try_get("id")?, action }].into());
        }
        Ok(true)
    }

    /// Folds the recorded changes of profiles' user counts into
    /// `profiles.user_count` (migration 0006); returns how many it folded.
    /// Every count reads the same before and after, and any number of
    /// instances may fold at once: each row is deleted, and so added, once.
    pub async fn fold_profile_users(&self) -> StoreResult<u64> {
        match self.backend {
            // One statement: the rows it deletes are the rows it adds up. A
            // row another fold deleted first is skipped, and the profile's
            // update waits for that fold's and then adds to its result.
            Backend::Postgres => {
                let sql = "WITH folded AS (DELETE FROM profile_user_deltas RETURNING profile_id, delta), \
                           sums AS (SELECT profile_id, SUM(delta) AS n FROM folded GROUP BY profile_id), \
                           updated AS (UPDATE profiles pr SET user_count = pr.user_count + sums.n \
                             FROM sums WHERE pr.id = sums.profile_id RETURNING pr.id) \
                           SELECT CAST(COUNT(*) AS BIGINT) AS n FROM folded";
                let row = self.fetch_optional(sqlx::query(sql)).await?;
                Ok(row.map(|r| r.try_get::<i64, _>("n")).transpose()?.unwrap_or(0) as u64)
            }
            // SQLite has one writer at a time: two statements in its write
            // transaction see the same rows.
            Backend::Sqlite => {
                let pending = "SELECT COUNT(*) AS n FROM profile_user_deltas";
                let row = self.fetch_optional(sqlx::query(pending)).await?;
                if row.map(|r| r.try_get::<i64, _>("n")).transpose()?.unwrap_or(0) == 0 {
                    return Ok(0);
                }
                let mut tx = self.begin().await?;
                let fold = "UPDATE profiles SET user_count = user_count + (SELECT SUM(d.delta) \
                            FROM profile_user_deltas d WHERE d.profile_id = profiles.id) \
                            WHERE id IN (SELECT profile_id FROM profile_user_deltas)";
                tx.execute(sqlx::query(fold)).await?;
                let n = tx.execute(sqlx::query("DELETE FROM profile_user_deltas")).await?;
                tx.commit().await?;
                Ok(n)
            }
        }
    }
}

/// Module ids aggregated as `1,2` (`None`: a profile without modules), in id order.
fn module_list(ids: Option<String>) -> StoreResult<Vec<ModuleId>> {
    let mut modules = Vec::new();
    for id in ids.as_deref().unwrap_or("").split(',').filter(|s| !s.is_empty()) {
        modules.push(ModuleId(id.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?));
    }
    modules.sort();
    Ok(modules)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_audit_insert_notifies_on_the_channel_every_instance_listens_on() {
        let call = format!("pg_notify('{}', ", super::live::CHANNEL);
        assert!(super::AUDIT_PLAIN_NOTIFYING.contains(&call));
        assert!(super::AUDIT_GUARDED_NOTIFYING.contains(&call));
    }
}
