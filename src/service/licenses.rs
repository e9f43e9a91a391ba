//! Changing totals (R10) and agreement owners (R11): license orders with an
//! idempotent checkout for self-service agreements, change requests decided
//! by a vendor operator otherwise. Both apply totals the same way, with R5
//! re-checked at that moment, every line or none.

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

fn licensed_site(principal: &Principal, site: Option<SiteId>, what: &'static str) -> ServiceResult<SiteId> {
    let site = site.ok_or(ServiceError::NotFound(what))?;
    authorize(principal, Action::ManageLicenses(site), what)?;
    Ok(site)
}

/// Sets every line's total in `tx`, in module order, re-checking R5 at this
/// moment; any line below usage refuses the whole change with every such pool.
async fn apply_totals(
    tx: &mut Tx,
    site: SiteId,
    lines: &[TotalLine],
) -> ServiceResult<Result<Vec<PoolChange>, Refusal>> {
    let start = tx.journal().len();
    let mut below = Vec::new();
    for line in lines {
        let total = LicenseTotal::parse(line.new_total, "total")?;
        match tx.set_pool_total(site, line.module_id, total).await? {
            Ok(Some(_)) => {}
            Ok(None) => return Err(ServiceError::NotFound("license pool")),
            Err(pool) => {
                tx.note(PoolChange {
                    module_id: pool.module_id,
                    used_before: pool.used,
                    used_after: pool.used,
                    total_before: pool.total,
                    total_after: line.new_total,
                });
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
    Ok(Err(Refusal::TotalsBelowUsage { pools }))
}

/// Drafts a license order (self-service agreements only).
pub async fn create_order(
    store: &Store,
    principal: &Principal,
    site: Option<SiteId>,
    lines: &[(ModuleCode, LicenseTotal)],
) -> ServiceResult<Outcome<OrderId>> {
    let site = licensed_site(principal, site, "site")?;
    let lines = resolve_lines(store, lines).await?;
    let mut tx = store.begin().await?;
    let outcome = if !tx.self_service(site).await? {
        Err(Refusal::WrongLicensePath { remedy: Remedy::ChangeRequest })
    } else {
        let id = tx.insert_order(site, &principal.actor(), now()).await?;
        tx.set_order_lines(id, &lines).await?;
        Ok(id)
    };
    let target = Target::new(format!("order:{}", outcome.as_ref().map(|o| o.0).unwrap_or_default()));
    finish(store, tx, principal, Some(site), "createLicenseOrder", &target, outcome).await
}

/// Replaces a draft's lines.
pub async fn update_order(
    store: &Store,
    principal: &Principal,
    id: OrderId,
    lines: &[(ModuleCode, LicenseTotal)],
) -> ServiceResult<Outcome<OrderId>> {
    let site = licensed_site(principal, store.site_of_order(id).await?, "license order")?;
    let lines = resolve_lines(store, lines).await?;
    let mut tx = store.begin().await?;
    let (order, _) = tx.lock_order(site, id).await?.ok_or(ServiceError::NotFound("license order"))?;
    let outcome = if order.status != OrderStatus::Draft {
        Err(Refusal::OrderNotDraft { status: order.status })
    } else {
        tx.set_order_lines(id, &lines).await?;
        Ok(id)
    };
    finish(store, tx, principal, Some(site), "updateLicenseOrder", &Target::new(format!("order:{}", id.0)), outcome)
        .await
}

/// Discards a draft.
pub async fn discard_order(store: &Store, principal: &Principal, id: OrderId) -> ServiceResult<Outcome<OrderId>> {
    let site = licensed_site(principal, store.site_of_order(id).await?, "license order")?;
    let mut tx = store.begin().await?;
    let (order, _) = tx.lock_order(site, id).await?.ok_or(ServiceError::NotFound("license order"))?;
    let outcome = if order.status != OrderStatus::Draft {
        Err(Refusal::OrderNotDraft { status: order.status })
    } else {
        tx.discard_order(id).await?;
        Ok(id)
    };
    finish(store, tx, principal, Some(site), "discardLicenseOrder", &Target::new(format!("order:{}", id.0)), outcome)
        .await
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
) -> ServiceResult<Decided<OrderId>> {
    let site = licensed_site(principal, store.site_of_order(id).await?, "license order")?;
    let mut tx = store.begin().await?;
    let (order, lines) = tx.lock_order(site, id).await?.ok_or(ServiceError::NotFound("license order"))?;
    if order.status == OrderStatus::CheckedOut && order.idempotency_key.as_deref() == Some(key.as_str()) {
        // A retry: the first checkout's result, nothing applied again.
        tx.rollback().await?;
        return Ok(Decided { outcome: Ok(id), pools: Vec::new() });
    }
    let outcome = if order.status != OrderStatus::Draft {
        Err(Refusal::OrderNotDraft { status: order.status })
    } else if tx.order_with_key(site, key.as_str()).await?.is_some_and(|other| other != id) {
        return Err(
            InvalidInput::new("idempotencyKey", "this key was already used for another order; use a new key").into()
        );
    } else if !tx.self_service(site).await? {
        Err(Refusal::WrongLicensePath { remedy: Remedy::ChangeRequest })
    } else {
        match apply_totals(&mut tx, site, &lines).await? {
            Err(refusal) => Err(refusal),
            Ok(changes) => {
                tx.complete_order(id, &principal.actor(), key.as_str(), &changes, now()).await?;
                Ok(id)
            }
        }
    };
    finish_with(
        store,
        tx,
        mode,
        principal,
        Some(site),
        "checkoutLicenseOrder",
        &Target::new(format!("order:{}", id.0)),
        outcome,
    )
    .await
}

/// Submits a change request (agreements without self-service).
pub async fn submit_request(
    store: &Store,
    principal: &Principal,
    site: Option<SiteId>,
    lines: &[(ModuleCode, LicenseTotal)],
    message: &RequestMessage,
) -> ServiceResult<Outcome<RequestId>> {
    let site = licensed_site(principal, site, "site")?;
    let lines = resolve_lines(store, lines).await?;
    let mut tx = store.begin().await?;
    let outcome = if tx.self_service(site).await? {
        Err(Refusal::WrongLicensePath { remedy: Remedy::LicenseOrder })
    } else {
        let id = tx.insert_request(site, message.as_str(), &principal.actor(), now()).await?;
        tx.insert_request_lines(id, &lines).await?;
        Ok(id)
    };
    let target = Target::new(format!("changeRequest:{}", outcome.as_ref().map(|r| r.0).unwrap_or_default()));
    finish(store, tx, principal, Some(site), "submitChangeRequest", &target, outcome).await
}

/// Cancels a pending change request; only its requester may.
pub async fn cancel_request(store: &Store, principal: &Principal, id: RequestId) -> ServiceResult<Outcome<RequestId>> {
    let site = licensed_site(principal, store.site_of_request(id).await?, "change request")?;
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
) -> ServiceResult<Outcome<RequestId>> {
    let mut tx = store.begin().await?;
    let (request, _) = tx.lock_request(id).await?.ok_or(ServiceError::NotFound("change request"))?;
    let me = principal.actor();
    if status == RequestStatus::Cancelled && (request.requested_by_kind != me.kind || request.requested_by_id != me.id)
    {
        return Err(ServiceError::Forbidden(REQUESTER_ONLY));
    }
    let outcome = if request.status != RequestStatus::Pending {
        Err(Refusal::RequestNotPending { status: request.status })
    } else {
        tx.decide_request(id, status, &me, reason, &[], now()).await?;
        Ok(id)
    };
    let action = if status == RequestStatus::Cancelled { "cancelChangeRequest" } else { "rejectChangeRequest" };
    finish(store, tx, principal, Some(site), action, &Target::new(format!("changeRequest:{}", id.0)), outcome).await
}

/// Approves a pending change request: applied exactly like a checkout (R5 re-checked now).
pub async fn approve_request(
    store: &Store,
    principal: &Principal,
    id: RequestId,
    mode: Mode,
) -> ServiceResult<Decided<RequestId>> {
    let site = store.site_of_request(id).await?.ok_or(ServiceError::NotFound("change request"))?;
    authorize(principal, Action::VendorDecision(site), "change request")?;
    let mut tx = store.begin().await?;
    let (request, lines) = tx.lock_request(id).await?.ok_or(ServiceError::NotFound("change request"))?;
    let outcome = if request.status != RequestStatus::Pending {
        Err(Refusal::RequestNotPending { status: request.status })
    } else {
        match apply_totals(&mut tx, site, &lines).await? {
            Err(refusal) => Err(refusal),
            Ok(changes) => {
                tx.decide_request(id, RequestStatus::Approved, &principal.actor(), None, &changes, now()).await?;
                Ok(id)
            }
        }
    };
    let target = Target::new(format!("changeRequest:{}", id.0));
    finish_with(store, tx, mode, principal, Some(site), "approveChangeRequest", &target, outcome).await
}

/// Rejects a pending change request with a reason.
pub async fn reject_request(
    store: &Store,
    principal: &Principal,
    id: RequestId,
    reason: &RejectionReason,
) -> ServiceResult<Outcome<RequestId>> {
    let site = store.site_of_request(id).await?.ok_or(ServiceError::NotFound("change request"))?;
    authorize(principal, Action::VendorDecision(site), "change request")?;
    close_request(store, principal, site, id, RequestStatus::Rejected, Some(reason.as_str())).await
}

/// A new owner account, parsed.
#[derive(Clone)]
pub struct OwnerInput {
    pub name: PersonName,
    pub username: Username,
    pub password: Password,
}

/// Creates an agreement owner's account (operators).
pub async fn create_owner(store: &Store, principal: &Principal, input: OwnerInput) -> ServiceResult<Outcome<OwnerId>> {
    authorize(principal, Action::CreateSite, "owner")?;
    let hash = staff::hash_password(&input.password).await?;
    let mut tx = store.begin().await?;
    let outcome = match tx.insert_owner(&input.name, &input.username, &hash, now()).await? {
        Some(id) => Ok(id),
        None => Err(Refusal::UsernameTaken { username: input.username.as_str().to_string() }),
    };
    let target = Target::new(format!("owner:{}", input.username.as_str()));
    finish(store, tx, principal, None, "createOwnerAccount", &target, outcome).await
}

/// Sets an agreement's self-service flag and/or owner (operators; R10, R11).
pub async fn update_agreement(
    store: &Store,
    principal: &Principal,
    site: SiteId,
    self_service: Option<bool>,
    owner: Option<Option<OwnerId>>,
) -> ServiceResult<Outcome<SiteId>> {
    authorize(principal, Action::VendorDecision(site), "site")?;
    let mut tx = store.begin().await?;
    if let Some(Some(owner)) = owner
        && !tx.owner_exists(owner).await?
    {
        return Err(ServiceError::NotFound("owner account"));
    }
    if !tx.update_agreement(site, self_service, owner).await? {
        return Err(ServiceError::NotFound("site"));
    }
    finish(store, tx, principal, Some(site), "updateAgreement", &Target::new(format!("site:{}", site.0)), Ok(site))
        .await
}
