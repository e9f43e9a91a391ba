//! The license domain of `shared/DOMAIN.md`: identifiers, values parsed once at
//! the boundary, principals, and the policy layer that decides who may do what
//! and whether a change fits the pools. Knows nothing of HTTP, GraphQL or SQL.

pub mod policy;
pub mod values;

pub use values::*;

/// Database id of a site (the tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteId(pub i64);
/// Database id of a person (staff record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonId(pub i64);
/// Database id of a login (what makes a person a user).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LoginId(pub i64);
/// Database id of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProfileId(pub i64);
/// Database id of a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleId(pub i64);
/// Database id of a vendor operator account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OperatorId(pub i64);

/// Who is asking. Every query and mutation except `signIn` resolves to one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A vendor operator: creates sites, sets pool totals, reads everything.
    Operator { id: OperatorId, username: String },
    /// A site login; `is_admin` makes it a site administrator.
    SiteLogin { login_id: LoginId, person_id: PersonId, site_id: SiteId, username: String, is_admin: bool },
}

impl Principal {
    /// The name recorded as actor on audit events.
    pub fn actor_name(&self) -> String {
        match self {
            Principal::Operator { username, .. } => format!("operator:{username}"),
            Principal::SiteLogin { username, .. } => format!("login:{username}"),
        }
    }

    /// The site a site principal belongs to; `None` for operators.
    pub fn site(&self) -> Option<SiteId> {
        match self {
            Principal::Operator { .. } => None,
            Principal::SiteLogin { site_id, .. } => Some(*site_id),
        }
    }
}

/// A module as stored: modules are data, not an enum in code (R2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    pub id: ModuleId,
    pub code: String,
    pub name: String,
}

/// One (site, module) pool with its maintained usage counter (R3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub site_id: SiteId,
    pub module_id: ModuleId,
    pub total: i64,
    pub used: i64,
}

impl Pool {
    /// Licenses still free in this pool.
    pub fn available(&self) -> i64 {
        self.total - self.used
    }
}

/// A site (tenant).
#[derive(Debug, Clone)]
pub struct Site {
    pub id: SiteId,
    pub name: String,
    pub created_at: i64,
}

/// The contract of a site; `self_service` decides how totals change (R10).
#[derive(Debug, Clone)]
pub struct Agreement {
    pub id: i64,
    pub site_id: SiteId,
    pub name: String,
    pub self_service: bool,
}

/// A staff record (R1); `deleted_at` marks a tombstone (R7).
#[derive(Debug, Clone)]
pub struct Person {
    pub id: PersonId,
    pub site_id: SiteId,
    pub name: String,
    pub email: Option<String>,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
}

/// A login: what makes a person a user (R1).
#[derive(Debug, Clone)]
pub struct Login {
    pub id: LoginId,
    pub site_id: SiteId,
    pub person_id: PersonId,
    pub username: String,
    pub valid_until: Option<Date>,
    pub profile_id: ProfileId,
    pub is_admin: bool,
    pub occupying: bool,
    pub created_at: i64,
}

impl Login {
    /// Whether the login may sign in on `today` (R9: `validUntil` is inclusive).
    pub fn active_on(&self, today: Date) -> bool {
        self.valid_until.is_none_or(|d| d >= today)
    }
}

/// A named set of modules; `user_count` counts the logins occupying through it.
#[derive(Debug, Clone)]
pub struct Profile {
    pub id: ProfileId,
    pub site_id: SiteId,
    pub name: String,
    pub user_count: i64,
}

/// Seconds since the Unix epoch, the one clock the domain uses.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
