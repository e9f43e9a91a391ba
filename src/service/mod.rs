//! Application services: one function per use case. Each runs the policy
//! layer, then one store transaction that writes all of its effects or none,
//! and records an audit event for every accepted and every refused change.
//! Resolvers call these and only translate the results.

pub mod auth;
pub mod bootstrap;
pub mod sites;
pub mod staff;

use crate::domain::policy::{self, Action, Denied, Remedy, Rule, Shortage};
use crate::domain::*;
use crate::store::{AuditEvent, Store, StoreError, Tx};

/// Failures that are not a policy outcome: they become top-level GraphQL
/// errors with a stable code.
#[derive(Debug, Clone)]
pub enum ServiceError {
    /// No valid session (missing, expired, revoked, or its login expired).
    Unauthenticated(&'static str),
    /// The principal may not do this; the rule says why.
    Forbidden(Rule),
    /// No such object, or one of another site (R13). Names the kind.
    NotFound(&'static str),
    /// Malformed input.
    Invalid(InvalidInput),
    /// Anything else; already logged, never shown to clients.
    Internal,
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err, "database error");
        ServiceError::Internal
    }
}

impl From<InvalidInput> for ServiceError {
    fn from(err: InvalidInput) -> Self {
        ServiceError::Invalid(err)
    }
}

/// `what` is the kind of object the action was about, for the NOT_FOUND message.
pub fn authorize(principal: &Principal, action: Action, what: &'static str) -> Result<(), ServiceError> {
    policy::authorize(principal, action).map_err(|denied| match denied {
        Denied::NotFound => ServiceError::NotFound(what),
        Denied::Forbidden(rule) => ServiceError::Forbidden(rule),
    })
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// A module a change is short of, with the module itself for the answer.
#[derive(Debug, Clone)]
pub struct ModuleShortage {
    pub module: Module,
    pub shortage: Shortage,
}

/// Expected refusals: typed members of a mutation's result, never errors.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// R4: the change needs more licenses than the pools have free.
    LicenseLimitExceeded { shortages: Vec<ModuleShortage>, remedy: Remedy },
    /// R5: a total below current usage.
    PoolBelowUsage { module: Module, requested_total: i64, used: i64, users_to_remove: i64 },
    /// The username is taken (compared without case, installation-wide).
    UsernameTaken { username: String },
    /// A profile that still has users cannot be deleted.
    ProfileInUse { profile: ProfileId, user_count: i64, deleted_user_count: i64 },
    /// Another profile of the site has this name.
    ProfileNameTaken { name: String },
    /// Another site has this name.
    SiteNameTaken { name: String },
    /// The person already has a login (R1: one login per person).
    PersonAlreadyHasLogin { person: PersonId },
    /// The person is deleted; restore them first.
    PersonIsDeleted { person: PersonId },
}

impl Refusal {
    /// Stable code, also used as the audit rule.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::LicenseLimitExceeded { .. } => "LICENSE_LIMIT_EXCEEDED",
            Refusal::PoolBelowUsage { .. } => "POOL_BELOW_USAGE",
            Refusal::UsernameTaken { .. } => "USERNAME_TAKEN",
            Refusal::ProfileInUse { .. } => "PROFILE_IN_USE",
            Refusal::ProfileNameTaken { .. } => "PROFILE_NAME_TAKEN",
            Refusal::SiteNameTaken { .. } => "SITE_NAME_TAKEN",
            Refusal::PersonAlreadyHasLogin { .. } => "PERSON_ALREADY_HAS_LOGIN",
            Refusal::PersonIsDeleted { .. } => "PERSON_DELETED",
        }
    }

    /// The DOMAIN.md rule behind the refusal, where there is one.
    pub fn rule(&self) -> &'static str {
        match self {
            Refusal::LicenseLimitExceeded { .. } => "R4",
            Refusal::PoolBelowUsage { .. } => "R5",
            Refusal::PersonAlreadyHasLogin { .. } => "R1",
            Refusal::PersonIsDeleted { .. } => "R7",
            Refusal::ProfileInUse { .. } => "PROFILE_IN_USE_CANNOT_BE_DELETED",
            Refusal::UsernameTaken { .. } => "USERNAMES_UNIQUE_WITHOUT_CASE",
            Refusal::ProfileNameTaken { .. } | Refusal::SiteNameTaken { .. } => "NAMES_UNIQUE",
        }
    }

    /// A sentence a person understands.
    pub fn message(&self) -> String {
        match self {
            Refusal::LicenseLimitExceeded { shortages, remedy } => {
                let parts: Vec<String> = shortages
                    .iter()
                    .map(|s| {
                        format!(
                            "{} {} license{} missing (needs {}, {} free)",
                            s.shortage.shortfall,
                            s.module.name,
                            if s.shortage.shortfall == 1 { "" } else { "s" },
                            s.shortage.needed,
                            s.shortage.available
                        )
                    })
                    .collect();
                format!("Not enough licenses: {}. {}", parts.join("; "), remedy_text(*remedy))
            }
            Refusal::PoolBelowUsage { module, requested_total, used, users_to_remove } => format!(
                "The {} pool cannot be set to {requested_total}: {used} licenses are in use. \
                 {users_to_remove} user{} must lose {} access first (delete their login or move them to a profile without it).",
                module.name,
                if *users_to_remove == 1 { "" } else { "s" },
                module.name
            ),
            Refusal::UsernameTaken { username } => {
                format!("The username `{username}` is already taken.")
            }
            Refusal::ProfileInUse { user_count, deleted_user_count, .. } if *user_count > 0 => format!(
                "The profile still has {user_count} user{}; move them to another profile first.",
                if *user_count == 1 { "" } else { "s" }
            ),
            Refusal::ProfileInUse { deleted_user_count, .. } => format!(
                "The profile is still referred to by {deleted_user_count} deleted login{} kept for restoring; \
                 it cannot be deleted.",
                if *deleted_user_count == 1 { "" } else { "s" }
            ),
            Refusal::ProfileNameTaken { name } => {
                format!("A profile named `{name}` already exists on this site.")
            }
            Refusal::SiteNameTaken { name } => format!("A site named `{name}` already exists."),
            Refusal::PersonAlreadyHasLogin { .. } => "This person already has a login.".to_string(),
            Refusal::PersonIsDeleted { .. } => "This person is deleted.".to_string(),
        }
    }
}

/// How to get more licenses, for a person (R4, R10).
pub fn remedy_text(remedy: Remedy) -> &'static str {
    match remedy {
        Remedy::LicenseOrder => "Your agreement allows self-service: place a license order to buy more.",
        Remedy::ChangeRequest => "Submit a change request to the vendor to get more.",
    }
}

/// What a mutation decided: the success value or a typed refusal.
pub type Outcome<T> = Result<T, Refusal>;

/// Applies license deltas (module order) in `tx`. Every module that does
/// not fit is collected; if any, the refusal names them all with numbers and
/// the caller must roll back (dropping `tx` does).
pub(crate) async fn apply_deltas(
    tx: &mut Tx,
    site: SiteId,
    deltas: &[(ModuleId, i64)],
) -> ServiceResult<Result<(), Refusal>> {
    let mut short = Vec::new();
    for &(module, delta) in deltas {
        if !tx.apply_pool_delta(site, module, delta).await? {
            short.push((module, delta));
        }
    }
    if short.is_empty() {
        return Ok(Ok(()));
    }
    let pools = tx.pools(site).await?;
    let modules = tx.modules().await?;
    let remedy = Remedy::for_agreement(tx.self_service(site).await?);
    let shortages = policy::shortages(&short, &pools)
        .into_iter()
        .filter_map(|s| {
            modules.iter().find(|m| m.id == s.module_id).map(|m| ModuleShortage { module: m.clone(), shortage: s })
        })
        .collect();
    Ok(Err(Refusal::LicenseLimitExceeded { shortages, remedy }))
}

/// Records an accepted change inside its own transaction.
pub(crate) async fn audit_accepted(
    tx: &mut Tx,
    principal: &Principal,
    site: Option<SiteId>,
    action: &str,
    target: &str,
    detail: String,
) -> ServiceResult<()> {
    let actor = principal.actor_name();
    tx.insert_audit(AuditEvent { site, actor: &actor, action, target, outcome: "ACCEPTED", rule: None, detail }, now())
        .await?;
    Ok(())
}

/// Records a refused change after its transaction rolled back.
pub(crate) async fn audit_refused(
    store: &Store,
    principal: &Principal,
    site: Option<SiteId>,
    action: &str,
    target: &str,
    refusal: &Refusal,
) -> ServiceResult<()> {
    let actor = principal.actor_name();
    let mut tx = store.begin().await?;
    let event = AuditEvent {
        site,
        actor: &actor,
        action,
        target,
        outcome: "REFUSED",
        rule: Some(refusal.rule()),
        detail: format!("{}: {}", refusal.code(), refusal.message()),
    };
    tx.insert_audit(event, now()).await?;
    tx.commit().await?;
    Ok(())
}

/// Finishes a mutation: commits on success; on refusal the transaction is
/// dropped (rolled back) and the refusal audited.
pub(crate) async fn finish<T>(
    store: &Store,
    mut tx: Tx,
    principal: &Principal,
    site: Option<SiteId>,
    action: &str,
    target: &str,
    outcome: Outcome<T>,
) -> ServiceResult<Outcome<T>> {
    match outcome {
        Ok(value) => {
            audit_accepted(&mut tx, principal, site, action, target, String::new()).await?;
            tx.commit().await?;
            Ok(Ok(value))
        }
        Err(refusal) => {
            drop(tx);
            audit_refused(store, principal, site, action, target, &refusal).await?;
            Ok(Err(refusal))
        }
    }
}
