//! Subscription root: a site's pools and audit events as they change, over
//! WebSocket (`http::live`), authorized like the queries. Each field asks
//! the process's live-change hub (`service::live`) for the site's feed; the
//! hub reads each change once for every subscriber, and each subscriber's
//! selection is resolved like a query's answer, for its own principal.

use std::sync::Arc;

use async_graphql::futures_util::{Stream, stream};
use async_graphql::{Context, ErrorExtensions, ID, Subscription};

use super::context::RequestContext;
use super::error::codes;
use super::loaders::forget_all_but_modules;
use super::query::site_arg;
use super::types::{AuditEventNode, LicensePoolNode};
use crate::domain::policy::Action;
use crate::observability::metrics::{Delivery, record_delivery};
use crate::service::live::{FeedEnded, Live};
use crate::service::{ServiceError, authorize};

/// The subscription's own request context (made per subscription by the
/// WebSocket transport), and the hub.
fn live_context(ctx: &Context<'_>) -> Result<(Arc<RequestContext>, Live), ServiceError> {
    let rcx = ctx.data::<Arc<RequestContext>>().map_err(|_| ServiceError::Internal)?;
    let live = ctx.data::<Live>().map_err(|_| ServiceError::Internal)?;
    Ok((rcx.clone(), live.clone()))
}

#[derive(Default)]
pub struct SubscriptionRoot;

/// Live changes, over WebSocket (`GET /graphql` with the `graphql-transport-ws`
/// subprotocol; the token goes in `connection_init` as
/// `{"Authorization": "Bearer <token>"}`). Authorized like the queries; a
/// subscription ends when its session ends.
#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// The site's license pools, one per module: first as they are now, then
    /// again, all of them, after every committed change of their usage or
    /// totals, made through any instance. They are the same objects, with
    /// the same ids, as the `licensePools` query answers, so a client cache
    /// updates them in place. A subscriber that is busy skips to the newest
    /// state, and never gets a pool older than it has: each pool's `version`
    /// only grows from one update to the next. Seen by everyone of the site
    /// and by operators, as the query.
    async fn license_pools(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the site; defaults to the viewer's own.")] site_id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = Vec<LicensePoolNode>> + use<>> {
        let (rcx, live) = live_context(ctx)?;
        let principal = rcx.principal().await?;
        let site = site_arg(principal, site_id.as_ref())?;
        authorize(principal, Action::ReadSite(site), "site")?;
        let modules = live.modules().await?;
        rcx.loaders.feed_many(modules.iter().map(|m| (m.id, m.clone()))).await;
        let feed = live.pools(site).await?;
        Ok(stream::unfold(feed, |mut feed| async move {
            let state = feed.next().await?;
            record_delivery(Delivery::LicensePools);
            Some((state.pools.iter().cloned().map(LicensePoolNode).collect(), feed))
        }))
    }

    /// The site's audit trail as it is written: each accepted or refused
    /// change, once, in the order written, from the moment of subscribing
    /// (read what came before with the `auditEvents` query). Seen by the
    /// site's administrators, the owner of its agreement and operators, as
    /// the query. A subscriber that falls far behind, or events the server
    /// may have missed, end the subscription with an error
    /// (`SUBSCRIPTION_LAGGED`, `SUBSCRIPTION_INTERRUPTED`): subscribe again
    /// and read the gap with the query.
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the site; defaults to the viewer's own.")] site_id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<AuditEventNode>> + use<>> {
        let (rcx, live) = live_context(ctx)?;
        let principal = rcx.principal().await?;
        let site = site_arg(principal, site_id.as_ref())?;
        authorize(principal, Action::ReadAudit(site), "site")?;
        let feed = live.audit(site);
        Ok(stream::unfold(Some((feed, rcx)), |state| async move {
            let (mut feed, rcx) = state?;
            match feed.next().await {
                Ok(delivery) => {
                    forget_all_but_modules(&rcx.loaders);
                    rcx.loaders.feed_many(delivery.people.iter().map(|p| (p.id, p.clone()))).await;
                    record_delivery(Delivery::AuditEvents);
                    Some((Ok(AuditEventNode(delivery.event.clone())), Some((feed, rcx))))
                }
                Err(ended) => Some((Err(feed_ended(ended)), None)),
            }
        }))
    }
}

/// The error that ends an audit subscription the server could not keep whole.
fn feed_ended(ended: FeedEnded) -> async_graphql::Error {
    let (code, message) = match ended {
        FeedEnded::Lagged(missed) => (
            codes::SUBSCRIPTION_LAGGED,
            format!(
                "This subscription fell {missed} events behind and was ended; subscribe again, and read what was \
                 missed with the auditEvents query."
            ),
        ),
        FeedEnded::Interrupted => (
            codes::SUBSCRIPTION_INTERRUPTED,
            "The server may have missed events of this trail and ended the subscription; subscribe again, and \
             read what was missed with the auditEvents query."
                .to_string(),
        ),
    };
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code))
}
