//! Application services: one function per use case. Each runs the policy
//! layer, then one store transaction that writes all of its effects or none,
//! and records an audit event for every accepted and every refused change.
//! Resolvers call these and only translate the results.

pub mod auth;
pub mod bootstrap;
pub mod licenses;
pub mod live;
pub mod refusals;
pub mod sites;
pub mod staff;
pub mod throttle;

use crate::domain::policy::{self, Action, Denied, Remedy, Rule};
use crate::domain::*;
use crate::store::{self, AuditEvent, Failure, Store, StoreError, Tx};
pub use refusals::*;

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
    /// The database could not do it now: unreachable, too busy after the
    /// retries, or past the statement timeout. Nothing was changed.
    Unavailable(Failure),
    /// Anything else; already logged, never shown to clients.
    Internal,
}

impl ServiceError {
    /// Whether running the use case again may succeed: its transaction lost
    /// a race (deadlock, serialization failure, SQLite's lock still busy)
    /// and was rolled back whole.
    pub fn is_transient(&self) -> bool {
        matches!(self, ServiceError::Unavailable(Failure::Transient))
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match store::failure(&err) {
            Failure::Other => {
                tracing::error!(error = %err, "database error");
                ServiceError::Internal
            }
            failure => {
                tracing::warn!(error = %err, ?failure, "database unavailable");
                ServiceError::Unavailable(failure)
            }
        }
    }
}

/// Runs a use case (an expression that yields its future) again while it
/// fails only because its transaction lost a race, at most `retries` more
/// times, after a short, growing, randomised pause; then answers its last
/// result. Each run is one whole transaction, so a retry never repeats a
/// write that committed.
#[macro_export]
macro_rules! retrying {
    ($retries:expr, $call:expr) => {{
        let mut attempt = 0u32;
        loop {
            match $call.await {
                Err(e) if e.is_transient() && attempt < $retries => {
                    attempt += 1;
                    $crate::service::pause_before_retry(attempt).await;
                }
                result => break result,
            }
        }
    }};
}

/// The pause before retry number `attempt` (1, 2, ...): 5 ms, 10 ms, 20 ms,
/// ... up to 200 ms, each between half and all of that, so two requests
/// that collided do not collide again.
pub async fn pause_before_retry(attempt: u32) {
    let ceiling = (5u64 << attempt.saturating_sub(1).min(6)).min(200);
    let millis = rand::random_range(ceiling / 2..=ceiling);
    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
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

/// What a mutation decided: the success value or one of the refusals `R`
/// its use case declares (`refusals!`).
pub type Outcome<T, R> = Result<T, R>;

/// Whether a use case writes, or only says what it would decide (a preview
/// runs the very same code in a transaction that is rolled back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Apply,
    Preview,
}

/// What a use case decided, with what it did (or would do) to the pools.
#[derive(Debug, Clone)]
pub struct Decided<T, R> {
    pub outcome: Outcome<T, R>,
    /// The site whose pools `pools` are.
    pub site: Option<SiteId>,
    pub pools: Vec<PoolChange>,
}

/// What an audit event is about: the object a change created or changed
/// (`kind:id`, empty when there is none) and the person it concerns.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub label: String,
    pub person: Option<PersonId>,
}

impl Target {
    pub fn new(label: String) -> Self {
        Target { label, person: None }
    }
    pub fn person(id: PersonId) -> Self {
        Target { label: format!("person:{}", id.0), person: Some(id) }
    }
    /// No object: a refused creation, which made none.
    pub fn none() -> Self {
        Target::default()
    }
    /// The same object, concerning person `id` (a login's, a responsibility's holder).
    pub fn of_person(self, id: PersonId) -> Self {
        Target { person: Some(id), ..self }
    }
}

/// The target of a use case's event: `accepted` of what it made or changed
/// when it went through, `refused` otherwise.
pub(crate) fn target_of<T, R>(
    outcome: &ServiceResult<Outcome<T, R>>,
    accepted: impl FnOnce(&T) -> Target,
    refused: Target,
) -> Target {
    match outcome {
        Ok(Ok(value)) => accepted(value),
        _ => refused,
    }
}

/// Applies license deltas (module order) in `tx`. Every module that does
/// not fit is collected (and noted in the journal with the numbers it would
/// have reached); if any, the refusal names them all and the caller must
/// roll back (dropping `tx` does).
pub(crate) async fn apply_deltas(
    tx: &mut Tx,
    site: SiteId,
    deltas: &[(ModuleId, i64)],
) -> ServiceResult<Result<(), LicenseLimitExceeded>> {
    let mut short = Vec::new();
    for &(module, delta) in deltas {
        if !tx.apply_pool_delta(site, module, delta).await? {
            short.push((module, delta));
        }
    }
    if short.is_empty() {
        return Ok(Ok(()));
    }
    let (pools, modules, self_service) = tx.shortage_context(site).await?;
    let (refusal, notes) = shortage_refusal(&short, &pools, &modules, self_service);
    for note in notes {
        tx.note(note);
    }
    Ok(Err(refusal))
}

/// What adding `delta` to the usage of `module`'s pool among `pools` does to
/// it (whether or not it fits); `None` when the site has no such pool.
pub(crate) fn usage_change(pools: &[Pool], module: ModuleId, delta: i64) -> Option<PoolChange> {
    pools.iter().find(|p| p.module_id == module).map(|p| PoolChange {
        module_id: module,
        used_before: p.used,
        used_after: p.used + delta,
        total_before: p.total,
        total_after: p.total,
    })
}

/// The refusal of changes `short` (module, delta) that do not fit `pools`
/// (R4), with what each would have done to its pool.
pub(crate) fn shortage_refusal(
    short: &[(ModuleId, i64)],
    pools: &[Pool],
    modules: &[Module],
    self_service: bool,
) -> (LicenseLimitExceeded, Vec<PoolChange>) {
    let notes = short.iter().filter_map(|&(module, delta)| usage_change(pools, module, delta)).collect();
    let shortages = policy::shortages(short, pools)
        .into_iter()
        .filter_map(|s| {
            modules.iter().find(|m| m.id == s.module_id).map(|m| ModuleShortage { module: m.clone(), shortage: s })
        })
        .collect();
    (LicenseLimitExceeded { shortages, remedy: Remedy::for_agreement(self_service) }, notes)
}

/// Records an accepted change inside its own transaction.
pub(crate) async fn audit_accepted(
    tx: &mut Tx,
    principal: &Principal,
    site: Option<SiteId>,
    action: &str,
    target: &Target,
) -> ServiceResult<()> {
    let actor = principal.actor();
    let pools = tx.journal().to_vec();
    let event = AuditEvent {
        site,
        actor: &actor,
        action,
        target: &target.label,
        target_person: target.person,
        outcome: "ACCEPTED",
        rule: None,
        code: None,
        message: String::new(),
        pools: &pools,
    };
    session_held(tx.insert_audit(event, now()).await?)
}

/// What a session guard that failed answers ([`crate::store::SessionGuard`]):
/// the session ended or changed while the change ran, and nothing was written.
pub const SESSION_CHANGED: &str = "the session ended or changed while this change ran; nothing was changed";

/// Whether an audit event was written, as the answer to a session guard.
fn session_held(written: bool) -> ServiceResult<()> {
    if written { Ok(()) } else { Err(ServiceError::Unauthenticated(SESSION_CHANGED)) }
}

/// A refused change as its audit event records it.
struct Refused<'a> {
    site: Option<SiteId>,
    target: &'a Target,
    code: &'static str,
    rule: Option<&'a str>,
    message: String,
    pools: &'a [PoolChange],
}

impl<'a> Refused<'a> {
    fn of(site: Option<SiteId>, target: &'a Target, refusal: &impl Refusal, pools: &'a [PoolChange]) -> Self {
        Refused { site, target, code: refusal.code(), rule: Some(refusal.rule()), message: refusal.message(), pools }
    }

    /// NOT_FOUND, answered alike for a missing object and another site's
    /// (R13). So it is recorded on the actor's own site (none for operators
    /// and owners of several agreements), with no target and no numbers:
    /// nothing of the object, which may be another site's.
    fn not_found(principal: &Principal, what: &'static str) -> Self {
        static NONE: Target = Target { label: String::new(), person: None };
        Refused {
            site: principal.default_site(),
            target: &NONE,
            code: "NOT_FOUND",
            rule: None,
            message: not_found_message(what),
            pools: &[],
        }
    }

    fn event<'e>(&'e self, actor: &'e Actor, action: &'e str) -> AuditEvent<'e> {
        AuditEvent {
            site: self.site,
            actor,
            action,
            target: &self.target.label,
            target_person: self.target.person,
            outcome: "REFUSED",
            rule: self.rule,
            code: Some(self.code),
            message: self.message.clone(),
            pools: self.pools,
        }
    }
}

/// The message of a NOT_FOUND answer about a `what`.
pub fn not_found_message(what: &str) -> String {
    format!("No such {what}.")
}

/// Records a refusal in the transaction that decided it: undoes the
/// change's writes, writes the event, commits. The answer goes out only
/// after that commit, so no refusal is answered without its event.
async fn record_in(mut tx: Tx, principal: &Principal, action: &str, refused: Refused<'_>) -> ServiceResult<()> {
    tx.undo_change().await?;
    let actor = principal.actor();
    session_held(tx.insert_audit(refused.event(&actor, action), now()).await?)?;
    tx.commit().await?;
    Ok(())
}

/// Records a refusal decided on reads alone, before any write: its event is
/// the only thing written, in one statement of its own, before it is answered.
async fn record_alone(store: &Store, principal: &Principal, action: &str, refused: Refused<'_>) -> ServiceResult<()> {
    let actor = principal.actor();
    session_held(store.insert_audit(refused.event(&actor, action), now()).await?)
}

/// Records a change refused on a lock-free read (nothing was written, no
/// transaction begun), as [`record_alone`] does.
pub(crate) async fn audit_refused(
    store: &Store,
    principal: &Principal,
    site: Option<SiteId>,
    action: &str,
    target: &Target,
    refusal: &impl Refusal,
    pools: &[PoolChange],
) -> ServiceResult<()> {
    record_alone(store, principal, action, Refused::of(site, target, refusal, pools)).await?;
    crate::observability::record_refusal(refusal.code(), refusal.rule());
    Ok(())
}

/// Passes `result` on; a NOT_FOUND in it, decided on reads before the
/// change began (an id of no object, or of another site's), is recorded
/// first, unless this is a preview.
pub(crate) async fn recorded<T>(
    store: &Store,
    principal: &Principal,
    mode: Mode,
    action: &str,
    result: ServiceResult<T>,
) -> ServiceResult<T> {
    match result {
        Err(ServiceError::NotFound(what)) if mode == Mode::Apply => {
            record_alone(store, principal, action, Refused::not_found(principal, what)).await?;
            Err(ServiceError::NotFound(what))
        }
        other => other,
    }
}

/// Records a mutation refused by an authorization rule (FORBIDDEN).
pub async fn audit_denied(
    store: &Store,
    principal: &Principal,
    action: &str,
    rule: &str,
    message: &str,
) -> ServiceResult<()> {
    static NONE: Target = Target { label: String::new(), person: None };
    let refused = Refused {
        site: principal.default_site(),
        target: &NONE,
        code: "FORBIDDEN",
        rule: Some(rule),
        message: message.to_string(),
        pools: &[],
    };
    record_alone(store, principal, action, refused).await?;
    crate::observability::record_refusal("FORBIDDEN", rule);
    Ok(())
}

/// Finishes a use case with what it decided in `tx`. Applying: commits the
/// change with its audit event; a refusal, or a NOT_FOUND found in `tx`,
/// undoes the change's writes and commits its event alone, in the same
/// transaction ([`record_in`]); any other error rolls back. Previewing:
/// always rolls back and records nothing.
pub(crate) async fn finish_with<T, R: Refusal>(
    mut tx: Tx,
    mode: Mode,
    principal: &Principal,
    site: Option<SiteId>,
    action: &str,
    target: &Target,
    decided: ServiceResult<Outcome<T, R>>,
) -> ServiceResult<Decided<T, R>> {
    let pools = tx.journal().to_vec();
    match (mode, decided) {
        (_, Err(ServiceError::NotFound(what))) if mode == Mode::Apply => {
            record_in(tx, principal, action, Refused::not_found(principal, what)).await?;
            Err(ServiceError::NotFound(what))
        }
        // Dropping `tx` rolls it back.
        (_, Err(e)) => Err(e),
        (Mode::Preview, Ok(outcome)) => {
            tx.rollback().await?;
            Ok(Decided { outcome, site, pools })
        }
        (Mode::Apply, Ok(Ok(value))) => {
            audit_accepted(&mut tx, principal, site, action, target).await?;
            tx.commit().await?;
            Ok(Decided { outcome: Ok(value), site, pools })
        }
        (Mode::Apply, Ok(Err(refusal))) => {
            record_in(tx, principal, action, Refused::of(site, target, &refusal, &pools)).await?;
            crate::observability::record_refusal(refusal.code(), refusal.rule());
            Ok(Decided { outcome: Err(refusal), site, pools })
        }
    }
}

/// [`finish_with`] for use cases that have no preview.
pub(crate) async fn finish<T, R: Refusal>(
    tx: Tx,
    principal: &Principal,
    site: Option<SiteId>,
    action: &str,
    target: &Target,
    decided: ServiceResult<Outcome<T, R>>,
) -> ServiceResult<Outcome<T, R>> {
    Ok(finish_with(tx, Mode::Apply, principal, site, action, target, decided).await?.outcome)
}
