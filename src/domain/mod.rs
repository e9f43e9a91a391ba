//! The license domain of `docs/domain.md`: identifiers, values parsed once at
//! the boundary, principals, and the policy layer that decides who may do what
//! and whether a change fits the pools. Knows nothing of HTTP, GraphQL or SQL.

pub mod policy;
pub mod throttle;
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
/// Database id of an agreement owner's own account (R11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OwnerId(pub i64);
/// Database id of a license order (R10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderId(pub i64);
/// Database id of a change request (R10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub i64);
/// Database id of a responsibility (R12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResponsibilityId(pub i64);

/// Who is asking. Every query and mutation except `signIn` resolves to one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A vendor operator: creates sites, sets pool totals, reads everything.
    Operator { id: OperatorId, username: String },
    /// A site login; `is_admin` makes it a site administrator.
    SiteLogin {
        login_id: LoginId,
        person_id: PersonId,
        site_id: SiteId,
        username: String,
        /// The person's name, recorded on what they do (R7).
        name: String,
        is_admin: bool,
    },
    /// An agreement owner's own account: manages the pools of the sites
    /// whose agreements it owns, and nothing of their staff (R11).
    Owner { id: OwnerId, username: String, name: String, sites: Vec<SiteId> },
}

/// Who did something, as records keep it: the name is copied, so it
/// survives deletion (R7); `person` lets the API mark a deleted one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `OPERATOR`, `OWNER`, `LOGIN` or `SYSTEM`.
    pub kind: &'static str,
    /// The account id within its kind.
    pub id: i64,
    pub name: String,
    pub person: Option<PersonId>,
}

impl Principal {
    /// The principal as recorded on audit events, orders and requests.
    pub fn actor(&self) -> Actor {
        match self {
            Principal::Operator { id, username } => {
                Actor { kind: "OPERATOR", id: id.0, name: format!("{username} (vendor operator)"), person: None }
            }
            Principal::Owner { id, name, .. } => {
                Actor { kind: "OWNER", id: id.0, name: format!("{name} (agreement owner)"), person: None }
            }
            Principal::SiteLogin { login_id, person_id, name, .. } => {
                Actor { kind: "LOGIN", id: login_id.0, name: name.clone(), person: Some(*person_id) }
            }
        }
    }

    /// The site a site principal belongs to; `None` for operators and owners.
    pub fn site(&self) -> Option<SiteId> {
        match self {
            Principal::Operator { .. } | Principal::Owner { .. } => None,
            Principal::SiteLogin { site_id, .. } => Some(*site_id),
        }
    }

    /// The one site a principal acts on when it names none: a site login's
    /// own, or an owner's only site.
    pub fn default_site(&self) -> Option<SiteId> {
        match self {
            Principal::Owner { sites, .. } if sites.len() == 1 => Some(sites[0]),
            other => other.site(),
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
    /// Changes of `used` or `total` so far: of two reads of a pool, the one
    /// with the higher version is the newer.
    pub version: i64,
}

impl Pool {
    /// Licenses still free in this pool.
    pub fn available(&self) -> i64 {
        self.total - self.used
    }
}

/// What one change did (or, refused, would have done) to one pool: the
/// numbers of audit events and previews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolChange {
    pub module_id: ModuleId,
    pub used_before: i64,
    pub used_after: i64,
    pub total_before: i64,
    pub total_after: i64,
}

impl PoolChange {
    /// What setting `pool`'s total to `total` does to it (usage unchanged).
    pub fn new_total(pool: &Pool, total: i64) -> Self {
        PoolChange {
            module_id: pool.module_id,
            used_before: pool.used,
            used_after: pool.used,
            total_before: pool.total,
            total_after: total,
        }
    }

    /// Licenses missing for the change to fit (0 when it fits).
    pub fn shortfall(&self) -> i64 {
        (self.used_after - self.total_after).max(0)
    }
}

/// Status of a license order (R10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    Draft,
    CheckedOut,
    Discarded,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Draft => "DRAFT",
            OrderStatus::CheckedOut => "CHECKED_OUT",
            OrderStatus::Discarded => "DISCARDED",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [OrderStatus::Draft, OrderStatus::CheckedOut, OrderStatus::Discarded].into_iter().find(|x| x.as_str() == s)
    }
}

/// Status of a change request (R10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    Pending,
    Approved,
    Rejected,
    Cancelled,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "PENDING",
            RequestStatus::Approved => "APPROVED",
            RequestStatus::Rejected => "REJECTED",
            RequestStatus::Cancelled => "CANCELLED",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [RequestStatus::Pending, RequestStatus::Approved, RequestStatus::Rejected, RequestStatus::Cancelled]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// One line of an order or change request: a module's new total, and once
/// applied, the totals before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotalLine {
    pub module_id: ModuleId,
    pub new_total: i64,
    pub total_before: Option<i64>,
    pub total_after: Option<i64>,
}

/// A record of who did something (R7): a copied name, and the person for site logins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorRef {
    pub name: String,
    pub person: Option<PersonId>,
}

/// A license order (R10).
#[derive(Debug, Clone)]
pub struct LicenseOrder {
    pub id: OrderId,
    pub site_id: SiteId,
    pub status: OrderStatus,
    pub created_by: ActorRef,
    pub created_at: i64,
    pub checked_out_by: Option<ActorRef>,
    pub checked_out_at: Option<i64>,
    pub idempotency_key: Option<String>,
}

/// A change request to the vendor (R10).
#[derive(Debug, Clone)]
pub struct ChangeRequest {
    pub id: RequestId,
    pub site_id: SiteId,
    pub status: RequestStatus,
    pub message: String,
    pub requested_by: ActorRef,
    pub requested_by_kind: String,
    pub requested_by_id: i64,
    pub created_at: i64,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub reason: Option<String>,
}

/// A thing a person is responsible for on the site (R12).
#[derive(Debug, Clone)]
pub struct Responsibility {
    pub id: ResponsibilityId,
    pub site_id: SiteId,
    pub person_id: PersonId,
    pub kind: String,
    pub name: String,
    pub created_at: i64,
}

/// One audit event.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub id: i64,
    pub site_id: Option<SiteId>,
    pub at: i64,
    pub actor: ActorRef,
    pub actor_kind: String,
    pub action: String,
    pub target: String,
    pub target_person: Option<PersonId>,
    pub outcome: String,
    pub rule: Option<String>,
    /// A refusal's stable code; `None` for accepted changes.
    pub code: Option<String>,
    /// A refusal's message (empty for most accepted changes).
    pub message: String,
    pub pools: Vec<PoolChange>,
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
    pub owner: Option<Owner>,
}

/// An agreement owner (R11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub id: OwnerId,
    pub name: String,
    pub username: String,
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
