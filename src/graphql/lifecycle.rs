//! The license lifecycle in the API (R6, R7, R10, R11, R12): orders, change
//! requests, owners, restoring, responsibilities, the audit trail, and
//! previews that answer exactly what a mutation would decide.

use async_graphql::{Context, ID, InputObject, Object};

use super::context::rc;
use super::ids::{Global, Kind, decode, decode_any, id_to_audit_target};
use super::paging::{PageArgs, Total, connection, wants_total};
use super::query::{or_null, site_arg};
use super::results::*;
use super::scalars::DateTime;
use super::types::*;
use crate::domain::policy::Action;
use crate::domain::*;
use crate::service::{Mode, ServiceError, authorize, licenses, staff};
use crate::store::AuditFilter;

type R<T> = Result<T, ServiceError>;

/// One module's new total.
#[derive(InputObject)]
pub struct TotalLineInput {
    /// Module code, e.g. `DOCUMENT`.
    pub module: String,
    /// The new total, 0 or more.
    pub total: i32,
}

fn lines(input: &[TotalLineInput]) -> R<Vec<(ModuleCode, LicenseTotal)>> {
    input
        .iter()
        .map(|l| Ok((ModuleCode::parse(&l.module)?, LicenseTotal::parse(i64::from(l.total), "total")?)))
        .collect::<Result<_, InvalidInput>>()
        .map_err(ServiceError::from)
}

/// Filters of the audit trail; all given must match.
#[derive(InputObject, Default)]
pub struct AuditEventsFilter {
    /// Actor name contains this text (case-insensitive).
    pub actor_contains: Option<String>,
    /// Exact action, e.g. `createLogin`.
    pub action: Option<String>,
    /// Only events about this object (a global id, e.g. a person's or an order's).
    /// For a person, also the events about their login and responsibilities.
    pub target_id: Option<ID>,
    /// Only accepted or only refused changes.
    pub outcome: Option<AuditOutcome>,
    /// From this time on, inclusive.
    pub from: Option<DateTime>,
    /// Before this time.
    pub until: Option<DateTime>,
}

/// Most audit events `totalCount` counts, unless the server is configured otherwise.
pub const AUDIT_COUNT_LIMIT: i64 = 10_000;

#[derive(Default)]
pub struct LifecycleQuery;

#[Object]
impl LifecycleQuery {
    /// A site's license orders, newest first (administrators, owners, operators).
    /// Null when it cannot be answered (not signed in, not allowed, a bad
    /// argument, or the database unavailable); the reason is in `errors`, with this field's path.
    #[graphql(complexity = "first.or(last).unwrap_or(20).max(0) as usize * child_complexity")]
    #[allow(clippy::too_many_arguments)] // one per argument of the field
    async fn license_orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the site; defaults to the viewer's own.")] site_id: Option<ID>,
        #[graphql(desc = "Only orders with this status.")] status: Option<LicenseOrderStatus>,
        #[graphql(desc = "Page size from the start, 1 to 100 (default 20); not with `last`.")] first: Option<i32>,
        #[graphql(desc = "Cursor after which the page starts.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1 to 100; not with `first`.")] last: Option<i32>,
        #[graphql(desc = "Cursor before which the page ends.")] before: Option<String>,
    ) -> Option<LicenseOrderConnection> {
        or_null(ctx, async move {
            let rcx = rc(ctx);
            let principal = rcx.principal().await?;
            let site = site_arg(principal, site_id.as_ref())?;
            authorize(principal, Action::ManageLicenses(site), "site")?;
            let slice = PageArgs::new(first, after, last, before).slice::<LicenseOrder>()?;
            let status = status.map(|s| match s {
                LicenseOrderStatus::Draft => OrderStatus::Draft,
                LicenseOrderStatus::CheckedOut => OrderStatus::CheckedOut,
                LicenseOrderStatus::Discarded => OrderStatus::Discarded,
            });
            let page = rcx.store.orders_page(site, status, &slice).await?;
            let total =
                if wants_total(ctx) { Some(Total::exact(rcx.store.orders_count(site, status).await?)) } else { None };
            connection(page, &slice, total, |o| Ok(LicenseOrderNode(o)))
        })
        .await
    }

    /// Change requests, newest first: of one site, or (operators, no siteId) of every site.
    /// Null when it cannot be answered (not signed in, not allowed, a bad
    /// argument, or the database unavailable); the reason is in `errors`, with this field's path.
    #[graphql(complexity = "first.or(last).unwrap_or(20).max(0) as usize * child_complexity")]
    #[allow(clippy::too_many_arguments)] // one per argument of the field
    async fn change_requests(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the site; operators may omit it to see every site.")] site_id: Option<ID>,
        #[graphql(desc = "Only requests with this status.")] status: Option<ChangeRequestStatus>,
        #[graphql(desc = "Page size from the start, 1 to 100 (default 20); not with `last`.")] first: Option<i32>,
        #[graphql(desc = "Cursor after which the page starts.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1 to 100; not with `first`.")] last: Option<i32>,
        #[graphql(desc = "Cursor before which the page ends.")] before: Option<String>,
    ) -> Option<ChangeRequestConnection> {
        or_null(ctx, async move {
            let rcx = rc(ctx);
            let principal = rcx.principal().await?;
            let site = match (principal, &site_id) {
                (Principal::Operator { .. }, None) => None,
                _ => {
                    let site = site_arg(principal, site_id.as_ref())?;
                    authorize(principal, Action::ManageLicenses(site), "site")?;
                    Some(site)
                }
            };
            let slice = PageArgs::new(first, after, last, before).slice::<ChangeRequest>()?;
            let status = status.map(|s| match s {
                ChangeRequestStatus::Pending => RequestStatus::Pending,
                ChangeRequestStatus::Approved => RequestStatus::Approved,
                ChangeRequestStatus::Rejected => RequestStatus::Rejected,
                ChangeRequestStatus::Cancelled => RequestStatus::Cancelled,
            });
            let page = rcx.store.requests_page(site, status, &slice).await?;
            let total =
                if wants_total(ctx) { Some(Total::exact(rcx.store.requests_count(site, status).await?)) } else { None };
            connection(page, &slice, total, |r| Ok(ChangeRequestNode(r)))
        })
        .await
    }

    /// The site's audit trail, newest first: every accepted and refused change
    /// with its actor (administrators, owners of the agreement, operators).
    /// Null when it cannot be answered (not signed in, not allowed, a bad
    /// argument, or the database unavailable); the reason is in `errors`, with this field's path.
    #[graphql(complexity = "first.or(last).unwrap_or(20).max(0) as usize * child_complexity")]
    #[allow(clippy::too_many_arguments)] // one per argument of the field
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the site; defaults to the viewer's own.")] site_id: Option<ID>,
        #[graphql(desc = "Filters; all given must match.")] filter: Option<AuditEventsFilter>,
        #[graphql(desc = "Page size from the start, 1 to 100 (default 20); not with `last`.")] first: Option<i32>,
        #[graphql(desc = "Cursor after which the page starts.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1 to 100; not with `first`.")] last: Option<i32>,
        #[graphql(desc = "Cursor before which the page ends.")] before: Option<String>,
    ) -> Option<AuditEventConnection> {
        or_null(ctx, async move {
            let rcx = rc(ctx);
            let principal = rcx.principal().await?;
            let site = site_arg(principal, site_id.as_ref())?;
            authorize(principal, Action::ReadAudit(site), "site")?;
            let slice = PageArgs::new(first, after, last, before).slice::<AuditRecord>()?;
            let f = filter.unwrap_or_default();
            let target = f.target_id.as_ref().map(|id| id_to_audit_target(id, "targetId")).transpose()?;
            let about_person = match &f.target_id {
                Some(id) => match decode_any(id, "targetId")? {
                    Global::One(Kind::Person, n) => Some(PersonId(n)),
                    _ => None,
                },
                None => None,
            };
            let filter = AuditFilter {
                actor_contains: f.actor_contains.filter(|t| !t.trim().is_empty()),
                action: f.action,
                target,
                about_person,
                refused: f.outcome.map(|o| o == AuditOutcome::Refused),
                from: f.from.as_ref().map(|t| t.unix("from")).transpose()?,
                until: f.until.as_ref().map(|t| t.unix("until")).transpose()?,
            };
            let page = rcx.store.audit_page(site, &filter, &slice).await?;
            let total = if wants_total(ctx) {
                let cap = ctx.data_opt::<super::Settings>().map_or(AUDIT_COUNT_LIMIT, |s| s.audit_count_limit);
                // One past the cap, to tell "exactly the cap" from "more".
                Some(Total::capped(rcx.store.audit_count(site, &filter, cap + 1).await?, cap))
            } else {
                None
            };
            // Actors and targets are people: one batch for the page.
            let people: Vec<PersonId> =
                page.rows.iter().flat_map(|r| r.actor.person.into_iter().chain(r.target_person)).collect();
            if !people.is_empty() {
                rcx.prime(people).await?;
            }
            connection(page, &slice, total, |e| Ok(AuditEventNode(e)))
        })
        .await
    }

    /// Preview of `createLogin`: the license impact and the refusal, if any. Writes nothing.
    /// Null when it cannot be previewed (not signed in, not allowed, not found,
    /// a bad argument, or the database unavailable); the reason is in `errors`.
    async fn preview_create_login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The person who would get the login.")] person_id: ID,
        #[graphql(desc = "The username it would have.")] username: String,
        #[graphql(desc = "The profile it would have.")] profile_id: ID,
    ) -> Option<LicensePreview> {
        or_null(ctx, async move {
            let rcx = rc(ctx);
            let principal = rcx.principal().await?;
            let input = staff::LoginInput {
                person: PersonId(decode(&person_id, Kind::Person, "personId")?),
                username: Username::parse(&username)?,
                // Never stored: a preview rolls back.
                password: Password::parse("preview-only-password")?,
                profile: ProfileId(decode(&profile_id, Kind::Profile, "profileId")?),
                valid_until: None,
                is_admin: false,
            };
            Ok(LicensePreview::of(crate::retrying!(
                rcx.store.retries(),
                staff::create_login(&rcx.store, principal, input.clone(), Mode::Preview)
            )?))
        })
        .await
    }

    /// Preview of `changeLoginProfile`. Writes nothing.
    /// Null when it cannot be previewed (not signed in, not allowed, not found,
    /// a bad argument, or the database unavailable); the reason is in `errors`.
    async fn preview_change_login_profile(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the user.")] id: ID,
        #[graphql(desc = "Global id of the new profile.")] profile_id: ID,
    ) -> Option<LicensePreview> {
        or_null(ctx, async move {
            let rcx = rc(ctx);
            let principal = rcx.principal().await?;
            let id = LoginId(decode(&id, Kind::User, "id")?);
            let profile = ProfileId(decode(&profile_id, Kind::Profile, "profileId")?);
            let changes = staff::LoginChanges { profile: Some(profile), ..Default::default() };
            Ok(LicensePreview::of(crate::retrying!(
                rcx.store.retries(),
                staff::update_login(&rcx.store, principal, id, changes.clone(), Mode::Preview, "changeLoginProfile")
            )?))
        })
        .await
    }

    /// Preview of setting a profile's modules with `updateProfile`. Writes nothing.
    /// Null when it cannot be previewed (not signed in, not allowed, not found,
    /// a bad argument, or the database unavailable); the reason is in `errors`.
    async fn preview_update_profile_modules(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the profile.")] id: ID,
        #[graphql(desc = "The complete new set of module codes.")] modules: Vec<String>,
    ) -> Option<LicensePreview> {
        or_null(ctx, async move {
            let rcx = rc(ctx);
            let principal = rcx.principal().await?;
            let id = ProfileId(decode(&id, Kind::Profile, "id")?);
            let codes = modules.iter().map(|c| ModuleCode::parse(c)).collect::<Result<Vec<_>, _>>()?;
            Ok(LicensePreview::of(crate::retrying!(
                rcx.store.retries(),
                staff::update_profile(&rcx.store, principal, id, None, Some(codes.clone()), Mode::Preview)
            )?))
        })
        .await
    }

    /// Preview of `restorePerson`. Writes nothing.
    /// Null when it cannot be previewed (not signed in, not allowed, not found,
    /// a bad argument, or the database unavailable); the reason is in `errors`.
    async fn preview_restore_person(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the person.")] id: ID,
    ) -> Option<LicensePreview> {
        or_null(ctx, async move {
            let rcx = rc(ctx);
            let principal = rcx.principal().await?;
            let id = PersonId(decode(&id, Kind::Person, "id")?);
            Ok(LicensePreview::of(crate::retrying!(
                rcx.store.retries(),
                staff::restore_person(&rcx.store, principal, id, Mode::Preview)
            )?))
        })
        .await
    }

    /// Preview of `checkoutLicenseOrder`. Writes nothing.
    /// Null when it cannot be previewed (not signed in, not allowed, not found,
    /// a bad argument, or the database unavailable); the reason is in `errors`.
    async fn preview_checkout(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the order.")] order_id: ID,
    ) -> Option<LicensePreview> {
        or_null(ctx, async move {
            let rcx = rc(ctx);
            let principal = rcx.principal().await?;
            let id = OrderId(decode(&order_id, Kind::LicenseOrder, "orderId")?);
            let key = IdempotencyKey::parse("preview")?;
            Ok(LicensePreview::of(crate::retrying!(
                rcx.store.retries(),
                licenses::checkout_order(&rcx.store, principal, id, &key, Mode::Preview)
            )?))
        })
        .await
    }

    /// Preview of `approveChangeRequest` (operators). Writes nothing.
    /// Null when it cannot be previewed (not signed in, not allowed, not found,
    /// a bad argument, or the database unavailable); the reason is in `errors`.
    async fn preview_approve_change_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the change request.")] id: ID,
    ) -> Option<LicensePreview> {
        or_null(ctx, async move {
            let rcx = rc(ctx);
            let principal = rcx.principal().await?;
            let id = RequestId(decode(&id, Kind::ChangeRequest, "id")?);
            Ok(LicensePreview::of(crate::retrying!(
                rcx.store.retries(),
                licenses::approve_request(&rcx.store, principal, id, Mode::Preview)
            )?))
        })
        .await
    }
}

async fn order_node(ctx: &Context<'_>, id: OrderId) -> R<LicenseOrderNode> {
    // Freshly written: bypass the request cache.
    let order = rc(ctx).store.orders_by_ids(&[id]).await?.into_iter().next().ok_or(ServiceError::Internal)?;
    Ok(LicenseOrderNode(order))
}

async fn request_node(ctx: &Context<'_>, id: RequestId) -> R<ChangeRequestNode> {
    let request = rc(ctx).store.requests_by_ids(&[id]).await?.into_iter().next().ok_or(ServiceError::Internal)?;
    Ok(ChangeRequestNode(request))
}

#[derive(Default)]
pub struct LifecycleMutation;

#[Object]
impl LifecycleMutation {
    /// Restores a deleted person and the login deleted with them. The login
    /// occupies its licenses again: refused whole when a pool lacks free licenses.
    async fn restore_person(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the person.")] id: ID,
    ) -> R<RestorePersonResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let id = PersonId(decode(&id, Kind::Person, "id")?);
        match crate::retrying!(rcx.store.retries(), staff::restore_person(&rcx.store, principal, id, Mode::Apply))?
            .outcome
        {
            Ok(person) => Ok(RestorePersonResult::RestorePersonSuccess(RestorePersonSuccess {
                pools: PoolsAfter(person.site_id),
                person: PersonNode::seen(principal, person)?,
            })),
            Err(refusal) => Ok(refusal.into()),
        }
    }

    /// Restores a deleted login of a person who is on staff and has no other login;
    /// refused whole when a pool lacks free licenses.
    async fn restore_login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the deleted user.")] id: ID,
    ) -> R<RestoreLoginResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let id = LoginId(decode(&id, Kind::User, "id")?);
        match crate::retrying!(rcx.store.retries(), staff::restore_login(&rcx.store, principal, id, Mode::Apply))?
            .outcome
        {
            Ok(login) => Ok(RestoreLoginResult::RestoreLoginSuccess(RestoreLoginSuccess {
                pools: PoolsAfter(login.site_id),
                user: UserNode::seen(principal, login)?,
            })),
            Err(refusal) => Ok(refusal.into()),
        }
    }

    /// Makes a person responsible for something on the site (a form or a document folder).
    async fn assign_responsibility(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the person.")] person_id: ID,
        #[graphql(desc = "What kind of thing.")] kind: ResponsibilityKindValue,
        #[graphql(desc = "Its name, 1–200 characters.")] name: String,
    ) -> R<AssignResponsibilityResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let person = PersonId(decode(&person_id, Kind::Person, "personId")?);
        let kind = match kind {
            ResponsibilityKindValue::Form => ResponsibilityKind::Form,
            ResponsibilityKindValue::DocumentFolder => ResponsibilityKind::DocumentFolder,
        };
        let name = ResponsibilityName::parse(&name)?;
        match crate::retrying!(
            rcx.store.retries(),
            staff::assign_responsibility(&rcx.store, principal, person, kind, name.clone())
        )? {
            Ok(id) => {
                let held = rcx.store.responsibilities_of(&[person]).await?;
                let r = held
                    .get(&person)
                    .and_then(|v| v.iter().find(|r| r.id == id).cloned())
                    .ok_or(ServiceError::Internal)?;
                Ok(AssignResponsibilityResult::AssignResponsibilitySuccess(AssignResponsibilitySuccess {
                    responsibility: ResponsibilityNode::seen(principal, r)?,
                }))
            }
            Err(refusal) => Ok(refusal.into()),
        }
    }

    /// Removes a responsibility; true when done.
    async fn remove_responsibility(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the responsibility.")] id: ID,
    ) -> R<bool> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let id = ResponsibilityId(decode(&id, Kind::Responsibility, "id")?);
        crate::retrying!(rcx.store.retries(), staff::remove_responsibility(&rcx.store, principal, id))?;
        Ok(true)
    }

    /// Drafts a license order (self-service agreements; administrators and owners).
    async fn create_license_order(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the site; defaults to the viewer's own.")] site_id: Option<ID>,
        #[graphql(desc = "New total per module.")] lines: Vec<TotalLineInput>,
    ) -> R<LicenseOrderResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let site = site_arg(principal, site_id.as_ref())?;
        match crate::retrying!(
            rcx.store.retries(),
            licenses::create_order(&rcx.store, principal, Some(site), &self::lines(&lines)?)
        )? {
            Ok(id) => {
                Ok(LicenseOrderResult::LicenseOrderSuccess(LicenseOrderSuccess { order: order_node(ctx, id).await? }))
            }
            Err(refusal) => Ok(refusal.into()),
        }
    }

    /// Replaces a draft order's lines.
    async fn update_license_order(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the order.")] id: ID,
        #[graphql(desc = "New total per module.")] lines: Vec<TotalLineInput>,
    ) -> R<LicenseOrderResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let id = OrderId(decode(&id, Kind::LicenseOrder, "id")?);
        match crate::retrying!(
            rcx.store.retries(),
            licenses::update_order(&rcx.store, principal, id, &self::lines(&lines)?)
        )? {
            Ok(id) => {
                Ok(LicenseOrderResult::LicenseOrderSuccess(LicenseOrderSuccess { order: order_node(ctx, id).await? }))
            }
            Err(refusal) => Ok(refusal.into()),
        }
    }

    /// Discards a draft order.
    async fn discard_license_order(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the order.")] id: ID,
    ) -> R<LicenseOrderResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let id = OrderId(decode(&id, Kind::LicenseOrder, "id")?);
        match crate::retrying!(rcx.store.retries(), licenses::discard_order(&rcx.store, principal, id))? {
            Ok(id) => {
                Ok(LicenseOrderResult::LicenseOrderSuccess(LicenseOrderSuccess { order: order_node(ctx, id).await? }))
            }
            Err(refusal) => Ok(refusal.into()),
        }
    }

    /// Checks an order out: applies every line or none, checking again now that
    /// no total falls below the licenses in use.
    /// Retrying with the same idempotency key returns the first result and
    /// never applies twice.
    async fn checkout_license_order(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the order.")] id: ID,
        #[graphql(desc = "A key the client chooses per checkout attempt; retries reuse it.")] idempotency_key: String,
    ) -> R<CheckoutResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let id = OrderId(decode(&id, Kind::LicenseOrder, "id")?);
        let key = IdempotencyKey::parse(&idempotency_key)?;
        match crate::retrying!(
            rcx.store.retries(),
            licenses::checkout_order(&rcx.store, principal, id, &key, Mode::Apply)
        )?
        .outcome
        {
            Ok(id) => {
                let order = order_node(ctx, id).await?;
                Ok(CheckoutResult::CheckoutSuccess(CheckoutSuccess { pools: PoolsAfter(order.0.site_id), order }))
            }
            Err(refusal) => Ok(refusal.into()),
        }
    }

    /// Submits a change request to the vendor (agreements without self-service).
    async fn submit_change_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the site; defaults to the viewer's own.")] site_id: Option<ID>,
        #[graphql(desc = "Desired total per module.")] lines: Vec<TotalLineInput>,
        #[graphql(desc = "A message to the vendor, 1–2000 characters.")] message: String,
    ) -> R<ChangeRequestResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let site = site_arg(principal, site_id.as_ref())?;
        let message = RequestMessage::parse(&message)?;
        match crate::retrying!(
            rcx.store.retries(),
            licenses::submit_request(&rcx.store, principal, Some(site), &self::lines(&lines)?, &message)
        )? {
            Ok(id) => Ok(ChangeRequestResult::ChangeRequestSuccess(ChangeRequestSuccess {
                request: request_node(ctx, id).await?,
            })),
            Err(refusal) => Ok(refusal.into()),
        }
    }

    /// Cancels a pending change request (its requester only).
    async fn cancel_change_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the request.")] id: ID,
    ) -> R<ChangeRequestResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let id = RequestId(decode(&id, Kind::ChangeRequest, "id")?);
        match crate::retrying!(rcx.store.retries(), licenses::cancel_request(&rcx.store, principal, id))? {
            Ok(id) => Ok(ChangeRequestResult::ChangeRequestSuccess(ChangeRequestSuccess {
                request: request_node(ctx, id).await?,
            })),
            Err(refusal) => Ok(refusal.into()),
        }
    }

    /// Approves a pending change request and applies it like a checkout (operators).
    async fn approve_change_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the request.")] id: ID,
    ) -> R<ApproveChangeRequestResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let id = RequestId(decode(&id, Kind::ChangeRequest, "id")?);
        match crate::retrying!(rcx.store.retries(), licenses::approve_request(&rcx.store, principal, id, Mode::Apply))?
            .outcome
        {
            Ok(id) => {
                let request = request_node(ctx, id).await?;
                Ok(ApproveChangeRequestResult::ApproveChangeRequestSuccess(ApproveChangeRequestSuccess {
                    pools: PoolsAfter(request.0.site_id),
                    request,
                }))
            }
            Err(refusal) => Ok(refusal.into()),
        }
    }

    /// Rejects a pending change request with a reason (operators).
    async fn reject_change_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the request.")] id: ID,
        #[graphql(desc = "Why, 1–2000 characters; the requester sees it.")] reason: String,
    ) -> R<ChangeRequestResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let id = RequestId(decode(&id, Kind::ChangeRequest, "id")?);
        let reason = RejectionReason::parse(&reason)?;
        match crate::retrying!(rcx.store.retries(), licenses::reject_request(&rcx.store, principal, id, &reason))? {
            Ok(id) => Ok(ChangeRequestResult::ChangeRequestSuccess(ChangeRequestSuccess {
                request: request_node(ctx, id).await?,
            })),
            Err(refusal) => Ok(refusal.into()),
        }
    }

    /// Creates an agreement owner's own account (operators).
    async fn create_owner_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The owner's name.")] name: String,
        #[graphql(desc = "Username, unique in the installation without case.")] username: String,
        #[graphql(
            desc = "Password: 12–200 characters, not easy to guess (common passwords, single words, keyboard patterns and repeats are refused)."
        )]
        password: String,
    ) -> R<CreateOwnerAccountResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let input = licenses::OwnerInput {
            name: PersonName::parse(&name)?,
            username: Username::parse(&username)?,
            password: Password::parse(&password)?,
        };
        let shown = Owner {
            id: OwnerId(0),
            name: input.name.as_str().to_string(),
            username: input.username.as_str().to_string(),
        };
        match crate::retrying!(rcx.store.retries(), licenses::create_owner(&rcx.store, principal, input.clone()))? {
            Ok(id) => Ok(CreateOwnerAccountResult::CreateOwnerAccountSuccess(CreateOwnerAccountSuccess {
                owner: OwnerNode::seen(principal, Owner { id, ..shown }, None)?,
            })),
            Err(refusal) => Ok(refusal.into()),
        }
    }

    /// Sets an agreement's self-service flag (license orders, or change requests
    /// to the vendor) and/or its owner (operators).
    async fn update_agreement(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the site.")] site_id: ID,
        #[graphql(desc = "Allow license orders (true) or require change requests (false).")] self_service: Option<bool>,
        #[graphql(desc = "Global id of the owner account; null removes the owner.")]
        owner_id: async_graphql::MaybeUndefined<ID>,
    ) -> R<UpdateAgreementSuccess> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let site = SiteId(decode(&site_id, Kind::Site, "siteId")?);
        let owner = match owner_id {
            async_graphql::MaybeUndefined::Undefined => None,
            async_graphql::MaybeUndefined::Null => Some(None),
            async_graphql::MaybeUndefined::Value(id) => Some(Some(OwnerId(decode(&id, Kind::Owner, "ownerId")?))),
        };
        licenses::update_agreement(&rcx.store, principal, site, self_service, owner).await?;
        let fresh = rcx.store.sites_by_ids(&[site]).await?.into_iter().next().ok_or(ServiceError::NotFound("site"))?;
        Ok(UpdateAgreementSuccess { site: SiteNode(fresh) })
    }
}
