//! Changing totals (R10) and agreement owners (R11): license orders with an
//! idempotent checkout for self-service agreements, change requests decided
//! by a vendor operator otherwise. Both apply totals the same way, with R5
//! re-checked at that moment, every line or none.

use std::convert::Infallible;

use super::*;
use crate::domain::policy::{REQUESTER_ONLY, users_to_remove};

/// New totals, parsed: one per module, at least one.
pub async fn resolve_lines(
    store: &Store,
    lines: &[(ModuleCode, LicenseTotal)],
) -> ServiceResult<Vec<(ModuleId, LicenseTotal)>> {
    if lines.is_empty() {
        return Err(InvalidInput::new("lines", "give at least one module and its new total").into());
    }
    let codes: Vec<ModuleCode> = lines.iter().map(|(c, _)| c.clone()).collect();
    let modules = staff::resolve_modules(store, &codes).await?;
    if modules.len() != lines.len() {
        return Err(InvalidInput::new("lines", "each module may appear only once").into());
    }
    let mut resolved: Vec<(ModuleId, LicenseTotal)> = lines
        .iter()
        .filter_map(|(code, total)| modules.iter().find(|m| m.code == code.as_str()).map(|m| (m.id, *total)))
        .collect();
    resolved.sort_by_key(|(m, _)| *m);
    Ok(resolved)
}

/// The site of the licenses `principal` manages in `action`; a NOT_FOUND is recorded.
async fn licensed_site(
    store: &Store,
    principal: &Principal,
    action: &str,
    site: Option<SiteId>,
    what: &'static str,
) -> ServiceResult<SiteId> {
    let site = site
        .ok_or(ServiceError::NotFound(what))
        .and_then(|site| authorize(principal, Action::ManageLicenses(site), what).map(|()| site));
    recorded(store, principal, Mode::Apply, action, site).await
}

/// The site of change request `id` for an operator's decision; a NOT_FOUND is recorded.
async fn decided_site(
    store: &Store,
    principal: &Principal,
    mode: Mode,
    action: &str,
    id: RequestId,
) -> ServiceResult<SiteId> {
    let site = match store.site_of_request(id).await? {
        Some(site) => authorize(principal, Action::VendorDecision(site), "change request").map(|()| site),
        None => Err(ServiceError::NotFound("change request")),
    };
    recorded(store, principal, mode, action, site).await
}

/// Sets every line's total in `tx`, in module order, re-checking R5 at this
/// moment; any line below usage refuses the whole change with every such pool.
async fn apply_totals(
    tx: &mut Tx,
    site: SiteId,
    lines: &[TotalLine],
) -> ServiceResult<Result<Vec<PoolChange>, TotalsBelowUsage>> {
    let start = tx.journal().len();
    let mut below = Vec::new();
    for line in lines {
        let total = LicenseTotal::parse(line.new_total, "total")?;
        match tx.set_pool_total(site, line.module_id, total).await? {
            Ok(Some(_)) => {}
            Ok(None) => return Err(ServiceError::NotFound("license pool")),
            Err(pool) => {
                tx.note(PoolChange::new_total(&pool, line.new_total));
                below.push((pool, line.new_total));
            }
        }
    }
    if below.is_empty() {
        return Ok(Ok(tx.journal()[start..].to_vec()));
    }
    let modules = tx.modules().await?;
    let pools = below
        .into_iter()
        .filter_map(|(pool, requested)| {
            modules.iter().find(|m| m.id == pool.module_id).map(|m| BelowUsage {
                module: m.clone(),
                requested_total: requested,
                used: pool.used,
                users_to_remove: users_to_remove(&pool, requested).unwrap_or(0),
            })
        })
        .collect();
    Ok(Err(TotalsBelowUsage { pools }))
}

refusals! {
    /// What `createLicenseOrder`, `updateLicenseOrder` and `discardLicenseOrder` may refuse.
    pub enum LicenseOrderRefusal { WrongLicensePath, OrderNotDraft }
}

/// Drafts a license order (self-service agreements only).
pub async fn create_order(
    store: &Store,
    principal: &Principal,
    site: Option<SiteId>,
    lines: &[(ModuleCode, LicenseTotal)],
) -> ServiceResult<Outcome<OrderId, LicenseOrderRefusal>> {
    const ACTION: &str = "createLicenseOrder";
    let site = licensed_site(store, principal, ACTION, site, "site").await?;
    let lines = resolve_lines(store, lines).await?;
    let mut tx = store.begin().await?;
    let decided = create_order_in(&mut tx, principal, site, &lines).await;
    let target = target_of(&decided, |o: &OrderId| Target::new(format!("order:{}", o.0)), Target::none());
    finish(tx, principal, Some(site), ACTION, &target, decided).await
}

async fn create_order_in(
    tx: &mut Tx,
    principal: &Principal,
    site: SiteId,
    lines: &[(ModuleId, LicenseTotal)],
) -> ServiceResult<Outcome<OrderId, LicenseOrderRefusal>> {
    if !tx.self_service(site).await? {
        return Ok(Err(WrongLicensePath { remedy: Remedy::ChangeRequest }.into()));
    }
    let id = tx.insert_order(site, &principal.actor(), now()).await?;
    tx.set_order_lines(id, lines).await?;
    Ok(Ok(id))
}

/// Replaces a draft's lines.
pub async fn update_order(
    store: &Store,
    principal: &Principal,
    id: OrderId,
    lines: &[(ModuleCode, LicenseTotal)],
) -> ServiceResult<Outcome<OrderId, LicenseOrderRefusal>> {
    const ACTION: &str = "updateLicenseOrder";
    let site = licensed_site(store, principal, ACTION, store.site_of_order(id).await?, "license order").await?;
    let lines = resolve_lines(store, lines).await?;
    let mut tx = store.begin().await?;
    let decided = change_draft(&mut tx, site, id, Some(&lines)).await;
    finish(tx, principal, Some(site), ACTION, &Target::new(format!("order:{}", id.0)), decided).await
}

/// Replaces a draft's lines (`Some`) or discards it (`None`).
async fn change_draft(
    tx: &mut Tx,
    site: SiteId,
    id: OrderId,
    lines: Option<&[(ModuleId, LicenseTotal)]>,
) -> ServiceResult<Outcome<OrderId, LicenseOrderRefusal>> {
    let (order, _) = tx.lock_order(site, id).await?.ok_or(ServiceError::NotFound("license order"))?;
    if order.status != OrderStatus::Draft {
        return Ok(Err(OrderNotDraft { status: order.status }.into()));
    }
    match lines {
        Some(lines) => tx.set_order_lines(id, lines).await?,
        None => tx.discard_order(id).await?,
    }
    Ok(Ok(id))
}

/// Discards a draft.
pub async fn discard_order(
    store: &Store,
    principal: &Principal,
    id: OrderId,
) -> ServiceResult<Outcome<OrderId, LicenseOrderRefusal>> {
    const ACTION: &str = "discardLicenseOrder";
    let site = licensed_site(store, principal, ACTION, store.site_of_order(id).await?, "license order").await?;
    let mut tx = store.begin().await?;
    let decided = change_draft(&mut tx, site, id, None).await;
    finish(tx, principal, Some(site), ACTION, &Target::new(format!("order:{}", id.0)), decided).await
}

refusals! {
    /// What `checkoutLicenseOrder` may refuse.
    pub enum CheckoutRefusal { TotalsBelowUsage, WrongLicensePath, OrderNotDraft }
}

/// Checks an order out: applies every line or none (R5 re-checked now).
/// The same idempotency key retried returns the first result and never
/// applies twice, also when the retries race each other: the order row is
/// locked first, so a retry waits for the first checkout and then finds it done.
pub async fn checkout_order(
    store: &Store,
    principal: &Principal,
    id: OrderId,
    key: &IdempotencyKey,
    mode: Mode,
) -> ServiceResult<Decided<OrderId, CheckoutRefusal>> {
    const ACTION: &str = "checkoutLicenseOrder";
    let site = store.site_of_order(id).await?.ok_or(ServiceError::NotFound("license order"));
    let site = site.and_then(|site| authorize(principal, Action::ManageLicenses(site), "license order").map(|()| site));
    let site = recorded(store, principal, mode, ACTION, site).await?;
    let mut tx = store.begin().await?;
    let decided = match checkout_in(&mut tx, principal, site, id, key).await {
        Err(Retried) => {
            // A retry: the first checkout's result, nothing applied again.
            tx.rollback().await?;
            return Ok(Decided { outcome: Ok(id), site: Some(site), pools: Vec::new() });
        }
        Ok(decided) => decided,
    };
    let target = Target::new(format!("order:{}", id.0));
    finish_with(tx, mode, principal, Some(site), ACTION, &target, decided).await
}

/// A checkout retried with the key of the checkout that went through.
struct Retried;

async fn checkout_in(
    tx: &mut Tx,
    principal: &Principal,
    site: SiteId,
    id: OrderId,
    key: &IdempotencyKey,
) -> Result<ServiceResult<Outcome<OrderId, CheckoutRefusal>>, Retried> {
    let (order, lines) = match tx.lock_order(site, id).await {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(Err(ServiceError::NotFound("license order"))),
        Err(e) => return Ok(Err(e.into())),
    };
    if order.status == OrderStatus::CheckedOut && order.idempotency_key.as_deref() == Some(key.as_str()) {
        return Err(Retried);
    }
    Ok(checkout_draft(tx, principal, site, id, key, &order, &lines).await)
}

async fn checkout_draft(
    tx: &mut Tx,
    principal: &Principal,
    site: SiteId,
    id: OrderId,
    key: &IdempotencyKey,
    order: &LicenseOrder,
    lines: &[TotalLine],
) -> ServiceResult<Outcome<OrderId, CheckoutRefusal>> {
    if order.status != OrderStatus::Draft {
        return Ok(Err(OrderNotDraft { status: order.status }.into()));
    }
    if tx.order_with_key(site, key.as_str()).await?.is_some_and(|other| other != id) {
        return Err(
            InvalidInput::new("idempotencyKey", "this key was already used for another order; use a new key").into()
        );
    }
    if !tx.self_service(site).await? {
        return Ok(Err(WrongLicensePath { remedy: Remedy::ChangeRequest }.into()));
    }
    match apply_totals(tx, site, lines).await? {
        Err(refusal) => Ok(Err(refusal.into())),
        Ok(changes) => {
            tx.complete_order(id, &principal.actor(), key.as_str(), &changes, now()).await?;
            Ok(Ok(id))
        }
    }
}

refusals! {
    /// What `submitChangeRequest`, `cancelChangeRequest` and `rejectChangeRequest` may refuse.
    pub enum ChangeRequestRefusal { WrongLicensePath, RequestNotPending }
}

/// Submits a change request (agreements without self-service).
pub async fn submit_request(
    store: &Store,
    principal: &Principal,
    site: Option<SiteId>,
    lines: &[(ModuleCode, LicenseTotal)],
    message: &RequestMessage,
) -> ServiceResult<Outcome<RequestId, ChangeRequestRefusal>> {
    const ACTION: &str = "submitChangeRequest";
    let site = licensed_site(store, principal, ACTION, site, "site").await?;
    let lines = resolve_lines(store, lines).await?;
    let mut tx = store.begin().await?;
    let decided = submit_request_in(&mut tx, principal, site, &lines, message).await;
    let target = target_of(&decided, |r: &RequestId| Target::new(format!("changeRequest:{}", r.0)), Target::none());
    finish(tx, principal, Some(site), ACTION, &target, decided).await
}

async fn submit_request_in(
    tx: &mut Tx,
    principal: &Principal,
    site: SiteId,
    lines: &[(ModuleId, LicenseTotal)],
    message: &RequestMessage,
) -> ServiceResult<Outcome<RequestId, ChangeRequestRefusal>> {
    if tx.self_service(site).await? {
        return Ok(Err(WrongLicensePath { remedy: Remedy::LicenseOrder }.into()));
    }
    let id = tx.insert_request(site, message.as_str(), &principal.actor(), now()).await?;
    tx.insert_request_lines(id, lines).await?;
    Ok(Ok(id))
}

/// Cancels a pending change request; only its requester may.
pub async fn cancel_request(
    store: &Store,
    principal: &Principal,
    id: RequestId,
) -> ServiceResult<Outcome<RequestId, ChangeRequestRefusal>> {
    let site =
        licensed_site(store, principal, "cancelChangeRequest", store.site_of_request(id).await?, "change request")
            .await?;
    close_request(store, principal, site, id, RequestStatus::Cancelled, None).await
}

/// Ends a pending request without applying it (cancelled or rejected).
async fn close_request(
    store: &Store,
    principal: &Principal,
    site: SiteId,
    id: RequestId,
    status: RequestStatus,
    reason: Option<&str>,
) -> ServiceResult<Outcome<RequestId, ChangeRequestRefusal>> {
    let mut tx = store.begin().await?;
    let decided = close_request_in(&mut tx, principal, id, status, reason).await;
    let action = if status == RequestStatus::Cancelled { "cancelChangeRequest" } else { "rejectChangeRequest" };
    finish(tx, principal, Some(site), action, &Target::new(format!("changeRequest:{}", id.0)), decided).await
}

async fn close_request_in(
    tx: &mut Tx,
    principal: &Principal,
    id: RequestId,
    status: RequestStatus,
    reason: Option<&str>,
) -> ServiceResult<Outcome<RequestId, ChangeRequestRefusal>> {
    let (request, _) = tx.lock_request(id).await?.ok_or(ServiceError::NotFound("change request"))?;
    let me = principal.actor();
    if status == RequestStatus::Cancelled && (request.requested_by_kind != me.kind || request.requested_by_id != me.id)
    {
        // Recorded with the other FORBIDDEN answers (graphql::denials).
        return Err(ServiceError::Forbidden(REQUESTER_ONLY));
    }
    if request.status != RequestStatus::Pending {
        return Ok(Err(RequestNotPending { status: request.status }.into()));
    }
    tx.decide_request(id, status, &me, reason, &[], now()).await?;
    Ok(Ok(id))
}

refusals! {
    /// What `approveChangeRequest` may refuse.
    pub enum ApproveChangeRequestRefusal { TotalsBelowUsage, RequestNotPending }
}

/// Approves a pending change request: applied exactly like a checkout (R5 re-checked now).
pub async fn approve_request(
    store: &Store,
    principal: &Principal,
    id: RequestId,
    mode: Mode,
) -> ServiceResult<Decided<RequestId, ApproveChangeRequestRefusal>> {
    const ACTION: &str = "approveChangeRequest";
    let site = decided_site(store, principal, mode, ACTION, id).await?;
    let mut tx = store.begin().await?;
    let decided = approve_request_in(&mut tx, principal, site, id).await;
    let target = Target::new(format!("changeRequest:{}", id.0));
    finish_with(tx, mode, principal, Some(site), ACTION, &target, decided).await
}

async fn approve_request_in(
    tx: &mut Tx,
    principal: &Principal,
    site: SiteId,
    id: RequestId,
) -> ServiceResult<Outcome<RequestId, ApproveChangeRequestRefusal>> {
    let (request, lines) = tx.lock_request(id).await?.ok_or(ServiceError::NotFound("change request"))?;
    if request.status != RequestStatus::Pending {
        return Ok(Err(RequestNotPending { status: request.status }.into()));
    }
    match apply_totals(tx, site, &lines).await? {
        Err(refusal) => Ok(Err(refusal.into())),
        Ok(changes) => {
            tx.decide_request(id, RequestStatus::Approved, &principal.actor(), None, &changes, now()).await?;
            Ok(Ok(id))
        }
    }
}

/// Rejects a pending change request with a reason.
pub async fn reject_request(
    store: &Store,
    principal: &Principal,
    id: RequestId,
    reason: &RejectionReason,
) -> ServiceResult<Outcome<RequestId, ChangeRequestRefusal>> {
    let site = decided_site(store, principal, Mode::Apply, "rejectChangeRequest", id).await?;
    close_request(store, principal, site, id, RequestStatus::Rejected, Some(reason.as_str())).await
}

/// A new owner account, parsed.
#[derive(Clone)]
pub struct OwnerInput {
    pub name: PersonName,
    pub username: Username,
    pub password: Password,
}

refusals! {
    /// What `createOwnerAccount` may refuse.
    pub enum CreateOwnerAccountRefusal { UsernameTaken }
}

/// Creates an agreement owner's account (operators).
pub async fn create_owner(
    store: &Store,
    principal: &Principal,
    input: OwnerInput,
) -> ServiceResult<Outcome<OwnerId, CreateOwnerAccountRefusal>> {
    authorize(principal, Action::CreateSite, "owner")?;
    let hash = staff::hash_password(&input.password).await?;
    let mut tx = store.begin().await?;
    let decided = match tx.insert_owner(&input.name, &input.username, &hash, now()).await {
        Ok(Some(id)) => Ok(Ok(id)),
        Ok(None) => Ok(Err(UsernameTaken { username: input.username.as_str().to_string() }.into())),
        Err(e) => Err(e.into()),
    };
    let target = target_of(&decided, |o: &OwnerId| Target::new(format!("owner:{}", o.0)), Target::none());
    finish(tx, principal, None, "createOwnerAccount", &target, decided).await
}

/// Sets an agreement's self-service flag and/or owner (operators; R10, R11).
pub async fn update_agreement(
    store: &Store,
    principal: &Principal,
    site: SiteId,
    self_service: Option<bool>,
    owner: Option<Option<OwnerId>>,
) -> ServiceResult<SiteId> {
    const ACTION: &str = "updateAgreement";
    recorded(store, principal, Mode::Apply, ACTION, authorize(principal, Action::VendorDecision(site), "site")).await?;
    let mut tx = store.begin().await?;
    let decided = update_agreement_in(&mut tx, site, self_service, owner).await;
    let Ok(site) = finish(tx, principal, Some(site), ACTION, &Target::new(format!("site:{}", site.0)), decided).await?;
    Ok(site)
}

async fn update_agreement_in(
    tx: &mut Tx,
    site: SiteId,
    self_service: Option<bool>,
    owner: Option<Option<OwnerId>>,
) -> ServiceResult<Outcome<SiteId, Infallible>> {
    if let Some(Some(owner)) = owner
        && !tx.owner_exists(owner).await?
    {
        return Err(ServiceError::NotFound("owner account"));
    }
    if !tx.update_agreement(site, self_service, owner).await? {
        return Err(ServiceError::NotFound("site"));
    }
    Ok(Ok(site))
}
