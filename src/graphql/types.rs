//! GraphQL object types over the domain values. Relations resolve through
//! the request's loaders; every type and field is documented, since the
//! documentation ships in the schema and the playground's docs pane.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Interface, Object};

use super::context::rc;
use super::ids::{Kind, encode, encode_pool};
use super::loaders::{
    AgreementOfSite, LinesOfOrder, LinesOfRequest, LoginOfPerson, ModulesOfProfile, PoolsOfSite, ResponsibilitiesOf,
};
use super::paging::PageArgs;
use super::query::{PeopleFilter, UsersFilter, nested_people, nested_users, or_null};
use super::scalars::{Date, DateTime};
use crate::domain::policy::{Action, Remedy};
use crate::domain::{self, Principal};
use crate::service::{ServiceError, authorize};
use crate::store::Parent;

type R<T> = Result<T, ServiceError>;

/// Proof that the policy let the signed-in principal see a staff object (a
/// person, user, profile or responsibility) or an owner account. Only [`allowed`] makes one,
/// and every node of those types holds one: whichever field leads to such an
/// object, the same decision was taken on the way there.
pub struct Allowed(());

/// Asks the policy whether `principal` may do `action` (one of the reads of
/// a staff object or owner account); `what` names the object for NOT_FOUND.
fn allowed(principal: &Principal, action: Action, what: &'static str) -> R<Allowed> {
    authorize(principal, action, what)?;
    Ok(Allowed(()))
}

/// What a nullable field answers for an object the principal may not see:
/// nothing, as if it were not there. Other failures stay errors.
fn if_visible<T>(checked: R<T>) -> R<Option<T>> {
    match checked {
        Ok(node) => Ok(Some(node)),
        Err(ServiceError::Forbidden(_) | ServiceError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// [`if_visible`] of an object that may be missing.
fn if_there<T, V>(value: Option<V>, check: impl FnOnce(V) -> R<T>) -> R<Option<T>> {
    match value {
        Some(v) => if_visible(check(v)),
        None => Ok(None),
    }
}

fn timestamp(secs: i64) -> DateTime {
    DateTime::from_unix(secs)
}

/// An object with a global id, fetchable with `node(id:)`.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Opaque global id; pass it back as it is."))]
pub enum Node {
    Site(SiteNode),
    Person(PersonNode),
    User(UserNode),
    Profile(ProfileNode),
    Module(ModuleNode),
    LicenseOrder(LicenseOrderNode),
    ChangeRequest(ChangeRequestNode),
    Responsibility(ResponsibilityNode),
    AgreementOwner(OwnerNode),
    LicensePool(LicensePoolNode),
    AuditEvent(AuditEventNode),
}

/// A customer site: the tenant. Everything else belongs to exactly one site.
/// Seen by everyone of the site (its users and administrators, the owner of
/// its agreement) and by operators; to anyone else its id is not found.
pub struct SiteNode(pub domain::Site);

/// A customer site: the tenant. Everything else belongs to exactly one site.
/// Seen by everyone of the site (its users and administrators, the owner of
/// its agreement) and by operators; to anyone else its id is not found.
#[Object(name = "Site", serial)]
impl SiteNode {
    /// Opaque global id of the site.
    async fn id(&self) -> ID {
        encode(Kind::Site, self.0.id.0)
    }
    /// The site's name, unique in the installation.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// When the site was created (RFC 3339, UTC).
    async fn created_at(&self) -> DateTime {
        timestamp(self.0.created_at)
    }
    /// The site's agreement, which holds its license pools.
    async fn agreement(&self, ctx: &Context<'_>) -> R<Option<AgreementNode>> {
        Ok(rc(ctx).loaders.load_one(AgreementOfSite(self.0.id)).await?.map(AgreementNode))
    }
    /// One pool per module with total, used and available licenses.
    async fn license_pools(&self, ctx: &Context<'_>) -> R<Vec<LicensePoolNode>> {
        pools_of(ctx, self.0.id).await
    }
    /// The site's people (staff records) by name, paged like `people`. Null
    /// when the viewer may not list them (only operators and the site's
    /// administrators may), or with its error in `errors` (a bad argument,
    /// the database unavailable). However many sites a page holds, all their
    /// people are read together.
    #[graphql(complexity = "first.or(last).unwrap_or(20).max(0) as usize * child_complexity")]
    async fn people(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Filters; all given must match.")] filter: Option<PeopleFilter>,
        #[graphql(desc = "Page size from the start, 1 to 100 (default 20); not with `last`.")] first: Option<i32>,
        #[graphql(desc = "Cursor after which the page starts.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1 to 100; not with `first`.")] last: Option<i32>,
        #[graphql(desc = "Cursor before which the page ends.")] before: Option<String>,
    ) -> Option<PersonConnection> {
        or_null(ctx, nested_people(ctx, self.0.id, filter, PageArgs::new(first, after, last, before))).await.flatten()
    }
    /// The site's users (people with a live login) by username, paged like
    /// `users`. Null when the viewer may not list them (only operators and
    /// the site's administrators may), or with its error in `errors` (a bad
    /// argument, the database unavailable). However many sites a page holds,
    /// all their users are read together.
    #[graphql(complexity = "first.or(last).unwrap_or(20).max(0) as usize * child_complexity")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Filters; all given must match.")] filter: Option<UsersFilter>,
        #[graphql(desc = "Page size from the start, 1 to 100 (default 20); not with `last`.")] first: Option<i32>,
        #[graphql(desc = "Cursor after which the page starts.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1 to 100; not with `first`.")] last: Option<i32>,
        #[graphql(desc = "Cursor before which the page ends.")] before: Option<String>,
    ) -> Option<UserConnection> {
        let args = PageArgs::new(first, after, last, before);
        or_null(ctx, nested_users(ctx, Parent::Site, self.0.id.0, self.0.id, None, filter, args)).await.flatten()
    }
}

pub async fn pools_of(ctx: &Context<'_>, site: domain::SiteId) -> R<Vec<LicensePoolNode>> {
    let pools = rc(ctx).loaders.load_one(PoolsOfSite(site)).await?.unwrap_or_default();
    Ok(pools.into_iter().map(LicensePoolNode).collect())
}

/// One site's pools for a field that is not inside a list (the `licensePools`
/// query, mutation payloads): loaded at once with their modules, when
/// selected, so the request runs a fixed number of statements without
/// waiting on the loader's batching.
pub async fn pools_now(ctx: &Context<'_>, site: domain::SiteId) -> R<Vec<LicensePoolNode>> {
    let pools = rc(ctx).pools_with_modules(site).await?;
    Ok(pools.into_iter().map(LicensePoolNode).collect())
}

/// How a site gets more licenses: depends on whether its agreement allows self-service.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum LicenseRemedy {
    /// The agreement allows self-service: place a license order.
    LicenseOrder,
    /// No self-service: submit a change request to the vendor.
    ChangeRequest,
}

impl From<Remedy> for LicenseRemedy {
    fn from(r: Remedy) -> Self {
        match r {
            Remedy::LicenseOrder => LicenseRemedy::LicenseOrder,
            Remedy::ChangeRequest => LicenseRemedy::ChangeRequest,
        }
    }
}

/// A site's contract with the vendor. Seen by everyone of the site (its
/// users and administrators, the owner of the agreement) and by operators.
pub struct AgreementNode(pub domain::Agreement);

/// A site's contract with the vendor. Seen by everyone of the site (its
/// users and administrators, the owner of the agreement) and by operators.
#[Object(name = "Agreement", serial)]
impl AgreementNode {
    /// The agreement's name or number.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Whether administrators may change totals themselves with license orders.
    async fn self_service(&self) -> bool {
        self.0.self_service
    }
    /// How this site gets more licenses.
    async fn remedy(&self) -> LicenseRemedy {
        Remedy::for_agreement(self.0.self_service).into()
    }
    /// The agreement's owner, if one is set. Shown to operators, the
    /// site's administrators and the owner; null for everyone else.
    async fn owner(&self, ctx: &Context<'_>) -> R<Option<OwnerNode>> {
        let principal = rc(ctx).principal().await?;
        if_there(self.0.owner.clone(), |o| OwnerNode::seen(principal, o, Some(self.0.site_id)))
    }
}

/// An agreement owner: the person responsible for an agreement, with an
/// account of their own outside the site's users. Seen by operators, the
/// administrators of the owned sites and the owner; not by site users.
pub struct OwnerNode(pub domain::Owner, Allowed);

impl OwnerNode {
    /// The owner account as `principal` may see it: reached through the
    /// agreement of `site`, or (no site) by an operator.
    pub fn seen(principal: &Principal, owner: domain::Owner, site: Option<domain::SiteId>) -> R<Self> {
        let action = match site {
            Some(site) => Action::ReadOwnerAccount(site, owner.id),
            None => Action::ListSites,
        };
        Ok(OwnerNode(owner, allowed(principal, action, "agreement owner")?))
    }
}

/// An agreement owner: the person responsible for an agreement, with an
/// account of their own outside the site's users. Seen by operators, the
/// administrators of the owned sites and the owner; not by site users.
#[Object(name = "AgreementOwner", serial)]
impl OwnerNode {
    /// Opaque global id of the owner account.
    async fn id(&self) -> ID {
        encode(Kind::Owner, self.0.id.0)
    }
    /// The owner's name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The owner's username.
    async fn username(&self) -> &str {
        &self.0.username
    }
}

/// A licensed part of the system, such as Case or Document. Modules are data,
/// the same for every site, and seen by everyone signed in.
pub struct ModuleNode(pub domain::Module);

/// A licensed part of the system, such as Case or Document. Modules are data,
/// the same for every site, and seen by everyone signed in.
#[Object(name = "Module", serial)]
impl ModuleNode {
    /// Opaque global id of the module.
    async fn id(&self) -> ID {
        encode(Kind::Module, self.0.id.0)
    }
    /// Stable code, e.g. `CASE` or `DOCUMENT`; inputs name modules by it.
    async fn code(&self) -> &str {
        &self.0.code
    }
    /// Display name, e.g. `Case`.
    async fn name(&self) -> &str {
        &self.0.name
    }
}

/// The licenses a site has bought of one module and how many are in use.
/// Each module has its own pool with its own total.
/// Seen by everyone of the site (site users too) and by operators.
pub struct LicensePoolNode(pub domain::Pool);

/// The licenses a site has bought of one module and how many are in use.
/// Each module has its own pool with its own total.
/// Seen by everyone of the site (site users too) and by operators.
#[Object(name = "LicensePool", serial)]
impl LicensePoolNode {
    /// Opaque global id of the pool (one per site and module): a client
    /// cache keeps one copy of each pool, which every answer that carries it
    /// (mutation results included) updates.
    async fn id(&self) -> ID {
        encode_pool(self.0.site_id.0, self.0.module_id.0)
    }
    /// The module this pool licenses.
    async fn module(&self, ctx: &Context<'_>) -> R<ModuleNode> {
        let m = rc(ctx).loaders.load_one(self.0.module_id).await?.ok_or(ServiceError::Internal)?;
        Ok(ModuleNode(m))
    }
    /// Licenses bought.
    async fn total(&self) -> i64 {
        self.0.total
    }
    /// Licenses occupied by users (one per user whose profile includes the
    /// module); never more than `total`.
    async fn used(&self) -> i64 {
        self.0.used
    }
    /// Licenses free: `total - used`.
    async fn available(&self) -> i64 {
        self.0.available()
    }
    /// `used / total` (1 when the total is 0).
    async fn usage_ratio(&self) -> f64 {
        if self.0.total == 0 { 1.0 } else { self.0.used as f64 / self.0.total as f64 }
    }
    /// True when usage has reached the near-limit threshold (default 90%,
    /// server setting `--near-limit-percent`): warn before anything is refused.
    async fn near_limit(&self, ctx: &Context<'_>) -> bool {
        let percent = ctx.data_opt::<super::Settings>().map_or(90, |s| s.near_limit_percent);
        self.0.used * 100 >= self.0.total * i64::from(percent)
    }
    /// Grows by one with every change of `used` or `total`: of two copies
    /// of the pool (a mutation's answer, a subscription's update), the one
    /// with the higher version is the newer.
    async fn version(&self) -> i64 {
        self.0.version
    }
}

/// A staff record. A person becomes a user when they get a login. Deleted
/// people remain as tombstones so their names stay on records. Seen by
/// operators and the site's administrators; a site user sees only their own;
/// agreement owners see none (fields leading to a person they may not see
/// answer null, or `FORBIDDEN` where the field cannot be null).
pub struct PersonNode(pub domain::Person, Allowed);

impl PersonNode {
    /// The person as `principal` may see them: administrators of the site
    /// and operators see everyone, a site user only themselves.
    pub fn seen(principal: &Principal, person: domain::Person) -> R<Self> {
        let allowed = allowed(principal, Action::ReadPerson(person.site_id, person.id), "person")?;
        Ok(PersonNode(person, allowed))
    }

    /// The person with id `id`, if there is one and `principal` may see them.
    async fn load(ctx: &Context<'_>, id: domain::PersonId) -> R<Option<PersonNode>> {
        let principal = rc(ctx).principal().await?;
        if_there(rc(ctx).loaders.load_one(id).await?, |p| PersonNode::seen(principal, p))
    }
}

/// A staff record. A person becomes a user when they get a login. Deleted
/// people remain as tombstones so their names stay on records. Seen by
/// operators and the site's administrators; a site user sees only their own;
/// agreement owners see none (fields leading to a person they may not see
/// answer null, or `FORBIDDEN` where the field cannot be null).
#[Object(name = "Person", serial)]
impl PersonNode {
    /// Opaque global id of the person.
    async fn id(&self) -> ID {
        encode(Kind::Person, self.0.id.0)
    }
    /// Full name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// E-mail address, if recorded.
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    /// When the person was created (RFC 3339, UTC).
    async fn created_at(&self) -> DateTime {
        timestamp(self.0.created_at)
    }
    /// Whether the person is deleted (a tombstone).
    async fn deleted(&self) -> bool {
        self.0.deleted_at.is_some()
    }
    /// When the person was deleted, if they were.
    async fn deleted_at(&self) -> Option<DateTime> {
        self.0.deleted_at.map(timestamp)
    }
    /// The person's user (their login), if they have one.
    async fn user(&self, ctx: &Context<'_>) -> R<Option<UserNode>> {
        let principal = rc(ctx).principal().await?;
        if_there(rc(ctx).loaders.load_one(LoginOfPerson(self.0.id)).await?, |l| UserNode::seen(principal, l))
    }
    /// What the person is responsible for on the site (forms, document folders).
    async fn responsibilities(&self, ctx: &Context<'_>) -> R<Vec<ResponsibilityNode>> {
        let principal = rc(ctx).principal().await?;
        let held = rc(ctx).loaders.load_one(ResponsibilitiesOf(self.0.id)).await?.unwrap_or_default();
        held.into_iter().map(|r| ResponsibilityNode::seen(principal, r)).collect()
    }
}

/// A person who has a login, with the login's details. The login's profile
/// decides which licenses the user occupies. Seen by operators and the site's
/// administrators; a site user sees only themselves; agreement owners see none.
pub struct UserNode(pub domain::Login, pub Prefetched, Allowed);

impl UserNode {
    /// The user as `principal` may see them (administrators of the site and
    /// operators: everyone; a site user: themselves), with relations that
    /// load through the request's loaders.
    pub fn seen(principal: &Principal, login: domain::Login) -> R<Self> {
        UserNode::seen_with(principal, login, Prefetched::default())
    }

    /// [`UserNode::seen`] with relations a list resolver has read already.
    pub fn seen_with(principal: &Principal, login: domain::Login, prefetched: Prefetched) -> R<Self> {
        let allowed = allowed(principal, Action::ReadUser(login.site_id, login.id), "user")?;
        Ok(UserNode(login, prefetched, allowed))
    }
}

/// Relations of a user that a list resolver has already read with its page,
/// so that the user's fields take them as they are instead of asking a
/// loader once per user and field.
#[derive(Default)]
pub struct Prefetched {
    pub person: Option<domain::Person>,
    pub profile: Option<(domain::Profile, Arc<Vec<domain::Module>>)>,
}

/// A person who has a login, with the login's details. The login's profile
/// decides which licenses the user occupies. Seen by operators and the site's
/// administrators; a site user sees only themselves; agreement owners see none.
#[Object(name = "User", serial)]
impl UserNode {
    /// Opaque global id of the user (of their login).
    async fn id(&self) -> ID {
        encode(Kind::User, self.0.id.0)
    }
    /// Username, unique in the installation without case.
    async fn username(&self) -> &str {
        &self.0.username
    }
    /// Last day (inclusive, `YYYY-MM-DD`) on which the login works; null: no end.
    /// An expired login cannot sign in but still occupies its licenses.
    async fn valid_until(&self) -> Option<Date> {
        self.0.valid_until.map(Date::from)
    }
    /// Whether the login can sign in today. An expired login still occupies its licenses.
    async fn active(&self, ctx: &Context<'_>) -> bool {
        self.0.active_on(rc(ctx).today)
    }
    /// Whether the user is a site administrator. Not a module: it occupies no license.
    async fn is_administrator(&self) -> bool {
        self.0.is_admin
    }
    /// When the login was created (RFC 3339, UTC).
    async fn created_at(&self) -> DateTime {
        timestamp(self.0.created_at)
    }
    /// The person (staff record) this user is.
    async fn person(&self, ctx: &Context<'_>) -> R<PersonNode> {
        let principal = rc(ctx).principal().await?;
        if let Some(p) = &self.1.person {
            return PersonNode::seen(principal, p.clone());
        }
        let p = rc(ctx).loaders.load_one(self.0.person_id).await?.ok_or(ServiceError::Internal)?;
        PersonNode::seen(principal, p)
    }
    /// The login's profile.
    async fn profile(&self, ctx: &Context<'_>) -> R<ProfileNode> {
        let principal = rc(ctx).principal().await?;
        let own = matches!(principal, Principal::SiteLogin { login_id, .. } if *login_id == self.0.id);
        if let Some((p, modules)) = &self.1.profile {
            return ProfileNode::seen(principal, p.clone(), Some(modules.clone()), own);
        }
        let p = rc(ctx).loaders.load_one(self.0.profile_id).await?.ok_or(ServiceError::Internal)?;
        ProfileNode::seen(principal, p, None, own)
    }
    /// Modules whose licenses this user occupies: one license each.
    async fn licensed_modules(&self, ctx: &Context<'_>) -> R<Vec<ModuleNode>> {
        if !self.0.occupying {
            return Ok(Vec::new());
        }
        if let Some((_, modules)) = &self.1.profile {
            return Ok(modules.iter().cloned().map(ModuleNode).collect());
        }
        modules_of(ctx, self.0.profile_id).await
    }
}

async fn modules_of(ctx: &Context<'_>, profile: domain::ProfileId) -> R<Vec<ModuleNode>> {
    let modules = rc(ctx).loaders.load_one(ModulesOfProfile(profile)).await?.unwrap_or_default();
    Ok(modules.into_iter().map(ModuleNode).collect())
}

/// A named set of modules. Users of a profile without modules occupy no
/// license. Seen by operators and the site's administrators; a site user sees
/// only their own profile; agreement owners see none.
pub struct ProfileNode(pub domain::Profile, pub Option<Arc<Vec<domain::Module>>>, Allowed);

impl ProfileNode {
    /// The profile as `principal` may see it (administrators of the site and
    /// operators: every profile; a site user: their own, `own`), with its
    /// modules when already read (else they load through the loaders).
    pub fn seen(
        principal: &Principal,
        profile: domain::Profile,
        modules: Option<Arc<Vec<domain::Module>>>,
        own: bool,
    ) -> R<Self> {
        let allowed = allowed(principal, Action::ReadProfile { site: profile.site_id, own }, "profile")?;
        Ok(ProfileNode(profile, modules, allowed))
    }
}

/// A named set of modules. Users of a profile without modules occupy no
/// license. Seen by operators and the site's administrators; a site user sees
/// only their own profile; agreement owners see none.
#[Object(name = "Profile", serial)]
impl ProfileNode {
    /// Opaque global id of the profile.
    async fn id(&self) -> ID {
        encode(Kind::Profile, self.0.id.0)
    }
    /// Name, unique per site without case.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The modules the profile includes.
    async fn modules(&self, ctx: &Context<'_>) -> R<Vec<ModuleNode>> {
        match &self.1 {
            Some(modules) => Ok(modules.iter().cloned().map(ModuleNode).collect()),
            None => modules_of(ctx, self.0.id).await,
        }
    }
    /// Users on this profile (live logins of live people).
    async fn user_count(&self) -> i64 {
        self.0.user_count
    }
    /// The profile's users (live logins of live people) by username, paged
    /// like `users`. Null when the viewer may not list them (only operators
    /// and the site's administrators may; a site user sees their own
    /// profile, not who else is on it), or with its error in `errors` (a bad
    /// argument, the database unavailable). However many profiles a list
    /// holds, all their users are read together.
    #[graphql(complexity = "first.or(last).unwrap_or(20).max(0) as usize * child_complexity")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Filters; all given must match.")] filter: Option<UsersFilter>,
        #[graphql(desc = "Page size from the start, 1 to 100 (default 20); not with `last`.")] first: Option<i32>,
        #[graphql(desc = "Cursor after which the page starts.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1 to 100; not with `first`.")] last: Option<i32>,
        #[graphql(desc = "Cursor before which the page ends.")] before: Option<String>,
    ) -> Option<UserConnection> {
        let (profile, args) = (&self.0, PageArgs::new(first, after, last, before));
        let users =
            nested_users(ctx, Parent::Profile, profile.id.0, profile.site_id, Some(profile.user_count), filter, args);
        or_null(ctx, users).await.flatten()
    }
}

/// What kind of principal is signed in.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ViewerKind {
    /// A vendor operator: creates sites, sets pool totals, reads everything.
    Operator,
    /// A site login with administrator rights.
    SiteAdministrator,
    /// A site login without administrator rights.
    SiteUser,
    /// An agreement owner's own account: manages the licenses (never the staff) of the agreements they own.
    AgreementOwner,
}

/// The signed-in principal.
pub struct Viewer(pub Principal);

/// The signed-in principal.
#[Object(serial)]
impl Viewer {
    /// What kind of principal this is.
    async fn kind(&self) -> ViewerKind {
        match &self.0 {
            Principal::Operator { .. } => ViewerKind::Operator,
            Principal::SiteLogin { is_admin: true, .. } => ViewerKind::SiteAdministrator,
            Principal::SiteLogin { .. } => ViewerKind::SiteUser,
            Principal::Owner { .. } => ViewerKind::AgreementOwner,
        }
    }
    /// The username signed in with.
    async fn username(&self) -> &str {
        match &self.0 {
            Principal::Operator { username, .. }
            | Principal::SiteLogin { username, .. }
            | Principal::Owner { username, .. } => username,
        }
    }
    /// The signed-in user, for site logins.
    async fn user(&self, ctx: &Context<'_>) -> R<Option<UserNode>> {
        match &self.0 {
            Principal::Operator { .. } | Principal::Owner { .. } => Ok(None),
            Principal::SiteLogin { login_id, .. } => {
                if_there(rc(ctx).loaders.load_one(*login_id).await?, |l| UserNode::seen(&self.0, l))
            }
        }
    }
    /// For agreement owners: the sites whose agreements they own.
    async fn owned_sites(&self, ctx: &Context<'_>) -> R<Vec<SiteNode>> {
        match &self.0 {
            Principal::Owner { sites, .. } => {
                let found = rc(ctx).loaders.load_many(sites.iter().copied()).await?;
                Ok(sites.iter().filter_map(|s| found.get(s).cloned()).map(SiteNode).collect())
            }
            _ => Ok(Vec::new()),
        }
    }
    /// The site of a site login.
    async fn site(&self, ctx: &Context<'_>) -> R<Option<SiteNode>> {
        match self.0.site() {
            None => Ok(None),
            Some(site) => Ok(rc(ctx).loaders.load_one(site).await?.map(SiteNode)),
        }
    }
}

/// One module a change is short of, with the numbers a warning needs.
pub struct LicenseShortage(pub crate::service::ModuleShortage);

/// One module a change is short of, with the numbers a warning needs.
#[Object(serial)]
impl LicenseShortage {
    /// The module that is short.
    async fn module(&self) -> ModuleNode {
        ModuleNode(self.0.module.clone())
    }
    /// Licenses of this module the change needs.
    async fn needed(&self) -> i64 {
        self.0.shortage.needed
    }
    /// Licenses of this module free now.
    async fn available(&self) -> i64 {
        self.0.shortage.available
    }
    /// How many more licenses the site must get: `needed - available`.
    async fn shortfall(&self) -> i64 {
        self.0.shortage.shortfall
    }
}

/// Where a page sits in its list (Relay cursor pagination).
#[derive(async_graphql::SimpleObject)]
pub struct PageInfo {
    /// Whether items come before this page: pass `startCursor` as `before`
    /// (with `last`) to get them. Paging forward, true whenever the page
    /// starts after a cursor (the item at that cursor comes before it).
    pub has_previous_page: bool,
    /// Whether items follow this page: pass `endCursor` as `after` (with
    /// `first`) to get them. Paging backward, true whenever the page ends
    /// before a cursor (the item at that cursor comes after it).
    pub has_next_page: bool,
    /// Cursor of the first item of the page; null when the page is empty.
    pub start_cursor: Option<String>,
    /// Cursor of the last item of the page; null when the page is empty.
    pub end_cursor: Option<String>,
}

/// Declares a Relay connection and edge type for one node type, with
/// `totalCount` described by `$total` (and, for a count that stops at a
/// cap, `totalCountIsExact` described by `$exact`).
macro_rules! connection {
    ($(#[$doc:meta])* $conn:ident, $edge:ident, $node:ty, $what:literal, total: $total:literal $(, exact: $exact:literal)?) => {
        $(#[$doc])*
        pub struct $conn {
            pub edges: Vec<$edge>,
            pub has_previous_page: bool,
            pub has_next_page: bool,
            /// Counted when the client selected it.
            pub total: Option<super::paging::Total>,
        }

        impl super::paging::Connection for $conn {
            type Node = $node;
            fn new(
                edges: Vec<(String, $node)>,
                has_previous_page: bool,
                has_next_page: bool,
                total: Option<super::paging::Total>,
            ) -> Self {
                let edges = edges.into_iter().map(|(cursor, node)| $edge { cursor, node }).collect();
                $conn { edges, has_previous_page, has_next_page, total }
            }
        }

        $(#[$doc])*
        #[Object(serial)]
        impl $conn {
            #[doc = concat!("The ", $what, " of this page, each with its cursor, in the list's order (also when paging backward).")]
            async fn edges(&self) -> &[$edge] {
                &self.edges
            }
            #[doc = concat!("The ", $what, " of this page, in the list's order.")]
            async fn nodes(&self) -> Vec<&$node> {
                self.edges.iter().map(|e| &e.node).collect()
            }
            /// Where this page sits in the list: whether items come before and after it, and the cursors to get them.
            async fn page_info(&self) -> PageInfo {
                PageInfo {
                    has_previous_page: self.has_previous_page,
                    has_next_page: self.has_next_page,
                    start_cursor: self.edges.first().map(|e| e.cursor.clone()),
                    end_cursor: self.edges.last().map(|e| e.cursor.clone()),
                }
            }
            #[doc = $total]
            async fn total_count(&self) -> R<i64> {
                self.total.map(|t| t.count).ok_or(ServiceError::Internal)
            }
            $(
                #[doc = $exact]
                async fn total_count_is_exact(&self) -> R<bool> {
                    self.total.map(|t| t.exact).ok_or(ServiceError::Internal)
                }
            )?
        }

        #[doc = concat!("One of the ", $what, " with its cursor.")]
        pub struct $edge {
            pub cursor: String,
            pub node: $node,
        }

        #[doc = concat!("One of the ", $what, " with its cursor.")]
        #[Object(serial)]
        impl $edge {
            /// Opaque cursor of this item: pass it as `after` for the items after it, or as `before` for those before it, to the same list with the same filters.
            async fn cursor(&self) -> &str {
                &self.cursor
            }
            /// The item.
            async fn node(&self) -> &$node {
                &self.node
            }
        }
    };
}

connection!(
    /// A page of users, ordered by username.
    UserConnection, UserEdge, UserNode, "users",
    total: "How many users the list holds with its filters, on all pages together (\"20 of 412 users\"). \
            Exact. Costs one more database statement, and only when selected (none for a profile's users \
            without filters, which the profile's maintained count answers); that statement reads every \
            matching user, so on lists of hundreds of thousands ask for it once, not with every page."
);
connection!(
    /// A page of people, ordered by name.
    PersonConnection, PersonEdge, PersonNode, "people",
    total: "How many people the list holds with its filters, on all pages together (\"20 of 412 people\"). \
            Exact. Costs one more database statement, and only when selected; that statement reads every \
            matching person, so on lists of hundreds of thousands ask for it once, not with every page."
);
connection!(
    /// A page of sites, ordered by creation.
    SiteConnection, SiteEdge, SiteNode, "sites",
    total: "How many sites there are, on all pages together. Exact. Costs one more database statement, and only \
            when selected."
);

connection!(
    /// A page of license orders, newest first.
    LicenseOrderConnection, LicenseOrderEdge, LicenseOrderNode, "license orders",
    total: "How many orders the list holds with its status filter, on all pages together. Exact. Costs one more \
            database statement, and only when selected."
);
connection!(
    /// A page of change requests, newest first.
    ChangeRequestConnection, ChangeRequestEdge, ChangeRequestNode, "change requests",
    total: "How many change requests the list holds with its filters, on all pages together. Exact. Costs one \
            more database statement, and only when selected."
);
connection!(
    /// A page of audit events, newest first.
    AuditEventConnection, AuditEventEdge, AuditEventNode, "audit events",
    total: "How many events the trail holds with its filters, counted up to a limit the server sets (10,000 \
            unless its operators chose another): the trail grows without end, and counting it whole would \
            cost more the longer it grows. With more events than the limit this is the limit, and \
            `totalCountIsExact` is false: show it as \"10,000+\". Costs one more database statement, and only \
            when selected.",
    exact: "Whether `totalCount` is the exact number of events: false when there are more than the server's \
            counting limit, and `totalCount` is that limit."
);

/// Who did something. The name is kept as it was, so it survives the
/// person's deletion; `deleted` marks a person who is gone. Seen with
/// the order, request or event it is part of.
pub struct ActorNode(pub domain::ActorRef);

/// Who did something. The name is kept as it was, so it survives the
/// person's deletion; `deleted` marks a person who is gone. Seen with
/// the order, request or event it is part of.
#[Object(name = "Actor", serial)]
impl ActorNode {
    /// The actor's name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The actor's person (site logins only), also when deleted; null when
    /// the viewer may not see staff records (see `Person`).
    async fn person(&self, ctx: &Context<'_>) -> R<Option<PersonNode>> {
        match self.0.person {
            Some(p) => PersonNode::load(ctx, p).await,
            None => Ok(None),
        }
    }
    /// Whether the actor's person has been deleted since.
    async fn deleted(&self, ctx: &Context<'_>) -> R<bool> {
        match self.0.person {
            Some(p) => Ok(rc(ctx).loaders.load_one(p).await?.is_some_and(|p| p.deleted_at.is_some())),
            None => Ok(false),
        }
    }
}

/// One module's line of an order or change request.
pub struct TotalLineNode(pub domain::TotalLine);

/// One module's line of an order or change request.
#[Object(name = "TotalLine", serial)]
impl TotalLineNode {
    /// The module.
    async fn module(&self, ctx: &Context<'_>) -> R<ModuleNode> {
        let m = rc(ctx).loaders.load_one(self.0.module_id).await?.ok_or(ServiceError::Internal)?;
        Ok(ModuleNode(m))
    }
    /// The total asked for.
    async fn new_total(&self) -> i64 {
        self.0.new_total
    }
    /// The pool's total just before the change was applied (null until applied).
    async fn total_before(&self) -> Option<i64> {
        self.0.total_before
    }
    /// The pool's total right after (null until applied).
    async fn total_after(&self) -> Option<i64> {
        self.0.total_after
    }
}

/// Status of a license order.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum LicenseOrderStatus {
    /// Being drafted; can be edited, discarded or checked out.
    Draft,
    /// Applied: every line's total was set.
    CheckedOut,
    /// Discarded; nothing was applied.
    Discarded,
}

/// A self-service change of pool totals: a draft, then a checkout that
/// applies every line or none.
/// Seen by the site's administrators, the owner of its agreement and
/// operators; not by site users.
pub struct LicenseOrderNode(pub domain::LicenseOrder);

/// A self-service change of pool totals: a draft, then a checkout that
/// applies every line or none.
/// Seen by the site's administrators, the owner of its agreement and
/// operators; not by site users.
#[Object(name = "LicenseOrder", serial)]
impl LicenseOrderNode {
    /// Opaque global id of the order.
    async fn id(&self) -> ID {
        encode(Kind::LicenseOrder, self.0.id.0)
    }
    /// Where the order stands.
    async fn status(&self) -> LicenseOrderStatus {
        match self.0.status {
            domain::OrderStatus::Draft => LicenseOrderStatus::Draft,
            domain::OrderStatus::CheckedOut => LicenseOrderStatus::CheckedOut,
            domain::OrderStatus::Discarded => LicenseOrderStatus::Discarded,
        }
    }
    /// New total per module, with before/after totals once checked out.
    async fn lines(&self, ctx: &Context<'_>) -> R<Vec<TotalLineNode>> {
        let lines = rc(ctx).loaders.load_one(LinesOfOrder(self.0.id)).await?.unwrap_or_default();
        Ok(lines.into_iter().map(TotalLineNode).collect())
    }
    /// Who drafted it.
    async fn created_by(&self) -> ActorNode {
        ActorNode(self.0.created_by.clone())
    }
    /// When it was drafted (RFC 3339, UTC).
    async fn created_at(&self) -> DateTime {
        timestamp(self.0.created_at)
    }
    /// Who checked it out.
    async fn checked_out_by(&self) -> Option<ActorNode> {
        self.0.checked_out_by.clone().map(ActorNode)
    }
    /// When it was checked out.
    async fn checked_out_at(&self) -> Option<DateTime> {
        self.0.checked_out_at.map(timestamp)
    }
}

/// Status of a change request.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ChangeRequestStatus {
    /// Waiting for the vendor; the requester may cancel it.
    Pending,
    /// Approved and applied.
    Approved,
    /// Rejected with a reason; nothing applied.
    Rejected,
    /// Cancelled by the requester; nothing applied.
    Cancelled,
}

/// A request to the vendor to change pool totals, for agreements without
/// self-service. Seen by the site's administrators, the owner of its
/// agreement and operators; not by site users.
pub struct ChangeRequestNode(pub domain::ChangeRequest);

/// A request to the vendor to change pool totals, for agreements without
/// self-service. Seen by the site's administrators, the owner of its
/// agreement and operators; not by site users.
#[Object(name = "ChangeRequest", serial)]
impl ChangeRequestNode {
    /// Opaque global id of the request.
    async fn id(&self) -> ID {
        encode(Kind::ChangeRequest, self.0.id.0)
    }
    /// Where the request stands.
    async fn status(&self) -> ChangeRequestStatus {
        match self.0.status {
            domain::RequestStatus::Pending => ChangeRequestStatus::Pending,
            domain::RequestStatus::Approved => ChangeRequestStatus::Approved,
            domain::RequestStatus::Rejected => ChangeRequestStatus::Rejected,
            domain::RequestStatus::Cancelled => ChangeRequestStatus::Cancelled,
        }
    }
    /// The site asking.
    async fn site(&self, ctx: &Context<'_>) -> R<Option<SiteNode>> {
        Ok(rc(ctx).loaders.load_one(self.0.site_id).await?.map(SiteNode))
    }
    /// New total per module, with before/after totals once approved.
    async fn lines(&self, ctx: &Context<'_>) -> R<Vec<TotalLineNode>> {
        let lines = rc(ctx).loaders.load_one(LinesOfRequest(self.0.id)).await?.unwrap_or_default();
        Ok(lines.into_iter().map(TotalLineNode).collect())
    }
    /// The requester's message to the vendor.
    async fn message(&self) -> &str {
        &self.0.message
    }
    /// Who submitted it.
    async fn requested_by(&self) -> ActorNode {
        ActorNode(self.0.requested_by.clone())
    }
    /// When it was submitted.
    async fn created_at(&self) -> DateTime {
        timestamp(self.0.created_at)
    }
    /// Who approved, rejected or cancelled it.
    async fn decided_by(&self) -> Option<&str> {
        self.0.decided_by.as_deref()
    }
    /// When it was decided.
    async fn decided_at(&self) -> Option<DateTime> {
        self.0.decided_at.map(timestamp)
    }
    /// Why it was rejected.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
}

/// Kinds of responsibility.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ResponsibilityKindValue {
    /// A form.
    Form,
    /// A document folder.
    DocumentFolder,
}

/// Something a person is responsible for on the site; a person who holds
/// any is deleted only with a hand-over to a colleague. Seen by whoever
/// may see the person who holds it.
pub struct ResponsibilityNode(pub domain::Responsibility, Allowed);

impl ResponsibilityNode {
    /// The responsibility as `principal` may see it: with the person who holds it.
    pub fn seen(principal: &Principal, held: domain::Responsibility) -> R<Self> {
        let allowed = allowed(principal, Action::ReadPerson(held.site_id, held.person_id), "responsibility")?;
        Ok(ResponsibilityNode(held, allowed))
    }
}

/// Something a person is responsible for on the site; a person who holds
/// any is deleted only with a hand-over to a colleague. Seen by whoever
/// may see the person who holds it.
#[Object(name = "Responsibility", serial)]
impl ResponsibilityNode {
    /// Opaque global id of the responsibility.
    async fn id(&self) -> ID {
        encode(Kind::Responsibility, self.0.id.0)
    }
    /// What kind of thing it is.
    async fn kind(&self) -> ResponsibilityKindValue {
        if self.0.kind == "FORM" { ResponsibilityKindValue::Form } else { ResponsibilityKindValue::DocumentFolder }
    }
    /// Its name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Who holds it now; null when the viewer may not see that person.
    async fn holder(&self, ctx: &Context<'_>) -> R<Option<PersonNode>> {
        PersonNode::load(ctx, self.0.person_id).await
    }
}

/// What a change did, or (refused, previewed) would do, to one pool.
pub struct PoolImpactNode(pub Option<domain::SiteId>, pub domain::PoolChange);

impl PoolImpactNode {
    /// The impacts of one change on the pools of `site`.
    pub fn all(site: Option<domain::SiteId>, changes: &[domain::PoolChange]) -> Vec<PoolImpactNode> {
        changes.iter().cloned().map(|c| PoolImpactNode(site, c)).collect()
    }
}

/// What a change did, or (refused, previewed) would do, to one pool.
#[Object(name = "PoolImpact", serial)]
impl PoolImpactNode {
    /// The pool's module.
    async fn module(&self, ctx: &Context<'_>) -> R<ModuleNode> {
        let m = rc(ctx).loaders.load_one(self.1.module_id).await?.ok_or(ServiceError::Internal)?;
        Ok(ModuleNode(m))
    }
    /// The pool as it is now (not as it was at the change), with its id, so
    /// a client cache can link the impact to the pool it shows elsewhere. An
    /// impact is a computed figure, not an object of its own, and has no id.
    /// Null only if the pool no longer exists.
    async fn pool(&self, ctx: &Context<'_>) -> R<Option<LicensePoolNode>> {
        let Some(site) = self.0 else { return Ok(None) };
        let pools = rc(ctx).loaders.load_one(PoolsOfSite(site)).await?.unwrap_or_default();
        Ok(pools.into_iter().find(|p| p.module_id == self.1.module_id).map(LicensePoolNode))
    }
    /// Licenses in use before the change.
    async fn used_before(&self) -> i64 {
        self.1.used_before
    }
    /// Licenses in use after it.
    async fn used_after(&self) -> i64 {
        self.1.used_after
    }
    /// Total before the change.
    async fn total_before(&self) -> i64 {
        self.1.total_before
    }
    /// Total after it.
    async fn total_after(&self) -> i64 {
        self.1.total_after
    }
    /// Free licenses before the change.
    async fn available(&self) -> i64 {
        self.1.total_before - self.1.used_before
    }
    /// Licenses missing for the change to fit (0 when it fits).
    async fn shortfall(&self) -> i64 {
        self.1.shortfall()
    }
}

/// Whether a change was accepted or refused.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum AuditOutcome {
    /// The change was applied.
    Accepted,
    /// The change was refused; nothing was written.
    Refused,
}

/// One accepted or refused change, with its actor (named even after their
/// deletion) and pool numbers.
/// Seen by the site's administrators, the owner of its agreement and
/// operators; not by site users. The owner sees who acted by name only: the
/// people behind an event (`actor.person`, `targetPerson`) are null for them.
pub struct AuditEventNode(pub domain::AuditRecord);

/// One accepted or refused change, with its actor (named even after their
/// deletion) and pool numbers.
/// Seen by the site's administrators, the owner of its agreement and
/// operators; not by site users. The owner sees who acted by name only: the
/// people behind an event (`actor.person`, `targetPerson`) are null for them.
#[Object(name = "AuditEvent", serial)]
impl AuditEventNode {
    /// Opaque global id of the event.
    async fn id(&self) -> ID {
        encode(Kind::AuditEvent, self.0.id)
    }
    /// When it happened (RFC 3339, UTC).
    async fn at(&self) -> DateTime {
        timestamp(self.0.at)
    }
    /// Who did it.
    async fn actor(&self) -> ActorNode {
        ActorNode(self.0.actor.clone())
    }
    /// What was done: the mutation's name, e.g. `createLogin`.
    async fn action(&self) -> &str {
        &self.0.action
    }
    /// Global id of what it was done to (a pool's too); null when there is
    /// no such object (e.g. a refused creation made none).
    async fn target_id(&self) -> Option<ID> {
        super::ids::audit_target_to_id(&self.0.target)
    }
    /// The person it was about, if any (also when deleted since); null when
    /// the viewer may not see staff records (see `Person`).
    async fn target_person(&self, ctx: &Context<'_>) -> R<Option<PersonNode>> {
        match self.0.target_person {
            Some(p) => PersonNode::load(ctx, p).await,
            None => Ok(None),
        }
    }
    /// Accepted or refused.
    async fn outcome(&self) -> AuditOutcome {
        if self.0.outcome == "ACCEPTED" { AuditOutcome::Accepted } else { AuditOutcome::Refused }
    }
    /// The business rule that refused it, as a short code (the vendor's rule
    /// number, or for rules without one a name such as `NAMES_UNIQUE`, or the
    /// authorization rule of a `FORBIDDEN`). Null when accepted. Show `message`
    /// to people; the code is for support and filtering.
    async fn rule(&self) -> Option<&str> {
        self.0.rule.as_deref()
    }
    /// Why it was refused, as a stable code: the `code` of the answer it got
    /// (e.g. `LICENSE_LIMIT_EXCEEDED`), or the error's `extensions.code`
    /// (`NOT_FOUND`, `FORBIDDEN`). Null when accepted.
    async fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }
    /// The message the refused change was answered with, for people; null
    /// when there is none (accepted changes).
    async fn message(&self) -> Option<&str> {
        Some(self.0.message.as_str()).filter(|m| !m.is_empty())
    }
    /// The refusal's code and message in one string, `CODE: message`.
    #[graphql(deprecation = "Use `code` and `message`.")]
    async fn detail(&self) -> String {
        match &self.0.code {
            Some(code) => format!("{code}: {}", self.0.message),
            None => self.0.message.clone(),
        }
    }
    /// Pool numbers before and after (for refusals: what the change would have needed).
    async fn pools(&self) -> Vec<PoolImpactNode> {
        PoolImpactNode::all(self.0.site_id, &self.0.pools)
    }
}
