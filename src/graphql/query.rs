//! Query root: thin resolvers that authorize through the policy layer and
//! read through the request's store and loaders.

use std::collections::HashMap;

use async_graphql::{Context, ID, InputObject, Object};

use super::context::{RequestContext, rc};
use super::ids::{Global, Kind, decode, decode_any};
use super::loaders::{
    AgreementOfSite, LoginOfPerson, PeopleCount, PeoplePage, PoolsOfSite, ResponsibilitiesOf, UsersCount, UsersPage,
};
use super::paging::{PageArgs, Total, connection, wants_total};
use super::types::*;
use crate::domain::policy::Action;
use crate::domain::*;
use crate::service::{ServiceError, authorize, staff::target_site};
use crate::store::{Parent, PersonFilter, UserFilter};

type R<T> = Result<T, ServiceError>;

/// Whether the client selected `path` below the items of a connection
/// (through `edges { node }` or `nodes`).
fn wants(ctx: &Context<'_>, path: &[&str]) -> bool {
    let look = ctx.look_ahead();
    let mut via_edges = look.field("edges").field("node");
    let mut via_nodes = look.field("nodes");
    for f in path {
        via_edges = via_edges.field(f);
        via_nodes = via_nodes.field(f);
    }
    via_edges.exists() || via_nodes.exists()
}

/// Loads, in one batch per relation, what the selected fields of a page of
/// users will ask for, so that the statement count does not depend on how
/// the resolvers' loads happen to be batched in time.
async fn prefetch_for_users(ctx: &Context<'_>, prefix: &[&str], logins: &[Login]) -> R<()> {
    let path = |rest: &[&'static str]| [prefix, rest].concat();
    let profiles: Vec<ProfileId> = logins.iter().map(|l| l.profile_id).collect();
    let modules = wants(ctx, &path(&["profile", "modules"])) || wants(ctx, &path(&["licensedModules"]));
    if modules {
        // Profiles and their modules in one statement.
        rc(ctx).prime_profiles_with_modules(&profiles).await?;
    } else if wants(ctx, &path(&["profile"])) {
        rc(ctx).prime(profiles.iter().copied()).await?;
    }
    Ok(())
}

/// The answer of a nullable root field: its value, or `null` with its
/// error in `errors` (its `path` naming the field). Without this, a failing
/// field's key would be left out of `data`: async-graphql drops the key of
/// any field whose resolver fails, nullable or not.
pub(super) async fn or_null<T>(ctx: &Context<'_>, field: impl std::future::Future<Output = R<T>>) -> Option<T> {
    match field.await {
        Ok(value) => Some(value),
        Err(e) => {
            let error = async_graphql::Error::from(e).into_server_error(ctx.item.pos);
            ctx.add_error(ctx.set_error_path(error));
            None
        }
    }
}

pub(super) fn site_arg(principal: &Principal, site_id: Option<&ID>) -> R<SiteId> {
    target_site(principal, site_id.map(|id| decode(id, Kind::Site, "siteId")).transpose()?.map(SiteId))
}

/// Filters of `users`; all given filters must match.
#[derive(InputObject, Default)]
pub struct UsersFilter {
    /// Only users on this profile.
    pub profile_id: Option<ID>,
    /// Only users occupying a license of this module (its code, e.g. `CASE`).
    pub module: Option<String>,
    /// `true`: logins that work today; `false`: logins past their validUntil.
    pub active: Option<bool>,
    /// Only users whose name contains this text (case-insensitive).
    pub name_contains: Option<String>,
}

/// Filters of `people`; all given filters must match.
#[derive(InputObject, Default)]
pub struct PeopleFilter {
    /// Only people whose name contains this text (case-insensitive).
    pub name_contains: Option<String>,
    /// `true`: only users; `false`: only staff without a login.
    pub has_login: Option<bool>,
    /// Include deleted people (tombstones). Default false.
    pub include_deleted: Option<bool>,
}

impl UsersFilter {
    /// The store's filter: the profile's id decoded, the module found by its
    /// code (through the loader, so that the lists of many parents ask once).
    async fn parse(filter: Option<Self>, rcx: &RequestContext) -> R<UserFilter> {
        let filter = filter.unwrap_or_default();
        let module = match filter.module.as_deref() {
            Some(code) => {
                let code = ModuleCode::parse(code)?;
                let module = rcx.loaders.load_one(code.clone()).await?.ok_or_else(|| {
                    ServiceError::Invalid(InvalidInput::new("module", format!("unknown module `{}`", code.as_str())))
                })?;
                Some(module.id)
            }
            None => None,
        };
        Ok(UserFilter {
            profile: filter
                .profile_id
                .as_ref()
                .map(|id| decode(id, Kind::Profile, "profileId"))
                .transpose()?
                .map(ProfileId),
            module,
            active_on: filter.active.map(|a| (a, rcx.today)),
            name_contains: filter.name_contains.filter(|t| !t.trim().is_empty()),
        })
    }
}

impl PeopleFilter {
    fn parse(filter: Option<Self>) -> PersonFilter {
        let filter = filter.unwrap_or_default();
        PersonFilter {
            name_contains: filter.name_contains.filter(|t| !t.trim().is_empty()),
            has_login: filter.has_login,
            include_deleted: filter.include_deleted.unwrap_or(false),
        }
    }
}

/// The page (or count) of `parent` in what a store read answered for it.
fn of_parent<V: Default>(mut read: HashMap<i64, V>, parent: i64) -> V {
    read.remove(&parent).unwrap_or_default()
}

/// `users` of a site or a profile (`of`, the parent `parent` of site `site`),
/// a connection below another object: null when the viewer may not list the
/// site's users. The page and its count are read through the loader, one
/// statement each for every parent asking with the same arguments. `counted`
/// is the parent's maintained count, which answers `totalCount` without filters.
pub(super) async fn nested_users(
    ctx: &Context<'_>,
    of: Parent,
    parent: i64,
    site: SiteId,
    counted: Option<i64>,
    filter: Option<UsersFilter>,
    args: PageArgs,
) -> R<Option<UserConnection>> {
    let rcx = rc(ctx);
    let principal = rcx.principal().await?;
    if authorize(principal, Action::ReadStaff(site), "site").is_err() {
        return Ok(None);
    }
    let slice = args.slice::<(Login, Person)>()?;
    let filter = UsersFilter::parse(filter, rcx).await?;
    let counted = counted.filter(|_| filter == UserFilter::default());
    let page = UsersPage { of, filter: filter.clone(), slice: slice.clone() };
    let (page, total) = tokio::try_join!(rcx.nested(parent, page), async {
        match (wants_total(ctx), counted) {
            (false, _) => Ok(None),
            (true, Some(n)) => Ok(Some(n)),
            (true, None) => rcx.nested(parent, UsersCount { of, filter }).await,
        }
    })?;
    let node =
        |(login, person)| UserNode::seen_with(principal, login, Prefetched { person: Some(person), profile: None });
    connection(page.unwrap_or_default(), &slice, total.map(Total::exact), node).map(Some)
}

/// `people` of a site, below the site: null when the viewer may not list
/// them; read like [`nested_users`].
pub(super) async fn nested_people(
    ctx: &Context<'_>,
    site: SiteId,
    filter: Option<PeopleFilter>,
    args: PageArgs,
) -> R<Option<PersonConnection>> {
    let rcx = rc(ctx);
    let principal = rcx.principal().await?;
    if authorize(principal, Action::ReadStaff(site), "site").is_err() {
        return Ok(None);
    }
    let slice = args.slice::<Person>()?;
    let filter = PeopleFilter::parse(filter);
    let page = PeoplePage { filter: filter.clone(), slice: slice.clone() };
    let (page, total) = tokio::try_join!(rcx.nested(site.0, page), async {
        if wants_total(ctx) { rcx.nested(site.0, PeopleCount { filter }).await } else { Ok(None) }
    })?;
    connection(page.unwrap_or_default(), &slice, total.map(Total::exact), |p| PersonNode::seen(principal, p)).map(Some)
}

#[derive(Default)]
pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// Who is signed in, and their site. When no one is signed in (or the
    /// database is unavailable) the whole `data` is null and `errors` says why.
    async fn viewer(&self, ctx: &Context<'_>) -> R<Viewer> {
        Ok(Viewer(rc(ctx).principal().await?.clone()))
    }

    /// A site: the viewer's own when `id` is omitted. Operators must give `id`.
    /// Null when the site does not exist or the viewer may not see it (another
    /// site's id answers as not found), or when not signed in or the database
    /// is unavailable; the reason is in `errors`, with this field's path.
    async fn site(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the site.")] id: Option<ID>,
    ) -> Option<SiteNode> {
        or_null(ctx, async move {
            let principal = rc(ctx).principal().await?;
            let site = site_arg(principal, id.as_ref())?;
            authorize(principal, Action::ReadSite(site), "site")?;
            rc(ctx).loaders.load_one(site).await?.map(SiteNode).ok_or(ServiceError::NotFound("site"))
        })
        .await
    }

    /// Every site of the installation, by creation (operators).
    /// Null when it cannot be answered (not signed in, not allowed, a bad
    /// argument, or the database unavailable); the reason is in `errors`, with this field's path.
    #[graphql(complexity = "first.or(last).unwrap_or(20).max(0) as usize * child_complexity")]
    async fn sites(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start, 1 to 100 (default 20); not with `last`.")] first: Option<i32>,
        #[graphql(desc = "Cursor after which the page starts.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1 to 100; not with `first`.")] last: Option<i32>,
        #[graphql(desc = "Cursor before which the page ends.")] before: Option<String>,
    ) -> Option<SiteConnection> {
        or_null(ctx, async move {
            let rcx = rc(ctx);
            let principal = rcx.principal().await?;
            authorize(principal, Action::ListSites, "site")?;
            let slice = PageArgs::new(first, after, last, before).slice::<Site>()?;
            let page = rcx.store.sites_page(&slice).await?;
            let total = if wants_total(ctx) { Some(Total::exact(rcx.store.sites_count().await?)) } else { None };
            let ids: Vec<SiteId> = page.rows.iter().map(|s| s.id).collect();
            rcx.list(Parent::Site, ids.iter().map(|s| s.0));
            if wants(ctx, &["agreement"]) {
                rcx.prime(ids.iter().map(|s| AgreementOfSite(*s))).await?;
            }
            if wants(ctx, &["licensePools"]) {
                let pools = rcx.prime(ids.iter().map(|s| PoolsOfSite(*s))).await?;
                if wants(ctx, &["licensePools", "module"]) {
                    rcx.prime(pools.values().flatten().map(|p| p.module_id)).await?;
                }
            }
            connection(page, &slice, total, |s| Ok(SiteNode(s)))
        })
        .await
    }

    /// Every module that can be licensed. When no one is signed in (or the
    /// database is unavailable) the whole `data` is null and `errors` says why.
    async fn modules(&self, ctx: &Context<'_>) -> R<Vec<ModuleNode>> {
        rc(ctx).principal().await?;
        Ok(rc(ctx).store.modules().await?.into_iter().map(ModuleNode).collect())
    }

    /// The site's pools, one per module, with total, used and available licenses.
    /// Null when it cannot be answered (not signed in, not allowed, a bad
    /// argument, or the database unavailable); the reason is in `errors`, with this field's path.
    async fn license_pools(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the site; defaults to the viewer's own.")] site_id: Option<ID>,
    ) -> Option<Vec<LicensePoolNode>> {
        or_null(ctx, async move {
            let principal = rc(ctx).principal().await?;
            let site = site_arg(principal, site_id.as_ref())?;
            authorize(principal, Action::ReadSite(site), "site")?;
            pools_now(ctx, site).await
        })
        .await
    }

    /// The site's profiles with their modules and user counts (administrators).
    /// Null when it cannot be answered (not signed in, not allowed, a bad
    /// argument, or the database unavailable); the reason is in `errors`, with this field's path.
    async fn profiles(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the site; defaults to the viewer's own.")] site_id: Option<ID>,
    ) -> Option<Vec<ProfileNode>> {
        or_null(ctx, async move {
            let principal = rc(ctx).principal().await?;
            let site = site_arg(principal, site_id.as_ref())?;
            authorize(principal, Action::ReadStaff(site), "site")?;
            let profiles = rc(ctx).store.profiles_of_site(site).await?;
            rc(ctx).list(Parent::Profile, profiles.iter().map(|p| p.id.0));
            profiles.into_iter().map(|p| ProfileNode::seen(principal, p, None, false)).collect()
        })
        .await
    }

    /// The site's users (people with a live login) by username (administrators).
    /// Null when it cannot be answered (not signed in, not allowed, a bad
    /// argument, or the database unavailable); the reason is in `errors`, with this field's path.
    #[graphql(complexity = "first.or(last).unwrap_or(20).max(0) as usize * child_complexity")]
    #[allow(clippy::too_many_arguments)] // one per argument of the field
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the site; defaults to the viewer's own.")] site_id: Option<ID>,
        #[graphql(desc = "Filters; all given must match.")] filter: Option<UsersFilter>,
        #[graphql(desc = "Page size from the start, 1 to 100 (default 20); not with `last`.")] first: Option<i32>,
        #[graphql(desc = "Cursor after which the page starts.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1 to 100; not with `first`.")] last: Option<i32>,
        #[graphql(desc = "Cursor before which the page ends.")] before: Option<String>,
    ) -> Option<UserConnection> {
        or_null(ctx, async move {
            let rcx = rc(ctx);
            let principal = rcx.principal().await?;
            let site = site_arg(principal, site_id.as_ref())?;
            authorize(principal, Action::ReadStaff(site), "site")?;
            let slice = PageArgs::new(first, after, last, before).slice::<(Login, Person)>()?;
            let filter = UsersFilter::parse(filter, rcx).await?;
            let page = of_parent(rcx.store.users_pages(Parent::Site, &[site.0], &filter, &slice).await?, site.0);
            let total = if wants_total(ctx) {
                Some(Total::exact(of_parent(rcx.store.users_counts(Parent::Site, &[site.0], &filter).await?, site.0)))
            } else {
                None
            };
            // The page carries each user's person; their profiles (with modules,
            // when selected) take one more statement. Both go into the nodes.
            let profiles = if wants(ctx, &["profile"]) || wants(ctx, &["licensedModules"]) {
                let ids: Vec<ProfileId> = page.rows.iter().map(|(l, _)| l.profile_id).collect();
                rcx.profiles_with_modules(&ids).await?
            } else {
                HashMap::new()
            };
            connection(page, &slice, total, |(login, person)| {
                let profile = profiles.get(&login.profile_id).map(|(p, m)| (p.clone(), m.clone()));
                UserNode::seen_with(principal, login, Prefetched { person: Some(person), profile })
            })
        })
        .await
    }

    /// The site's people (staff records) by name (administrators).
    /// Null when it cannot be answered (not signed in, not allowed, a bad
    /// argument, or the database unavailable); the reason is in `errors`, with this field's path.
    #[graphql(complexity = "first.or(last).unwrap_or(20).max(0) as usize * child_complexity")]
    #[allow(clippy::too_many_arguments)] // one per argument of the field
    async fn people(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the site; defaults to the viewer's own.")] site_id: Option<ID>,
        #[graphql(desc = "Filters; all given must match.")] filter: Option<PeopleFilter>,
        #[graphql(desc = "Page size from the start, 1 to 100 (default 20); not with `last`.")] first: Option<i32>,
        #[graphql(desc = "Cursor after which the page starts.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1 to 100; not with `first`.")] last: Option<i32>,
        #[graphql(desc = "Cursor before which the page ends.")] before: Option<String>,
    ) -> Option<PersonConnection> {
        or_null(ctx, async move {
            let rcx = rc(ctx);
            let principal = rcx.principal().await?;
            let site = site_arg(principal, site_id.as_ref())?;
            authorize(principal, Action::ReadStaff(site), "site")?;
            let slice = PageArgs::new(first, after, last, before).slice::<Person>()?;
            let filter = PeopleFilter::parse(filter);
            let page = of_parent(rcx.store.people_pages(&[site.0], &filter, &slice).await?, site.0);
            let total = if wants_total(ctx) {
                Some(Total::exact(of_parent(rcx.store.people_counts(&[site.0], &filter).await?, site.0)))
            } else {
                None
            };
            if wants(ctx, &["user"]) {
                let logins = rcx.prime(page.rows.iter().map(|p| LoginOfPerson(p.id))).await?;
                let logins: Vec<Login> = logins.into_values().collect();
                prefetch_for_users(ctx, &["user"], &logins).await?;
            }
            connection(page, &slice, total, |p| PersonNode::seen(principal, p))
        })
        .await
    }

    /// Any object by its global id, to whoever may see it (see each type).
    /// Objects of other sites answer as not found. An agreement owner's
    /// account is answered to operators only; administrators and the owner
    /// read it as `site { agreement { owner } }`. Null when there is no such
    /// object or the viewer may not see it, or when not signed in or the
    /// database is unavailable; the reason is in `errors`, with this field's path.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A global id from any `id` field.")] id: ID,
    ) -> Option<Node> {
        or_null(ctx, async move {
            let rcx = rc(ctx);
            let principal = rcx.principal().await?;
            let not_found = || ServiceError::NotFound("node");
            let (kind, n) = match decode_any(&id, "id")? {
                Global::Pool { site, module } => {
                    authorize(principal, Action::ReadSite(SiteId(site)), "node")?;
                    let pools = rcx.loaders.load_one(PoolsOfSite(SiteId(site))).await?.unwrap_or_default();
                    let pool = pools.into_iter().find(|p| p.module_id == ModuleId(module)).ok_or_else(not_found)?;
                    return Ok(Node::LicensePool(LicensePoolNode(pool)));
                }
                Global::One(kind, n) => (kind, n),
            };
            match kind {
                Kind::Module => {
                    Ok(Node::Module(ModuleNode(rcx.loaders.load_one(ModuleId(n)).await?.ok_or_else(not_found)?)))
                }
                Kind::Site => {
                    authorize(principal, Action::ReadSite(SiteId(n)), "node")?;
                    Ok(Node::Site(SiteNode(rcx.loaders.load_one(SiteId(n)).await?.ok_or_else(not_found)?)))
                }
                Kind::Person => {
                    let person = rcx.loaders.load_one(PersonId(n)).await?.ok_or_else(not_found)?;
                    Ok(Node::Person(PersonNode::seen(principal, person)?))
                }
                Kind::User => {
                    let login = rcx.loaders.load_one(LoginId(n)).await?.ok_or_else(not_found)?;
                    Ok(Node::User(UserNode::seen(principal, login)?))
                }
                Kind::Profile => {
                    let profile = rcx.loaders.load_one(ProfileId(n)).await?.ok_or_else(not_found)?;
                    let own = match principal {
                        Principal::SiteLogin { login_id, .. } => {
                            rcx.loaders.load_one(*login_id).await?.is_some_and(|l| l.profile_id == profile.id)
                        }
                        Principal::Operator { .. } | Principal::Owner { .. } => false,
                    };
                    Ok(Node::Profile(ProfileNode::seen(principal, profile, None, own)?))
                }
                Kind::LicenseOrder => {
                    let order = rcx.loaders.load_one(OrderId(n)).await?.ok_or_else(not_found)?;
                    authorize(principal, Action::ManageLicenses(order.site_id), "node")?;
                    Ok(Node::LicenseOrder(LicenseOrderNode(order)))
                }
                Kind::ChangeRequest => {
                    let request = rcx.loaders.load_one(RequestId(n)).await?.ok_or_else(not_found)?;
                    authorize(principal, Action::ManageLicenses(request.site_id), "node")?;
                    Ok(Node::ChangeRequest(ChangeRequestNode(request)))
                }
                Kind::Responsibility => {
                    let person = rcx.store.responsibility_holder(ResponsibilityId(n)).await?.ok_or_else(not_found)?;
                    let held = rcx.loaders.load_one(ResponsibilitiesOf(person)).await?.unwrap_or_default();
                    let r = held.into_iter().find(|r| r.id.0 == n).ok_or_else(not_found)?;
                    Ok(Node::Responsibility(ResponsibilityNode::seen(principal, r)?))
                }
                Kind::Owner => {
                    authorize(principal, Action::ListSites, "node")?;
                    let owner = rcx.store.owner_by_id(OwnerId(n)).await?.ok_or_else(not_found)?;
                    Ok(Node::AgreementOwner(OwnerNode::seen(principal, owner, None)?))
                }
                Kind::AuditEvent => {
                    let event = rcx.store.audit_event(n).await?.ok_or_else(not_found)?;
                    match event.site_id {
                        Some(site) => authorize(principal, Action::ReadAudit(site), "node")?,
                        // Not on any site's trail (e.g. an owner account created): operators'.
                        None => authorize(principal, Action::ListSites, "node")?,
                    }
                    Ok(Node::AuditEvent(AuditEventNode(event)))
                }
                // Decoded as `Global::Pool` above.
                Kind::LicensePool => Err(not_found()),
            }
        })
        .await
    }
}
