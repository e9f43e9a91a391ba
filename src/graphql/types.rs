//! GraphQL object types over the domain values. Relations resolve through
//! the request's loaders; every type and field is documented, since the
//! documentation ships in the schema and the playground's docs pane.

use async_graphql::{Context, Enum, ID, Interface, Object};

use super::context::rc;
use super::ids::{Kind, encode};
use super::loaders::{AgreementOfSite, LoginOfPerson, ModulesOfProfile, PoolsOfSite};
use crate::domain::policy::Remedy;
use crate::domain::{self, Principal};
use crate::service::{ServiceError, remedy_text};

type R<T> = Result<T, ServiceError>;

fn timestamp(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
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
}

/// A customer site: the tenant. Everything else belongs to exactly one site.
pub struct SiteNode(pub domain::Site);

/// A customer site: the tenant. Everything else belongs to exactly one site.
#[Object(name = "Site")]
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
    async fn created_at(&self) -> String {
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
}

pub async fn pools_of(ctx: &Context<'_>, site: domain::SiteId) -> R<Vec<LicensePoolNode>> {
    let pools = rc(ctx).loaders.load_one(PoolsOfSite(site)).await?.unwrap_or_default();
    Ok(pools.into_iter().map(LicensePoolNode).collect())
}

/// How a site gets more licenses (DOMAIN.md R10).
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

/// A site's contract with the vendor.
pub struct AgreementNode(pub domain::Agreement);

/// A site's contract with the vendor.
#[Object(name = "Agreement")]
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
}

/// A licensed part of the system, such as Case or Document. Modules are data.
pub struct ModuleNode(pub domain::Module);

/// A licensed part of the system, such as Case or Document. Modules are data.
#[Object(name = "Module")]
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

/// The licenses a site has bought of one module and how many are in use (R3).
pub struct LicensePoolNode(pub domain::Pool);

/// The licenses a site has bought of one module and how many are in use (R3).
#[Object(name = "LicensePool")]
impl LicensePoolNode {
    /// The module this pool licenses.
    async fn module(&self, ctx: &Context<'_>) -> R<ModuleNode> {
        let m = rc(ctx).loaders.load_one(self.0.module_id).await?.ok_or(ServiceError::Internal)?;
        Ok(ModuleNode(m))
    }
    /// Licenses bought.
    async fn total(&self) -> i64 {
        self.0.total
    }
    /// Licenses occupied by users (R2); never more than `total` (R4).
    async fn used(&self) -> i64 {
        self.0.used
    }
    /// Licenses free: `total - used`.
    async fn available(&self) -> i64 {
        self.0.available()
    }
}

/// A staff record. A person becomes a user when they get a login (R1).
/// Deleted people remain as tombstones so their names stay on records (R7).
pub struct PersonNode(pub domain::Person);

/// A staff record. A person becomes a user when they get a login (R1).
/// Deleted people remain as tombstones so their names stay on records (R7).
#[Object(name = "Person")]
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
    async fn created_at(&self) -> String {
        timestamp(self.0.created_at)
    }
    /// Whether the person is deleted (a tombstone).
    async fn deleted(&self) -> bool {
        self.0.deleted_at.is_some()
    }
    /// When the person was deleted, if they were.
    async fn deleted_at(&self) -> Option<String> {
        self.0.deleted_at.map(timestamp)
    }
    /// The person's user (their login), if they have one.
    async fn user(&self, ctx: &Context<'_>) -> R<Option<UserNode>> {
        Ok(rc(ctx).loaders.load_one(LoginOfPerson(self.0.id)).await?.map(UserNode))
    }
}

/// A person who has a login (R1), with the login's details. The login's
/// profile decides which licenses the user occupies (R2).
pub struct UserNode(pub domain::Login);

/// A person who has a login (R1), with the login's details. The login's
/// profile decides which licenses the user occupies (R2).
#[Object(name = "User")]
impl UserNode {
    /// Opaque global id of the user (of their login).
    async fn id(&self) -> ID {
        encode(Kind::User, self.0.id.0)
    }
    /// Username, unique in the installation without case.
    async fn username(&self) -> &str {
        &self.0.username
    }
    /// Last day (inclusive, `YYYY-MM-DD`) on which the login works; null: no end (R9).
    async fn valid_until(&self) -> Option<String> {
        self.0.valid_until.map(|d| d.format())
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
    async fn created_at(&self) -> String {
        timestamp(self.0.created_at)
    }
    /// The person (staff record) this user is.
    async fn person(&self, ctx: &Context<'_>) -> R<PersonNode> {
        let p = rc(ctx).loaders.load_one(self.0.person_id).await?.ok_or(ServiceError::Internal)?;
        Ok(PersonNode(p))
    }
    /// The login's profile.
    async fn profile(&self, ctx: &Context<'_>) -> R<ProfileNode> {
        let p = rc(ctx).loaders.load_one(self.0.profile_id).await?.ok_or(ServiceError::Internal)?;
        Ok(ProfileNode(p))
    }
    /// Modules whose licenses this user occupies: one license each (R2).
    async fn licensed_modules(&self, ctx: &Context<'_>) -> R<Vec<ModuleNode>> {
        if !self.0.occupying {
            return Ok(Vec::new());
        }
        modules_of(ctx, self.0.profile_id).await
    }
}

async fn modules_of(ctx: &Context<'_>, profile: domain::ProfileId) -> R<Vec<ModuleNode>> {
    let modules = rc(ctx).loaders.load_one(ModulesOfProfile(profile)).await?.unwrap_or_default();
    Ok(modules.into_iter().map(ModuleNode).collect())
}

/// A named set of modules. Users of a profile without modules occupy no license (R8).
pub struct ProfileNode(pub domain::Profile);

/// A named set of modules. Users of a profile without modules occupy no license (R8).
#[Object(name = "Profile")]
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
        modules_of(ctx, self.0.id).await
    }
    /// Users on this profile (live logins of live people).
    async fn user_count(&self) -> i64 {
        self.0.user_count
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
}

/// The signed-in principal.
pub struct Viewer(pub Principal);

/// The signed-in principal.
#[Object]
impl Viewer {
    /// What kind of principal this is.
    async fn kind(&self) -> ViewerKind {
        match &self.0 {
            Principal::Operator { .. } => ViewerKind::Operator,
            Principal::SiteLogin { is_admin: true, .. } => ViewerKind::SiteAdministrator,
            Principal::SiteLogin { .. } => ViewerKind::SiteUser,
        }
    }
    /// The username signed in with.
    async fn username(&self) -> &str {
        match &self.0 {
            Principal::Operator { username, .. } | Principal::SiteLogin { username, .. } => username,
        }
    }
    /// The signed-in user, for site logins.
    async fn user(&self, ctx: &Context<'_>) -> R<Option<UserNode>> {
        match &self.0 {
            Principal::Operator { .. } => Ok(None),
            Principal::SiteLogin { login_id, .. } => Ok(rc(ctx).loaders.load_one(*login_id).await?.map(UserNode)),
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

/// One module a change is short of (R4), with the numbers a warning needs.
pub struct LicenseShortage(pub crate::service::ModuleShortage);

/// One module a change is short of (R4), with the numbers a warning needs.
#[Object]
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

/// How to get more licenses, as a sentence.
pub fn remedy_message(r: Remedy) -> String {
    remedy_text(r).to_string()
}

/// Where a page sits in its list (Relay cursor pagination).
#[derive(async_graphql::SimpleObject)]
pub struct PageInfo {
    /// Whether a page comes before this one.
    pub has_previous_page: bool,
    /// Whether another page follows: pass `endCursor` as `after` to get it.
    pub has_next_page: bool,
    /// Cursor of the first item of the page.
    pub start_cursor: Option<String>,
    /// Cursor of the last item of the page.
    pub end_cursor: Option<String>,
}

/// Declares a Relay connection and edge type for one node type.
macro_rules! connection {
    ($(#[$doc:meta])* $conn:ident, $edge:ident, $node:ty, $what:literal) => {
        $(#[$doc])*
        pub struct $conn {
            pub edges: Vec<$edge>,
            pub has_previous_page: bool,
            pub has_next_page: bool,
        }

        $(#[$doc])*
        #[Object]
        impl $conn {
            #[doc = concat!("The ", $what, " of this page, each with its cursor.")]
            async fn edges(&self) -> &[$edge] {
                &self.edges
            }
            #[doc = concat!("The ", $what, " of this page.")]
            async fn nodes(&self) -> Vec<&$node> {
                self.edges.iter().map(|e| &e.node).collect()
            }
            /// Paging information.
            async fn page_info(&self) -> PageInfo {
                PageInfo {
                    has_previous_page: self.has_previous_page,
                    has_next_page: self.has_next_page,
                    start_cursor: self.edges.first().map(|e| e.cursor.clone()),
                    end_cursor: self.edges.last().map(|e| e.cursor.clone()),
                }
            }
        }

        #[doc = concat!("One of the ", $what, " with its cursor.")]
        pub struct $edge {
            pub cursor: String,
            pub node: $node,
        }

        #[doc = concat!("One of the ", $what, " with its cursor.")]
        #[Object]
        impl $edge {
            /// Opaque cursor; pass it as `after` to start the next page after this item.
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
    UserConnection, UserEdge, UserNode, "users"
);
connection!(
    /// A page of people, ordered by name.
    PersonConnection, PersonEdge, PersonNode, "people"
);
connection!(
    /// A page of sites, ordered by creation.
    SiteConnection, SiteEdge, SiteNode, "sites"
);
