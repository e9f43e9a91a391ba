//! Expected refusals: typed answers of a mutation, never errors. Each is
//! defined here once, as a type with its numbers and its [`Refusal`] impl
//! (stable code, rule, message); its GraphQL object is an `#[Object]` impl
//! on the same type (`graphql/results.rs`). What a use case may refuse is
//! declared next to it with `refusals!`, and its mutation's result union
//! lists the same refusals; the compiler checks that the two agree
//! (`docs/decisions/0003-refusals-are-typed-results.md`).

use crate::domain::policy::{Remedy, Shortage};
use crate::domain::*;

/// What every refusal says: its audit event records all three, its answer
/// shows the code and the message.
///
/// Each refusal's GraphQL object has resolvers named `code` and `message`
/// too; on a concrete refusal type they shadow these, so call these as
/// `Refusal::message(&refusal)`.
pub trait Refusal {
    /// Stable code, also the audit event's code.
    fn code(&self) -> &'static str;
    /// The rule behind the refusal (`docs/domain.md`): its number, or the
    /// name of a decision that has none.
    fn rule(&self) -> &'static str;
    /// A sentence a person understands.
    fn message(&self) -> String;
}

/// The refusals of a use case that cannot be refused: none.
impl Refusal for std::convert::Infallible {
    fn code(&self) -> &'static str {
        match *self {}
    }
    fn rule(&self) -> &'static str {
        match *self {}
    }
    fn message(&self) -> String {
        match *self {}
    }
}

/// Declares what a use case may refuse: an enum with one variant per
/// refusal, named after it, that converts from each (`refusal.into()`) and
/// answers [`Refusal`] for the one it holds. The mutation's result union
/// (`result_union!` in `graphql/results.rs`) names the same refusals, and
/// converts from this enum by an exhaustive match, so a refusal that one
/// lists and the other does not fails to compile.
macro_rules! refusals {
    ($(#[$doc:meta])* pub enum $name:ident { $($refusal:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub enum $name {
            $($refusal($refusal),)+
        }

        $(impl From<$refusal> for $name {
            fn from(refusal: $refusal) -> Self {
                $name::$refusal(refusal)
            }
        })+

        impl $crate::service::Refusal for $name {
            fn code(&self) -> &'static str {
                match self {
                    $($name::$refusal(r) => $crate::service::Refusal::code(r),)+
                }
            }
            fn rule(&self) -> &'static str {
                match self {
                    $($name::$refusal(r) => $crate::service::Refusal::rule(r),)+
                }
            }
            fn message(&self) -> String {
                match self {
                    $($name::$refusal(r) => $crate::service::Refusal::message(r),)+
                }
            }
        }
    };
}
pub(crate) use refusals;

/// "s" unless there is exactly one.
fn plural(n: i64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// R4: the change needs more licenses than the pools have free.
#[derive(Debug, Clone)]
pub struct LicenseLimitExceeded {
    /// Every module the change is short of.
    pub shortages: Vec<ModuleShortage>,
    /// How to get more.
    pub remedy: Remedy,
}

/// A module a change is short of, with the module itself for the answer.
#[derive(Debug, Clone)]
pub struct ModuleShortage {
    pub module: Module,
    pub shortage: Shortage,
}

impl Refusal for LicenseLimitExceeded {
    fn code(&self) -> &'static str {
        "LICENSE_LIMIT_EXCEEDED"
    }
    fn rule(&self) -> &'static str {
        "R4"
    }
    fn message(&self) -> String {
        let parts: Vec<String> = self
            .shortages
            .iter()
            .map(|s| {
                format!(
                    "{} {} license{} missing (needs {}, {} free)",
                    s.shortage.shortfall,
                    s.module.name,
                    plural(s.shortage.shortfall),
                    s.shortage.needed,
                    s.shortage.available
                )
            })
            .collect();
        format!("Not enough licenses: {}. {}", parts.join("; "), remedy_text(self.remedy))
    }
}

/// How to get more licenses, for a person (R4, R10).
pub fn remedy_text(remedy: Remedy) -> &'static str {
    match remedy {
        Remedy::LicenseOrder => "Your agreement allows self-service: place a license order to buy more.",
        Remedy::ChangeRequest => "Submit a change request to the vendor to get more.",
    }
}

/// R5: a pool's total below its current usage.
#[derive(Debug, Clone)]
pub struct PoolBelowUsage {
    pub module: Module,
    pub requested_total: i64,
    pub used: i64,
    pub users_to_remove: i64,
}

impl Refusal for PoolBelowUsage {
    fn code(&self) -> &'static str {
        "POOL_BELOW_USAGE"
    }
    fn rule(&self) -> &'static str {
        "R5"
    }
    fn message(&self) -> String {
        let PoolBelowUsage { module, requested_total, used, users_to_remove } = self;
        format!(
            "The {} pool cannot be set to {requested_total}: {used} licenses are in use. \
             {users_to_remove} user{} must lose {} access first (delete their login or move them to a profile without it).",
            module.name,
            plural(*users_to_remove),
            module.name
        )
    }
}

/// The username is taken (compared without case, installation-wide).
#[derive(Debug, Clone)]
pub struct UsernameTaken {
    pub username: String,
}

impl Refusal for UsernameTaken {
    fn code(&self) -> &'static str {
        "USERNAME_TAKEN"
    }
    fn rule(&self) -> &'static str {
        "USERNAMES_UNIQUE_WITHOUT_CASE"
    }
    fn message(&self) -> String {
        format!("The username `{}` is already taken.", self.username)
    }
}

/// A profile that still has users, or deleted logins kept for restoring,
/// cannot be deleted.
#[derive(Debug, Clone)]
pub struct ProfileInUse {
    pub profile: ProfileId,
    pub user_count: i64,
    pub deleted_user_count: i64,
}

impl Refusal for ProfileInUse {
    fn code(&self) -> &'static str {
        "PROFILE_IN_USE"
    }
    fn rule(&self) -> &'static str {
        "PROFILE_IN_USE_CANNOT_BE_DELETED"
    }
    fn message(&self) -> String {
        let ProfileInUse { user_count, deleted_user_count, .. } = *self;
        if user_count > 0 {
            format!(
                "The profile still has {user_count} user{}; move them to another profile first.",
                plural(user_count)
            )
        } else {
            format!(
                "The profile is still referred to by {deleted_user_count} deleted login{} kept for restoring; \
                 it cannot be deleted.",
                plural(deleted_user_count)
            )
        }
    }
}

/// Another profile of the site has this name.
#[derive(Debug, Clone)]
pub struct ProfileNameTaken {
    pub name: String,
}

impl Refusal for ProfileNameTaken {
    fn code(&self) -> &'static str {
        "PROFILE_NAME_TAKEN"
    }
    fn rule(&self) -> &'static str {
        "NAMES_UNIQUE"
    }
    fn message(&self) -> String {
        format!("A profile named `{}` already exists on this site.", self.name)
    }
}

/// Another site has this name.
#[derive(Debug, Clone)]
pub struct SiteNameTaken {
    pub name: String,
}

impl Refusal for SiteNameTaken {
    fn code(&self) -> &'static str {
        "SITE_NAME_TAKEN"
    }
    fn rule(&self) -> &'static str {
        "NAMES_UNIQUE"
    }
    fn message(&self) -> String {
        format!("A site named `{}` already exists.", self.name)
    }
}

/// R1: the person already has a login (one login per person).
#[derive(Debug, Clone)]
pub struct PersonAlreadyHasLogin {
    pub person: PersonId,
}

impl Refusal for PersonAlreadyHasLogin {
    fn code(&self) -> &'static str {
        "PERSON_ALREADY_HAS_LOGIN"
    }
    fn rule(&self) -> &'static str {
        "R1"
    }
    fn message(&self) -> String {
        "This person already has a login.".to_string()
    }
}

/// R7: the person is deleted; restore them first.
#[derive(Debug, Clone)]
pub struct PersonDeleted {
    pub person: PersonId,
}

impl Refusal for PersonDeleted {
    fn code(&self) -> &'static str {
        "PERSON_DELETED"
    }
    fn rule(&self) -> &'static str {
        "R7"
    }
    fn message(&self) -> String {
        "This person is deleted.".to_string()
    }
}

/// R12: the person still holds responsibilities; name a colleague to hand them to.
#[derive(Debug, Clone)]
pub struct PersonHasResponsibilities {
    pub responsibilities: Vec<Responsibility>,
}

impl Refusal for PersonHasResponsibilities {
    fn code(&self) -> &'static str {
        "PERSON_HAS_RESPONSIBILITIES"
    }
    fn rule(&self) -> &'static str {
        "R12"
    }
    fn message(&self) -> String {
        let held = &self.responsibilities;
        format!(
            "This person is still responsible for {} thing{} ({}); name a colleague to hand {} to.",
            held.len(),
            if held.len() == 1 { "" } else { "s" },
            held.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", "),
            if held.len() == 1 { "it" } else { "them" },
        )
    }
}

/// R5 for orders and change requests: every pool the new totals would put below usage.
#[derive(Debug, Clone)]
pub struct TotalsBelowUsage {
    pub pools: Vec<BelowUsage>,
}

/// One pool a change of totals would put below its usage (R5).
#[derive(Debug, Clone)]
pub struct BelowUsage {
    pub module: Module,
    pub requested_total: i64,
    pub used: i64,
    pub users_to_remove: i64,
}

impl Refusal for TotalsBelowUsage {
    fn code(&self) -> &'static str {
        "TOTALS_BELOW_USAGE"
    }
    fn rule(&self) -> &'static str {
        "R5"
    }
    fn message(&self) -> String {
        let parts: Vec<String> = self
            .pools
            .iter()
            .map(|p| {
                format!(
                    "{} cannot go to {} with {} in use ({} user{} must lose access first)",
                    p.module.name,
                    p.requested_total,
                    p.used,
                    p.users_to_remove,
                    plural(p.users_to_remove)
                )
            })
            .collect();
        format!("Nothing was changed: {}.", parts.join("; "))
    }
}

/// R10: the agreement decides the path; `remedy` is the one to take.
#[derive(Debug, Clone)]
pub struct WrongLicensePath {
    pub remedy: Remedy,
}

impl Refusal for WrongLicensePath {
    fn code(&self) -> &'static str {
        "WRONG_LICENSE_PATH"
    }
    fn rule(&self) -> &'static str {
        "R10"
    }
    fn message(&self) -> String {
        match self.remedy {
            Remedy::LicenseOrder => {
                "This agreement allows self-service: change totals with a license order instead.".to_string()
            }
            Remedy::ChangeRequest => {
                "This agreement does not allow self-service: submit a change request to the vendor instead.".to_string()
            }
        }
    }
}

/// R10: the order is no longer a draft (checked out or discarded).
#[derive(Debug, Clone)]
pub struct OrderNotDraft {
    pub status: OrderStatus,
}

impl Refusal for OrderNotDraft {
    fn code(&self) -> &'static str {
        "ORDER_NOT_DRAFT"
    }
    fn rule(&self) -> &'static str {
        "R10"
    }
    fn message(&self) -> String {
        format!("The order is {} and can no longer be changed.", self.status.as_str().to_lowercase().replace('_', " "))
    }
}

/// R10: the change request is no longer pending.
#[derive(Debug, Clone)]
pub struct RequestNotPending {
    pub status: RequestStatus,
}

impl Refusal for RequestNotPending {
    fn code(&self) -> &'static str {
        "REQUEST_NOT_PENDING"
    }
    fn rule(&self) -> &'static str {
        "R10"
    }
    fn message(&self) -> String {
        format!("The change request is already {}.", self.status.as_str().to_lowercase())
    }
}
