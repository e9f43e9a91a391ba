//! Reads outside write transactions: what resolvers, loaders and
//! authentication need. Lists use keyset pagination, never OFFSET.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::paging::{List, Rows, Slice, unfiltered};
use super::sql::Sql;
use super::{Store, StoreResult};
use crate::domain::*;

pub(super) const LOGIN_SELECT: &str = "SELECT l.id, l.site_id, l.person_id, l.username, l.valid_until, l.profile_id, \
     l.is_admin, l.occupying, l.created_at FROM logins l";

/// A site's people (staff records), by name.
const PEOPLE: List = List {
    columns: "p.id, p.site_id, p.name, p.email, p.created_at, p.deleted_at",
    from: " FROM people p",
    order: &["p.name", "p.id"],
    descending: false,
};
/// Users (logins with their people), by username.
const USERS: List = List {
    columns: "l.id, l.site_id, l.person_id, l.username, l.valid_until, l.profile_id, l.is_admin, l.occupying, \
              l.created_at, p.name AS person_name, p.email AS person_email, p.created_at AS person_created_at",
    from: " FROM logins l JOIN people p ON p.id = l.person_id",
    order: &["l.username_key"],
    descending: false,
};
/// Sites, by creation.
const SITES: List = List { columns: "id, name, created_at", from: " FROM sites", order: &["id"], descending: false };
/// The same columns unqualified, for RETURNING (SQLite allows no alias there).
pub(super) const PERSON_RETURNING: &str = "id, site_id, name, email, created_at, deleted_at";
pub(super) const LOGIN_RETURNING: &str =
    "id, site_id, person_id, username, valid_until, profile_id, is_admin, occupying, created_at";

pub(super) fn person_from(row: &AnyRow) -> StoreResult<Person> {
    Ok(Person {
        id: PersonId(row.try_get("id")?),
        site_id: SiteId(row.try_get("site_id")?),
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        created_at: row.try_get("created_at")?,
        deleted_at: row.try_get("deleted_at")?,
    })
}

pub(super) fn login_from(row: &AnyRow) -> StoreResult<Login> {
    let valid_until: Option<String> = row.try_get("valid_until")?;
    Ok(Login {
        id: LoginId(row.try_get("id")?),
        site_id: SiteId(row.try_get("site_id")?),
        person_id: PersonId(row.try_get("person_id")?),
        username: row.try_get("username")?,
        valid_until: valid_until.and_then(|d| Date::stored(&d)),
        profile_id: ProfileId(row.try_get("profile_id")?),
        is_admin: row.try_get::<i64, _>("is_admin")? != 0,
        occupying: row.try_get::<i64, _>("occupying")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

/// The columns [`profile_from`] reads, for a `SELECT` from
/// [`profiles_with_users`]. The user count is the profile's counter plus the
/// changes not yet folded into it (migration 0006), summed for all profiles
/// at once: they are few (a fold runs every tenth of a second), and one
/// aggregate costs a read less than a lookup per profile.
macro_rules! profile_columns {
    () => {
        "pr.id, pr.site_id, pr.name, pr.user_count + COALESCE(pu.n, 0) AS user_count"
    };
}
/// The profiles, called `pr`, with what [`profile_columns`] adds up.
macro_rules! profiles_with_users {
    () => {
        "profiles pr LEFT JOIN (SELECT profile_id, CAST(SUM(delta) AS BIGINT) AS n FROM profile_user_deltas \
         GROUP BY profile_id) pu ON pu.profile_id = pr.id"
    };
}
pub(super) use {profile_columns, profiles_with_users};

pub(super) fn profile_from(row: &AnyRow) -> StoreResult<Profile> {
    Ok(Profile {
        id: ProfileId(row.try_get("id")?),
        site_id: SiteId(row.try_get("site_id")?),
        name: row.try_get("name")?,
        user_count: row.try_get("user_count")?,
    })
}

pub(super) fn pool_from(row: &AnyRow) -> StoreResult<Pool> {
    Ok(Pool {
        site_id: SiteId(row.try_get("site_id")?),
        module_id: ModuleId(row.try_get("module_id")?),
        total: row.try_get("total")?,
        used: row.try_get("used")?,
        version: row.try_get("version")?,
    })
}

fn module_from(row: &AnyRow) -> StoreResult<Module> {
    Ok(Module { id: ModuleId(row.try_get("id")?), code: row.try_get("code")?, name: row.try_get("name")? })
}

fn site_from(row: &AnyRow) -> StoreResult<Site> {
    Ok(Site { id: SiteId(row.try_get("id")?), name: row.try_get("name")?, created_at: row.try_get("created_at")? })
}

fn agreement_from(row: &AnyRow) -> StoreResult<Agreement> {
    let owner = match row.try_get::<Option<i64>, _>("owner_id")? {
        Some(id) => {
            Some(Owner { id: OwnerId(id), name: row.try_get("owner_name")?, username: row.try_get("owner_username")? })
        }
        None => None,
    };
    Ok(Agreement {
        id: row.try_get("id")?,
        site_id: SiteId(row.try_get("site_id")?),
        name: row.try_get("name")?,
        self_service: row.try_get::<i64, _>("self_service")? != 0,
        owner,
    })
}

/// Who a bearer session belongs to, as authentication needs it.
#[derive(Debug, Clone)]
pub enum SessionOwner {
    Operator { id: OperatorId, username: String },
    Owner { id: OwnerId, username: String, name: String },
    Login { login: Login, person_name: String, person_deleted: bool, login_deleted: bool },
}

/// Credentials found for a sign-in attempt.
#[derive(Debug, Clone)]
pub enum Credentials {
    Operator { id: OperatorId, username: String, password_hash: String },
    Owner { id: OwnerId, username: String, name: String, password_hash: String },
    Login { login: Login, person_name: String, password_hash: String },
}

/// Filters of the lists of users.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UserFilter {
    pub profile: Option<ProfileId>,
    pub module: Option<ModuleId>,
    /// `Some(true)`: logins that work today; `Some(false)`: expired ones (R9).
    pub active_on: Option<(bool, Date)>,
    pub name_contains: Option<String>,
}

/// Filters of the lists of people.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PersonFilter {
    pub name_contains: Option<String>,
    pub has_login: Option<bool>,
    pub include_deleted: bool,
}

/// A `LIKE` pattern (with `ESCAPE '\'`) that finds the folded `text`
/// anywhere in a folded copy ([`crate::domain::fold`]), its `%`, `_` and `\`
/// taken literally.
pub(super) fn like_pattern(text: &str) -> String {
    let escaped: String = crate::domain::fold(text)
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("%{escaped}%")
}

/// What a list below an object belongs to: a site (its people or users) or
/// a profile (its users).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Parent {
    Site,
    Profile,
}

impl Parent {
    /// The column of a login that names its parent.
    fn login_column(self) -> &'static str {
        match self {
            Parent::Site => "l.site_id",
            Parent::Profile => "l.profile_id",
        }
    }
}

/// The conditions of a list of users: live logins of live people, and `filter`.
fn user_conditions(filter: &UserFilter) -> impl Fn(&mut Sql) + Sync + '_ {
    move |qb| {
        qb.push(" AND l.deleted_at IS NULL AND p.deleted_at IS NULL");
        if let Some(profile) = filter.profile {
            qb.push(" AND l.profile_id = ").bind(profile.0);
        }
        if let Some(module) = filter.module {
            qb.push(
                " AND EXISTS (SELECT 1 FROM profile_modules pm WHERE pm.profile_id = l.profile_id AND pm.module_id = ",
            )
            .bind(module.0)
            .push(")");
        }
        match filter.active_on {
            Some((true, today)) => {
                qb.push(" AND (l.valid_until IS NULL OR l.valid_until >= ").bind(today.format()).push(")");
            }
            Some((false, today)) => {
                qb.push(" AND l.valid_until < ").bind(today.format());
            }
            None => {}
        }
        if let Some(text) = &filter.name_contains {
            qb.push(" AND p.name_folded LIKE ").bind(like_pattern(text)).push(" ESCAPE '\\'");
        }
    }
}

/// A user of a page of users: the login, and its person (live: the list holds no others).
fn user_from(row: &AnyRow) -> StoreResult<(Login, Person)> {
    let login = login_from(row)?;
    let person = Person {
        id: login.person_id,
        site_id: login.site_id,
        name: row.try_get("person_name")?,
        email: row.try_get("person_email")?,
        created_at: row.try_get("person_created_at")?,
        deleted_at: None,
    };
    Ok((login, person))
}

/// The conditions of a list of people: `filter`.
fn person_conditions(filter: &PersonFilter) -> impl Fn(&mut Sql) + Sync + '_ {
    move |qb| {
        if !filter.include_deleted {
            qb.push(" AND p.deleted_at IS NULL");
        }
        if let Some(text) = &filter.name_contains {
            qb.push(" AND p.name_folded LIKE ").bind(like_pattern(text)).push(" ESCAPE '\\'");
        }
        match filter.has_login {
            Some(true) => {
                qb.push(" AND EXISTS (SELECT 1 FROM logins l WHERE l.person_id = p.id AND l.deleted_at IS NULL)");
            }
            Some(false) => {
                qb.push(" AND NOT EXISTS (SELECT 1 FROM logins l WHERE l.person_id = p.id AND l.deleted_at IS NULL)");
            }
            None => {}
        }
    }
}

impl Store {
    pub async fn operator_count(&self) -> StoreResult<i64> {
        let row = self.fetch_optional(sqlx::query("SELECT COUNT(*) AS n FROM operators")).await?;
        Ok(row.map(|r| r.try_get("n")).transpose()?.unwrap_or(0))
    }

    /// The live owner of an unexpired, unrevoked session, and when the
    /// session expires (unix seconds).
    pub async fn session_owner(&self, token_hash: &str, now: i64) -> StoreResult<Option<(SessionOwner, i64)>> {
        let sql = "SELECT s.expires_at, s.operator_id, o.username AS operator_username, \
                   s.owner_id, w.username AS owner_username, w.name AS owner_name, \
                   l.id, l.site_id, l.person_id, l.username, l.valid_until, l.profile_id, l.is_admin, \
                   l.occupying, l.created_at, l.deleted_at AS login_deleted_at, p.deleted_at AS person_deleted_at, \
                   p.name AS person_name \
                   FROM sessions s \
                   LEFT JOIN operators o ON o.id = s.operator_id \
                   LEFT JOIN owner_accounts w ON w.id = s.owner_id \
                   LEFT JOIN logins l ON l.id = s.login_id \
                   LEFT JOIN people p ON p.id = l.person_id \
                   WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2";
        let Some(row) = self.fetch_optional(sqlx::query(sql).bind(token_hash.to_string()).bind(now)).await? else {
            return Ok(None);
        };
        let expires_at = row.try_get("expires_at")?;
        let owner = if let Some(id) = row.try_get::<Option<i64>, _>("operator_id")? {
            SessionOwner::Operator { id: OperatorId(id), username: row.try_get("operator_username")? }
        } else if let Some(id) = row.try_get::<Option<i64>, _>("owner_id")? {
            SessionOwner::Owner {
                id: OwnerId(id),
                username: row.try_get("owner_username")?,
                name: row.try_get("owner_name")?,
            }
        } else {
            SessionOwner::Login {
                login: login_from(&row)?,
                person_name: row.try_get("person_name")?,
                person_deleted: row.try_get::<Option<i64>, _>("person_deleted_at")?.is_some(),
                login_deleted: row.try_get::<Option<i64>, _>("login_deleted_at")?.is_some(),
            }
        };
        Ok(Some((owner, expires_at)))
    }

    /// Credentials for `username_key`: a live login of a live person, or an operator.
    pub async fn credentials(&self, username_key: &str) -> StoreResult<Option<Credentials>> {
        let sql = "SELECT l.id, l.site_id, l.person_id, l.username, l.valid_until, l.profile_id, l.is_admin, \
                   l.occupying, l.created_at, l.password_hash, p.name AS person_name \
                   FROM logins l JOIN people p ON p.id = l.person_id \
                   WHERE l.username_key = $1 AND l.deleted_at IS NULL AND p.deleted_at IS NULL";
        if let Some(row) = self.fetch_optional(sqlx::query(sql).bind(username_key.to_string())).await? {
            return Ok(Some(Credentials::Login {
                login: login_from(&row)?,
                person_name: row.try_get("person_name")?,
                password_hash: row.try_get("password_hash")?,
            }));
        }
        let sql = "SELECT id, username, name, password_hash FROM owner_accounts WHERE username_key = $1";
        if let Some(row) = self.fetch_optional(sqlx::query(sql).bind(username_key.to_string())).await? {
            return Ok(Some(Credentials::Owner {
                id: OwnerId(row.try_get("id")?),
                username: row.try_get("username")?,
                name: row.try_get("name")?,
                password_hash: row.try_get("password_hash")?,
            }));
        }
        let sql = "SELECT id, username, password_hash FROM operators WHERE username_key = $1";
        let Some(row) = self.fetch_optional(sqlx::query(sql).bind(username_key.to_string())).await? else {
            return Ok(None);
        };
        Ok(Some(Credentials::Operator {
            id: OperatorId(row.try_get("id")?),
            username: row.try_get("username")?,
            password_hash: row.try_get("password_hash")?,
        }))
    }

    /// The sites whose agreements an owner owns (R11).
    pub async fn owner_sites(&self, owner: OwnerId) -> StoreResult<Vec<SiteId>> {
        let rows = self
            .fetch_all(sqlx::query("SELECT site_id FROM agreements WHERE owner_id = $1 ORDER BY site_id").bind(owner.0))
            .await?;
        rows.iter().map(|r| r.try_get("site_id").map(SiteId)).collect()
    }

    pub async fn modules(&self) -> StoreResult<Vec<Module>> {
        let rows = self.fetch_all(sqlx::query("SELECT id, code, name FROM modules ORDER BY id")).await?;
        rows.iter().map(module_from).collect()
    }

    pub async fn modules_by_ids(&self, ids: &[ModuleId]) -> StoreResult<Vec<Module>> {
        let mut qb = Sql::new("SELECT id, code, name FROM modules WHERE id IN ");
        qb.bind_list(ids.iter().map(|m| m.0));
        let rows = self.fetch_all(qb.build()).await?;
        rows.iter().map(module_from).collect()
    }

    pub async fn sites_by_ids(&self, ids: &[SiteId]) -> StoreResult<Vec<Site>> {
        let mut qb = Sql::new("SELECT id, name, created_at FROM sites WHERE id IN ");
        qb.bind_list(ids.iter().map(|s| s.0));
        let rows = self.fetch_all(qb.build()).await?;
        rows.iter().map(site_from).collect()
    }

    /// A page of the sites, by id.
    pub async fn sites_page(&self, slice: &Slice<i64>) -> StoreResult<Rows<Site>> {
        self.page(&SITES, None, &unfiltered, slice, site_from).await
    }

    /// How many sites there are.
    pub async fn sites_count(&self) -> StoreResult<i64> {
        self.count(&SITES, None, &unfiltered, None).await
    }

    pub async fn agreements_by_sites(&self, ids: &[SiteId]) -> StoreResult<Vec<Agreement>> {
        let mut qb = Sql::new(
            "SELECT a.id, a.site_id, a.name, a.self_service, a.owner_id, o.name AS owner_name, \
             o.username AS owner_username FROM agreements a LEFT JOIN owner_accounts o ON o.id = a.owner_id \
             WHERE a.site_id IN ",
        );
        qb.bind_list(ids.iter().map(|s| s.0));
        let rows = self.fetch_all(qb.build()).await?;
        rows.iter().map(agreement_from).collect()
    }

    /// Pools with their maintained counters: never a recount on read.
    pub async fn pools_by_sites(&self, ids: &[SiteId]) -> StoreResult<Vec<Pool>> {
        let mut qb = Sql::new("SELECT site_id, module_id, total, used, version FROM license_pools WHERE site_id IN ");
        qb.bind_list(ids.iter().map(|s| s.0));
        qb.push(" ORDER BY site_id, module_id");
        let rows = self.fetch_all(qb.build()).await?;
        rows.iter().map(pool_from).collect()
    }

    /// Pools with their modules, in one statement (the `licensePools` read).
    pub async fn pools_with_modules(&self, site: SiteId) -> StoreResult<Vec<(Pool, Module)>> {
        let sql = "SELECT lp.site_id, lp.module_id, lp.total, lp.used, lp.version, m.code, m.name FROM license_pools lp \
                   JOIN modules m ON m.id = lp.module_id WHERE lp.site_id = $1 ORDER BY lp.module_id";
        let rows = self.fetch_all(sqlx::query(sql).bind(site.0)).await?;
        rows.iter()
            .map(|r| {
                let pool = pool_from(r)?;
                let module = Module { id: pool.module_id, code: r.try_get("code")?, name: r.try_get("name")? };
                Ok((pool, module))
            })
            .collect()
    }

    /// Profiles with their modules, in one statement (a page of users).
    pub async fn profiles_with_modules(&self, ids: &[ProfileId]) -> StoreResult<Vec<(Profile, Vec<Module>)>> {
        let mut qb = Sql::new(concat!(
            "SELECT ",
            profile_columns!(),
            ", m.id AS module_id, m.code AS module_code, m.name AS module_name FROM ",
            profiles_with_users!(),
            " LEFT JOIN profile_modules pm ON pm.profile_id = pr.id \
             LEFT JOIN modules m ON m.id = pm.module_id WHERE pr.id IN "
        ));
        qb.bind_list(ids.iter().map(|p| p.0)).push(" ORDER BY pr.id, m.id");
        let mut out: Vec<(Profile, Vec<Module>)> = Vec::new();
        for row in &self.fetch_all(qb.build()).await? {
            let profile = profile_from(row)?;
            if out.last().is_none_or(|(p, _)| p.id != profile.id) {
                out.push((profile, Vec::new()));
            }
            if let Some(id) = row.try_get::<Option<i64>, _>("module_id")? {
                let module =
                    Module { id: ModuleId(id), code: row.try_get("module_code")?, name: row.try_get("module_name")? };
                if let Some((_, modules)) = out.last_mut() {
                    modules.push(module);
                }
            }
        }
        Ok(out)
    }

    pub async fn people_by_ids(&self, ids: &[PersonId]) -> StoreResult<Vec<Person>> {
        let mut qb = Sql::new("SELECT ");
        qb.push(PEOPLE.columns).push(PEOPLE.from).push(" WHERE p.id IN ").bind_list(ids.iter().map(|p| p.0));
        let rows = self.fetch_all(qb.build()).await?;
        rows.iter().map(person_from).collect()
    }

    pub async fn logins_by_ids(&self, ids: &[LoginId]) -> StoreResult<Vec<Login>> {
        let mut qb = Sql::new(LOGIN_SELECT);
        qb.push(" WHERE l.deleted_at IS NULL AND l.id IN ").bind_list(ids.iter().map(|l| l.0));
        let rows = self.fetch_all(qb.build()).await?;
        rows.iter().map(login_from).collect()
    }

    /// The live login of each person, if any.
    pub async fn logins_by_people(&self, ids: &[PersonId]) -> StoreResult<Vec<Login>> {
        let mut qb = Sql::new(LOGIN_SELECT);
        qb.push(" WHERE l.deleted_at IS NULL AND l.person_id IN ").bind_list(ids.iter().map(|p| p.0));
        let rows = self.fetch_all(qb.build()).await?;
        rows.iter().map(login_from).collect()
    }

    pub async fn profiles_by_ids(&self, ids: &[ProfileId]) -> StoreResult<Vec<Profile>> {
        let mut qb =
            Sql::new(concat!("SELECT ", profile_columns!(), " FROM ", profiles_with_users!(), " WHERE pr.id IN "));
        qb.bind_list(ids.iter().map(|p| p.0));
        let rows = self.fetch_all(qb.build()).await?;
        rows.iter().map(profile_from).collect()
    }

    pub async fn profiles_of_site(&self, site: SiteId) -> StoreResult<Vec<Profile>> {
        let sql = concat!(
            "SELECT ",
            profile_columns!(),
            " FROM ",
            profiles_with_users!(),
            " WHERE pr.site_id = $1 ORDER BY pr.name_key, pr.id"
        );
        let rows = self.fetch_all(sqlx::query(sql).bind(site.0)).await?;
        rows.iter().map(profile_from).collect()
    }

    /// The modules of each profile, modules joined in so one statement serves the loader.
    pub async fn modules_of_profiles(&self, ids: &[ProfileId]) -> StoreResult<HashMap<ProfileId, Vec<Module>>> {
        let mut qb = Sql::new(
            "SELECT pm.profile_id, m.id, m.code, m.name FROM profile_modules pm \
             JOIN modules m ON m.id = pm.module_id WHERE pm.profile_id IN ",
        );
        qb.bind_list(ids.iter().map(|p| p.0));
        qb.push(" ORDER BY pm.profile_id, m.id");
        let rows = self.fetch_all(qb.build()).await?;
        let mut map: HashMap<ProfileId, Vec<Module>> = ids.iter().map(|id| (*id, Vec::new())).collect();
        for row in &rows {
            map.entry(ProfileId(row.try_get("profile_id")?)).or_default().push(module_from(row)?);
        }
        Ok(map)
    }

    /// A page of the users (live logins of live people) of each of
    /// `parents` (sites or profiles, as `of` says), by username, in one statement.
    pub async fn users_pages(
        &self,
        of: Parent,
        parents: &[i64],
        filter: &UserFilter,
        slice: &Slice<String>,
    ) -> StoreResult<HashMap<i64, Rows<(Login, Person)>>> {
        self.pages(&USERS, of.login_column(), parents, &user_conditions(filter), slice, user_from).await
    }

    /// How many users each of `parents` has that pass `filter`, in one statement.
    pub async fn users_counts(
        &self,
        of: Parent,
        parents: &[i64],
        filter: &UserFilter,
    ) -> StoreResult<HashMap<i64, i64>> {
        self.counts(&USERS, of.login_column(), parents, &user_conditions(filter)).await
    }

    /// A page of the people of each of `sites`, by (name, id), in one statement.
    pub async fn people_pages(
        &self,
        sites: &[i64],
        filter: &PersonFilter,
        slice: &Slice<(String, i64)>,
    ) -> StoreResult<HashMap<i64, Rows<Person>>> {
        self.pages(&PEOPLE, "p.site_id", sites, &person_conditions(filter), slice, person_from).await
    }

    /// How many people each of `sites` has that pass `filter`, in one statement.
    pub async fn people_counts(&self, sites: &[i64], filter: &PersonFilter) -> StoreResult<HashMap<i64, i64>> {
        self.counts(&PEOPLE, "p.site_id", sites, &person_conditions(filter)).await
    }

    /// Each pool's counter beside a fresh recount of R2, for `verify` and tests.
    pub async fn pool_recount(&self) -> StoreResult<Vec<(Pool, i64)>> {
        // One grouped pass over the logins (not one scan per pool): fast enough
        // to run right after a load test on 500,000 people.
        let sql = "SELECT lp.site_id, lp.module_id, lp.total, lp.used, lp.version, COALESCE(c.n, 0) AS recount \
                   FROM license_pools lp LEFT JOIN ( \
                     SELECT l.site_id, pm.module_id, COUNT(*) AS n FROM logins l \
                     JOIN people p ON p.id = l.person_id \
                     JOIN profile_modules pm ON pm.profile_id = l.profile_id \
                     WHERE l.deleted_at IS NULL AND p.deleted_at IS NULL GROUP BY l.site_id, pm.module_id \
                   ) c ON c.site_id = lp.site_id AND c.module_id = lp.module_id \
                   ORDER BY lp.site_id, lp.module_id";
        let rows = self.fetch_all(sqlx::query(sql)).await?;
        rows.iter().map(|r| Ok((pool_from(r)?, r.try_get("recount")?))).collect()
    }

    /// Each profile's user counter beside a fresh recount.
    pub async fn profile_recount(&self) -> StoreResult<Vec<(Profile, i64)>> {
        let sql = concat!(
            "SELECT ",
            profile_columns!(),
            ", COALESCE(c.n, 0) AS recount FROM ",
            profiles_with_users!(),
            " LEFT JOIN ( \
               SELECT l.profile_id, COUNT(*) AS n FROM logins l JOIN people p ON p.id = l.person_id \
               WHERE l.deleted_at IS NULL AND p.deleted_at IS NULL GROUP BY l.profile_id \
             ) c ON c.profile_id = pr.id ORDER BY pr.id"
        );
        let rows = self.fetch_all(sqlx::query(sql)).await?;
        rows.iter().map(|r| Ok((profile_from(r)?, r.try_get("recount")?))).collect()
    }
}

/// Site-owned objects whose site can be looked up by id.
#[derive(Debug, Clone, Copy)]
pub enum Owned {
    Person(PersonId),
    Login(LoginId),
    Profile(ProfileId),
}

impl Store {
    /// The site an object belongs to (a deleted login has none).
    pub async fn site_of(&self, object: Owned) -> StoreResult<Option<SiteId>> {
        let (sql, id) = match object {
            Owned::Person(id) => ("SELECT site_id FROM people WHERE id = $1", id.0),
            Owned::Login(id) => ("SELECT site_id FROM logins WHERE id = $1 AND deleted_at IS NULL", id.0),
            Owned::Profile(id) => ("SELECT site_id FROM profiles WHERE id = $1", id.0),
        };
        let row = self.fetch_optional(sqlx::query(sql).bind(id)).await?;
        row.map(|r| r.try_get("site_id").map(SiteId)).transpose()
    }

    pub async fn module_by_code(&self, code: &ModuleCode) -> StoreResult<Option<Module>> {
        let row = self
            .fetch_optional(
                sqlx::query("SELECT id, code, name FROM modules WHERE code = $1").bind(code.as_str().to_string()),
            )
            .await?;
        row.as_ref().map(module_from).transpose()
    }
}

/// One consistent read (a single statement) of what moving a login to a
/// profile needs and what the site has: see [`Store::move_snapshot`].
pub struct MoveSnapshot {
    /// Modules of the login's current profile and of the target profile (of the same site).
    pub current: Vec<ModuleId>,
    pub target: Vec<ModuleId>,
    pub occupying: bool,
    pub pools: Vec<Pool>,
    /// Every module, in id order.
    pub modules: Vec<Module>,
    pub self_service: bool,
}

impl Store {
    /// The live login `login` of `site`, the modules of its profile and of
    /// `profile`, the site's pools and agreement, as of one moment; `None`
    /// when there is no such login. Takes no lock: a refusal decided on it
    /// is the answer the change gets at that moment.
    pub async fn move_snapshot(
        &self,
        site: SiteId,
        login: LoginId,
        profile: ProfileId,
    ) -> StoreResult<Option<MoveSnapshot>> {
        let sql = "SELECT m.id AS module_id, m.code, m.name, lp.total, lp.used, lp.version, l.occupying, \
                   (SELECT a.self_service FROM agreements a WHERE a.site_id = $1) AS self_service, \
                   CASE WHEN EXISTS (SELECT 1 FROM profile_modules pm WHERE pm.profile_id = l.profile_id \
                     AND pm.module_id = m.id) THEN 1 ELSE 0 END AS in_current, \
                   CASE WHEN EXISTS (SELECT 1 FROM profile_modules pm WHERE pm.profile_id = $3 \
                     AND pm.site_id = $1 AND pm.module_id = m.id) THEN 1 ELSE 0 END AS in_target \
                   FROM modules m JOIN logins l ON l.id = $2 AND l.site_id = $1 AND l.deleted_at IS NULL \
                   LEFT JOIN license_pools lp ON lp.module_id = m.id AND lp.site_id = $1 \
                   ORDER BY m.id";
        let rows = self.fetch_all(sqlx::query(sql).bind(site.0).bind(login.0).bind(profile.0)).await?;
        let Some(first) = rows.first() else { return Ok(None) };
        let mut snapshot = MoveSnapshot {
            current: Vec::new(),
            target: Vec::new(),
            occupying: first.try_get::<i64, _>("occupying")? != 0,
            pools: Vec::new(),
            modules: Vec::new(),
            self_service: first.try_get::<Option<i64>, _>("self_service")?.unwrap_or(0) != 0,
        };
        for row in &rows {
            let id = ModuleId(row.try_get("module_id")?);
            snapshot.modules.push(Module { id, code: row.try_get("code")?, name: row.try_get("name")? });
            if let (Some(total), Some(used), Some(version)) = (
                row.try_get::<Option<i64>, _>("total")?,
                row.try_get::<Option<i64>, _>("used")?,
                row.try_get::<Option<i64>, _>("version")?,
            ) {
                snapshot.pools.push(Pool { site_id: site, module_id: id, total, used, version });
            }
            if row.try_get::<i64, _>("in_current")? != 0 {
                snapshot.current.push(id);
            }
            if row.try_get::<i64, _>("in_target")? != 0 {
                snapshot.target.push(id);
            }
        }
        Ok(Some(snapshot))
    }
}
