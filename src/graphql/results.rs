//! Typed mutation results. An expected refusal is a member of the result
//! union with a stable `code`, a human `message` and the numbers a frontend
//! needs; only failures outside the policy are top-level errors. Each
//! refusal's GraphQL object is an `#[Object]` impl on the service's own type
//! (`service/refusals.rs`), and each union converts from the refusals its use
//! case declares, so the compiler checks that the two agree.

use async_graphql::{Context, Enum, ID, Interface, Object, SimpleObject, Union};

use super::context::rc;
use super::ids::{Kind, encode};
use super::types::*;
use crate::domain::{OrderStatus, RequestStatus};
use crate::service::licenses::{
    ApproveChangeRequestRefusal, ChangeRequestRefusal, CheckoutRefusal, CreateOwnerAccountRefusal, LicenseOrderRefusal,
};
use crate::service::refusals::*;
use crate::service::sites::{CreateSiteRefusal, SetPoolTotalRefusal};
use crate::service::staff::{
    AssignResponsibilityRefusal, CreateLoginRefusal, CreateProfileRefusal, DeletePersonRefusal, DeleteProfileRefusal,
    RestoreLoginRefusal, RestorePersonRefusal, UpdateLoginRefusal, UpdatePersonRefusal, UpdateProfileRefusal,
};
use crate::service::{Refusal, ServiceError};

type R<T> = Result<T, ServiceError>;

/// Stable codes of refusals.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum RefusalCode {
    /// Not enough free licenses for the change.
    LicenseLimitExceeded,
    /// A pool total below the licenses in use.
    PoolBelowUsage,
    /// The username is taken (compared without case, installation-wide).
    UsernameTaken,
    /// A profile with users cannot be deleted.
    ProfileInUse,
    /// Another profile of the site has this name.
    ProfileNameTaken,
    /// Another site has this name.
    SiteNameTaken,
    /// The person already has a login; a person has at most one.
    PersonAlreadyHasLogin,
    /// The person is deleted.
    PersonDeleted,
    /// Unknown username or wrong password.
    InvalidCredentials,
    /// The login's validUntil date has passed.
    LoginExpired,
    /// Too many failed sign-ins for the username or from the client's
    /// address: sign-in is paused for `retryAfterSeconds`.
    TooManyAttempts,
    /// The person still holds responsibilities.
    PersonHasResponsibilities,
    /// New totals below the licenses in use (orders, change requests).
    TotalsBelowUsage,
    /// The agreement calls for the other path (order vs change request).
    WrongLicensePath,
    /// The order is no longer a draft.
    OrderNotDraft,
    /// The change request is no longer pending.
    RequestNotPending,
}

impl From<&RefusalCode> for RefusalCode {
    fn from(code: &RefusalCode) -> Self {
        *code
    }
}

/// Common shape of every refusal: switch on `__typename` or on `code`.
#[derive(Interface)]
#[graphql(
    name = "Refusal",
    field(name = "code", ty = "RefusalCode", desc = "Stable code of the refusal."),
    field(name = "message", ty = "String", desc = "What happened and what to do, for a person.")
)]
pub enum RefusalInterface {
    LicenseLimitExceeded(LicenseLimitExceeded),
    PoolBelowUsage(PoolBelowUsage),
    UsernameTaken(UsernameTaken),
    ProfileInUse(ProfileInUse),
    ProfileNameTaken(ProfileNameTaken),
    SiteNameTaken(SiteNameTaken),
    PersonAlreadyHasLogin(PersonAlreadyHasLogin),
    PersonDeleted(PersonDeleted),
    SignInRefused(SignInRefused),
    SignInThrottled(SignInThrottled),
    PersonHasResponsibilities(PersonHasResponsibilities),
    TotalsBelowUsage(TotalsBelowUsage),
    WrongLicensePath(WrongLicensePath),
    OrderNotDraft(OrderNotDraft),
    RequestNotPending(RequestNotPending),
}

// The refusals' objects. Their `code` and `message` resolvers shadow the
// `Refusal` methods of the same names, hence `Refusal::message(self)`.

/// The change needs more licenses than are free; no pool is ever
/// over-allocated. Nothing was written.
#[Object]
impl LicenseLimitExceeded {
    /// Always `LICENSE_LIMIT_EXCEEDED`.
    async fn code(&self) -> RefusalCode {
        RefusalCode::LicenseLimitExceeded
    }
    /// E.g. "Not enough licenses: 2 Document licenses missing (needs 3, 1 free). ...".
    async fn message(&self) -> String {
        Refusal::message(self)
    }
    /// Every module the change is short of, with needed, available and shortfall.
    async fn shortages(&self) -> Vec<LicenseShortage> {
        self.shortages.iter().cloned().map(LicenseShortage).collect()
    }
    /// How to get more: a license order (self-service) or a change request.
    async fn remedy(&self) -> LicenseRemedy {
        self.remedy.into()
    }
    /// The remedy as a sentence.
    async fn remedy_message(&self) -> &str {
        remedy_text(self.remedy)
    }
}

/// A pool's total cannot be set below the licenses in use. Nothing was written.
#[Object]
impl PoolBelowUsage {
    /// Always `POOL_BELOW_USAGE`.
    async fn code(&self) -> RefusalCode {
        RefusalCode::PoolBelowUsage
    }
    /// What happened and what to do.
    async fn message(&self) -> String {
        Refusal::message(self)
    }
    /// The pool's module.
    async fn module(&self) -> ModuleNode {
        ModuleNode(self.module.clone())
    }
    /// The total that was asked for.
    async fn requested_total(&self) -> i64 {
        self.requested_total
    }
    /// Licenses in use now.
    async fn used(&self) -> i64 {
        self.used
    }
    /// Users who must lose this module first: `used - requestedTotal`.
    async fn users_to_remove(&self) -> i64 {
        self.users_to_remove
    }
}

/// The username is taken. Nothing was written.
#[Object]
impl UsernameTaken {
    /// Always `USERNAME_TAKEN`.
    async fn code(&self) -> RefusalCode {
        RefusalCode::UsernameTaken
    }
    /// What happened.
    async fn message(&self) -> String {
        Refusal::message(self)
    }
    /// The username asked for.
    async fn username(&self) -> &str {
        &self.username
    }
}

/// The profile still has users (or deleted logins kept for restoring). Nothing was written.
#[Object]
impl ProfileInUse {
    /// Always `PROFILE_IN_USE`.
    async fn code(&self) -> RefusalCode {
        RefusalCode::ProfileInUse
    }
    /// What happened and what to do.
    async fn message(&self) -> String {
        Refusal::message(self)
    }
    /// Users on the profile now; move them first.
    async fn user_count(&self) -> i64 {
        self.user_count
    }
    /// Deleted logins that still refer to the profile.
    async fn deleted_user_count(&self) -> i64 {
        self.deleted_user_count
    }
}

/// Another profile of the site has this name. Nothing was written.
#[Object]
impl ProfileNameTaken {
    /// Always `PROFILE_NAME_TAKEN`.
    async fn code(&self) -> RefusalCode {
        RefusalCode::ProfileNameTaken
    }
    /// What happened.
    async fn message(&self) -> String {
        Refusal::message(self)
    }
    /// The name asked for.
    async fn name(&self) -> &str {
        &self.name
    }
}

/// Another site has this name. Nothing was written.
#[Object]
impl SiteNameTaken {
    /// Always `SITE_NAME_TAKEN`.
    async fn code(&self) -> RefusalCode {
        RefusalCode::SiteNameTaken
    }
    /// What happened.
    async fn message(&self) -> String {
        Refusal::message(self)
    }
    /// The name asked for.
    async fn name(&self) -> &str {
        &self.name
    }
}

/// The person already has a login; a person has at most one. Nothing was written.
#[Object]
impl PersonAlreadyHasLogin {
    /// Always `PERSON_ALREADY_HAS_LOGIN`.
    async fn code(&self) -> RefusalCode {
        RefusalCode::PersonAlreadyHasLogin
    }
    /// What happened.
    async fn message(&self) -> String {
        Refusal::message(self)
    }
}

/// The person is deleted. Nothing was written.
#[Object]
impl PersonDeleted {
    /// Always `PERSON_DELETED`.
    async fn code(&self) -> RefusalCode {
        RefusalCode::PersonDeleted
    }
    /// What happened.
    async fn message(&self) -> String {
        Refusal::message(self)
    }
}

/// The person still holds responsibilities; name a colleague in
/// `handOverTo` to hand them over in the same operation. Nothing was written.
#[Object]
impl PersonHasResponsibilities {
    /// Always `PERSON_HAS_RESPONSIBILITIES`.
    async fn code(&self) -> RefusalCode {
        RefusalCode::PersonHasResponsibilities
    }
    /// What happened and what to do.
    async fn message(&self) -> String {
        Refusal::message(self)
    }
    /// What the person still holds.
    async fn responsibilities(&self, ctx: &Context<'_>) -> R<Vec<ResponsibilityNode>> {
        let principal = rc(ctx).principal().await?;
        self.responsibilities.iter().cloned().map(|r| ResponsibilityNode::seen(principal, r)).collect()
    }
}

/// One pool that new totals would put below the licenses in use.
pub struct PoolBelowUsageLine(pub BelowUsage);

/// One pool that new totals would put below the licenses in use.
#[Object]
impl PoolBelowUsageLine {
    /// The pool's module.
    async fn module(&self) -> ModuleNode {
        ModuleNode(self.0.module.clone())
    }
    /// The total asked for.
    async fn requested_total(&self) -> i64 {
        self.0.requested_total
    }
    /// Licenses in use now.
    async fn used(&self) -> i64 {
        self.0.used
    }
    /// Users who must lose this module first.
    async fn users_to_remove(&self) -> i64 {
        self.0.users_to_remove
    }
}

/// The new totals would put pools below the licenses in use. Nothing was applied (every line or none).
#[Object]
impl TotalsBelowUsage {
    /// Always `TOTALS_BELOW_USAGE`.
    async fn code(&self) -> RefusalCode {
        RefusalCode::TotalsBelowUsage
    }
    /// What happened and what to do.
    async fn message(&self) -> String {
        Refusal::message(self)
    }
    /// Every pool that would go below its usage.
    async fn pools(&self) -> Vec<PoolBelowUsageLine> {
        self.pools.iter().cloned().map(PoolBelowUsageLine).collect()
    }
}

/// The agreement calls for the other way of changing totals (license order
/// or change request). Nothing was written.
#[Object]
impl WrongLicensePath {
    /// Always `WRONG_LICENSE_PATH`.
    async fn code(&self) -> RefusalCode {
        RefusalCode::WrongLicensePath
    }
    /// What happened and what to do.
    async fn message(&self) -> String {
        Refusal::message(self)
    }
    /// The path to take instead.
    async fn remedy(&self) -> LicenseRemedy {
        self.remedy.into()
    }
}

/// The order was already checked out or discarded. Nothing was written.
#[Object]
impl OrderNotDraft {
    /// Always `ORDER_NOT_DRAFT`.
    async fn code(&self) -> RefusalCode {
        RefusalCode::OrderNotDraft
    }
    /// What happened.
    async fn message(&self) -> String {
        Refusal::message(self)
    }
    /// The order's status.
    async fn status(&self) -> LicenseOrderStatus {
        match self.status {
            OrderStatus::Draft => LicenseOrderStatus::Draft,
            OrderStatus::CheckedOut => LicenseOrderStatus::CheckedOut,
            OrderStatus::Discarded => LicenseOrderStatus::Discarded,
        }
    }
}

/// The change request was already decided or cancelled. Nothing was written.
#[Object]
impl RequestNotPending {
    /// Always `REQUEST_NOT_PENDING`.
    async fn code(&self) -> RefusalCode {
        RefusalCode::RequestNotPending
    }
    /// What happened.
    async fn message(&self) -> String {
        Refusal::message(self)
    }
    /// The request's status.
    async fn status(&self) -> ChangeRequestStatus {
        match self.status {
            RequestStatus::Pending => ChangeRequestStatus::Pending,
            RequestStatus::Approved => ChangeRequestStatus::Approved,
            RequestStatus::Rejected => ChangeRequestStatus::Rejected,
            RequestStatus::Cancelled => ChangeRequestStatus::Cancelled,
        }
    }
}

/// Signing in did not work.
#[derive(SimpleObject)]
pub struct SignInRefused {
    /// `INVALID_CREDENTIALS` or `LOGIN_EXPIRED`.
    pub code: RefusalCode,
    /// What happened.
    pub message: String,
}

/// Signing in is paused for this username or for the client's address after
/// too many failed attempts; the password was not checked. Each further
/// pause of the same username or address lasts longer, up to a limit; a
/// successful sign-in ends the username's count.
#[derive(SimpleObject)]
pub struct SignInThrottled {
    /// Always `TOO_MANY_ATTEMPTS`.
    pub code: RefusalCode,
    /// What happened and when to try again.
    pub message: String,
    /// Seconds to wait before the next attempt can be checked (at least 1).
    pub retry_after_seconds: i32,
}

/// Declares a mutation's result union: its success type, and the refusals
/// of the `refusals!` enum its use case answers with (`Set { A | B }`). The
/// union, and the `Refusal` interface of previews, convert from that enum by
/// an exhaustive match: a refusal the enum holds and the union does not
/// list, or the other way round, does not compile.
macro_rules! result_union {
    ($(#[$doc:meta])* $name:ident: $success:ident) => {
        $(#[$doc])*
        #[derive(Union)]
        pub enum $name {
            $success($success),
        }
    };
    ($(#[$doc:meta])* $name:ident: $success:ident | $refused:ident { $($refusal:ident)|+ }) => {
        $(#[$doc])*
        #[derive(Union)]
        // An answer, built once and resolved at once: not worth a box.
        #[allow(clippy::large_enum_variant)]
        pub enum $name {
            $success($success),
            $($refusal($refusal),)+
        }

        impl From<$refused> for $name {
            fn from(refused: $refused) -> Self {
                match refused {
                    $($refused::$refusal(r) => $name::$refusal(r),)+
                }
            }
        }

        impl From<$refused> for RefusalInterface {
            fn from(refused: $refused) -> Self {
                match refused {
                    $($refused::$refusal(r) => RefusalInterface::$refusal(r),)+
                }
            }
        }
    };
}

/// A new session.
pub struct SignInSuccess {
    pub token: String,
    pub expires_at: i64,
    pub viewer: Viewer,
}

/// A new session.
#[Object]
impl SignInSuccess {
    /// Bearer token: send `Authorization: Bearer <token>` with every request.
    async fn token(&self) -> &str {
        &self.token
    }
    /// When the session ends unless signed out earlier (RFC 3339, UTC).
    async fn expires_at(&self) -> super::scalars::DateTime {
        super::scalars::DateTime::from_unix(self.expires_at)
    }
    /// Who is now signed in.
    async fn viewer(&self) -> &Viewer {
        &self.viewer
    }
}

/// Result of `signIn`.
#[derive(Union)]
pub enum SignInResult {
    SignInSuccess(SignInSuccess),
    SignInRefused(SignInRefused),
    SignInThrottled(SignInThrottled),
}

/// The state of a site's pools right after a change, for updating counts on screen.
pub struct PoolsAfter(pub crate::domain::SiteId);

impl PoolsAfter {
    pub async fn resolve(&self, ctx: &Context<'_>) -> R<Vec<LicensePoolNode>> {
        pools_now(ctx, self.0).await
    }
}

macro_rules! success_with_pools {
    ($(#[$doc:meta])* $name:ident { $(#[$fdoc:meta])* $field:ident: $ty:ty }) => {
        $(#[$doc])*
        pub struct $name {
            pub $field: $ty,
            pub pools: PoolsAfter,
        }

        $(#[$doc])*
        #[Object]
        impl $name {
            $(#[$fdoc])*
            async fn $field(&self) -> &$ty {
                &self.$field
            }
            /// The site's pools after the change (this change never touches totals).
            async fn license_pools(&self, ctx: &Context<'_>) -> R<Vec<LicensePoolNode>> {
                self.pools.resolve(ctx).await
            }
        }
    };
}

success_with_pools!(
    /// The login was created; the person is now a user.
    CreateLoginSuccess { /// The new user.
        user: UserNode }
);
/// A profile as it is right after a change, read past the request's cache
/// (the change moved its user count).
async fn profile_after(ctx: &Context<'_>, id: crate::domain::ProfileId) -> R<ProfileNode> {
    let principal = rc(ctx).principal().await?;
    let profile = rc(ctx).store.profiles_by_ids(&[id]).await?.into_iter().next().ok_or(ServiceError::Internal)?;
    ProfileNode::seen(principal, profile, None, false)
}

/// The login was changed.
pub struct UpdateLoginSuccess {
    pub user: UserNode,
    pub left_profile: Option<crate::domain::ProfileId>,
    pub pools: PoolsAfter,
}

/// The login was changed.
#[Object]
impl UpdateLoginSuccess {
    /// The user after the change.
    async fn user(&self) -> &UserNode {
        &self.user
    }
    /// The profile the user left, with its user count after the move; null
    /// when the profile did not change. (The new one is `user.profile`.)
    async fn previous_profile(&self, ctx: &Context<'_>) -> R<Option<ProfileNode>> {
        match self.left_profile {
            Some(id) => profile_after(ctx, id).await.map(Some),
            None => Ok(None),
        }
    }
    /// The site's pools after the change (this change never touches totals).
    async fn license_pools(&self, ctx: &Context<'_>) -> R<Vec<LicensePoolNode>> {
        self.pools.resolve(ctx).await
    }
}

/// The login was deleted; the person stays as staff and the licenses are free, totals unchanged.
pub struct DeleteLoginSuccess {
    pub person: PersonNode,
    pub login: crate::domain::Login,
    pub pools: PoolsAfter,
}

/// The login was deleted; the person stays as staff and the licenses are free, totals unchanged.
#[Object]
impl DeleteLoginSuccess {
    /// The person, still on staff (their `user` is now null).
    async fn person(&self) -> &PersonNode {
        &self.person
    }
    /// Global id of the deleted user: remove it from client caches and lists.
    async fn deleted_user_id(&self) -> ID {
        encode(Kind::User, self.login.id.0)
    }
    /// The profile the deleted login was on, with its user count after the deletion.
    async fn profile(&self, ctx: &Context<'_>) -> R<ProfileNode> {
        profile_after(ctx, self.login.profile_id).await
    }
    /// The site's pools after the change (this change never touches totals).
    async fn license_pools(&self, ctx: &Context<'_>) -> R<Vec<LicensePoolNode>> {
        self.pools.resolve(ctx).await
    }
}

/// The person was deleted (kept as a tombstone, so their name stays on records) and their login with them.
pub struct DeletePersonSuccess {
    pub person: PersonNode,
    pub login: Option<crate::domain::Login>,
    pub pools: PoolsAfter,
}

/// The person was deleted (kept as a tombstone, so their name stays on records) and their login with them.
#[Object]
impl DeletePersonSuccess {
    /// The deleted person.
    async fn person(&self) -> &PersonNode {
        &self.person
    }
    /// Global id of the user deleted with the person; null when they had no login.
    async fn deleted_user_id(&self) -> Option<ID> {
        self.login.as_ref().map(|l| encode(Kind::User, l.id.0))
    }
    /// The profile of the login deleted with the person, with its user count
    /// after the deletion; null when they had no login.
    async fn profile(&self, ctx: &Context<'_>) -> R<Option<ProfileNode>> {
        match &self.login {
            Some(login) => profile_after(ctx, login.profile_id).await.map(Some),
            None => Ok(None),
        }
    }
    /// The site's pools after the change (this change never touches totals).
    async fn license_pools(&self, ctx: &Context<'_>) -> R<Vec<LicensePoolNode>> {
        self.pools.resolve(ctx).await
    }
}
success_with_pools!(
    /// The profile was created.
    CreateProfileSuccess { /// The new profile.
        profile: ProfileNode }
);
success_with_pools!(
    /// The profile was changed; its users' licenses moved with its modules.
    UpdateProfileSuccess { /// The profile after the change.
        profile: ProfileNode }
);

/// The person was created.
#[derive(SimpleObject)]
pub struct CreatePersonSuccess {
    /// The new person.
    pub person: PersonNode,
}

/// The person was changed.
#[derive(SimpleObject)]
pub struct UpdatePersonSuccess {
    /// The person after the change.
    pub person: PersonNode,
}

/// The profile was deleted.
#[derive(SimpleObject)]
pub struct DeleteProfileSuccess {
    /// Global id of the deleted profile.
    pub deleted_profile_id: async_graphql::ID,
}

/// The pool's total was set.
#[derive(SimpleObject)]
pub struct SetPoolTotalSuccess {
    /// The pool after the change.
    pub pool: LicensePoolNode,
}

/// The site was created with its agreement, pools and first administrator.
#[derive(SimpleObject)]
pub struct CreateSiteSuccess {
    /// The new site.
    pub site: SiteNode,
    /// Its first administrator (on the module-less profile, occupying no license).
    pub administrator: UserNode,
}

result_union!(
    /// Result of `createLogin`.
    CreateLoginResult: CreateLoginSuccess | CreateLoginRefusal { LicenseLimitExceeded | UsernameTaken | PersonAlreadyHasLogin | PersonDeleted }
);
result_union!(
    /// Result of `updateLogin` and `changeLoginProfile`.
    UpdateLoginResult: UpdateLoginSuccess | UpdateLoginRefusal { LicenseLimitExceeded | UsernameTaken }
);
result_union!(
    /// Result of `deleteLogin`.
    DeleteLoginResult: DeleteLoginSuccess
);
result_union!(
    /// Result of `createPerson`.
    CreatePersonResult: CreatePersonSuccess
);
result_union!(
    /// Result of `updatePerson`.
    UpdatePersonResult: UpdatePersonSuccess | UpdatePersonRefusal { PersonDeleted }
);
result_union!(
    /// Result of `deletePerson`.
    DeletePersonResult: DeletePersonSuccess | DeletePersonRefusal { PersonHasResponsibilities | PersonDeleted }
);
result_union!(
    /// Result of `createProfile`.
    CreateProfileResult: CreateProfileSuccess | CreateProfileRefusal { ProfileNameTaken }
);
result_union!(
    /// Result of `updateProfile`.
    UpdateProfileResult: UpdateProfileSuccess | UpdateProfileRefusal { LicenseLimitExceeded | ProfileNameTaken }
);
result_union!(
    /// Result of `deleteProfile`.
    DeleteProfileResult: DeleteProfileSuccess | DeleteProfileRefusal { ProfileInUse }
);
result_union!(
    /// Result of `setPoolTotal`.
    SetPoolTotalResult: SetPoolTotalSuccess | SetPoolTotalRefusal { PoolBelowUsage }
);
result_union!(
    /// Result of `createSite`.
    CreateSiteResult: CreateSiteSuccess | CreateSiteRefusal { SiteNameTaken | UsernameTaken }
);

success_with_pools!(
    /// The person is back, with the login deleted together with them; its licenses are occupied again.
    RestorePersonSuccess { /// The restored person.
        person: PersonNode }
);
success_with_pools!(
    /// The login is back and occupies its licenses again.
    RestoreLoginSuccess { /// The restored user.
        user: UserNode }
);

/// The responsibility was given.
#[derive(SimpleObject)]
pub struct AssignResponsibilitySuccess {
    /// The new responsibility.
    pub responsibility: ResponsibilityNode,
}

/// The order was drafted or changed.
#[derive(SimpleObject)]
pub struct LicenseOrderSuccess {
    /// The order.
    pub order: LicenseOrderNode,
}

success_with_pools!(
    /// The order was checked out: every line applied (or, for a retried key, the first checkout's result).
    CheckoutSuccess { /// The checked-out order with before/after totals.
        order: LicenseOrderNode }
);

/// The change request was submitted, cancelled or rejected.
#[derive(SimpleObject)]
pub struct ChangeRequestSuccess {
    /// The request.
    pub request: ChangeRequestNode,
}

success_with_pools!(
    /// The change request was approved and applied.
    ApproveChangeRequestSuccess { /// The approved request with before/after totals.
        request: ChangeRequestNode }
);

/// The owner account was created.
#[derive(SimpleObject)]
pub struct CreateOwnerAccountSuccess {
    /// The new owner account.
    pub owner: OwnerNode,
}

/// The agreement was changed.
#[derive(SimpleObject)]
pub struct UpdateAgreementSuccess {
    /// The site whose agreement changed.
    pub site: SiteNode,
}

result_union!(
    /// Result of `restorePerson`.
    RestorePersonResult: RestorePersonSuccess | RestorePersonRefusal { LicenseLimitExceeded | UsernameTaken }
);
result_union!(
    /// Result of `restoreLogin`.
    RestoreLoginResult: RestoreLoginSuccess | RestoreLoginRefusal { LicenseLimitExceeded | UsernameTaken | PersonAlreadyHasLogin | PersonDeleted }
);
result_union!(
    /// Result of `assignResponsibility`.
    AssignResponsibilityResult: AssignResponsibilitySuccess | AssignResponsibilityRefusal { PersonDeleted }
);
result_union!(
    /// Result of `createLicenseOrder`, `updateLicenseOrder` and `discardLicenseOrder`.
    LicenseOrderResult: LicenseOrderSuccess | LicenseOrderRefusal { WrongLicensePath | OrderNotDraft }
);
result_union!(
    /// Result of `checkoutLicenseOrder`.
    CheckoutResult: CheckoutSuccess | CheckoutRefusal { TotalsBelowUsage | WrongLicensePath | OrderNotDraft }
);
result_union!(
    /// Result of `submitChangeRequest`, `cancelChangeRequest` and `rejectChangeRequest`.
    ChangeRequestResult: ChangeRequestSuccess | ChangeRequestRefusal { WrongLicensePath | RequestNotPending }
);
result_union!(
    /// Result of `approveChangeRequest`.
    ApproveChangeRequestResult: ApproveChangeRequestSuccess | ApproveChangeRequestRefusal { TotalsBelowUsage | RequestNotPending }
);
result_union!(
    /// Result of `createOwnerAccount`.
    CreateOwnerAccountResult: CreateOwnerAccountSuccess | CreateOwnerAccountRefusal { UsernameTaken }
);

/// What a change would decide right now, written nowhere: the same code as
/// the mutation, run in a transaction that is rolled back.
pub struct LicensePreview {
    pub refusal: Option<RefusalInterface>,
    pub site: Option<crate::domain::SiteId>,
    pub pools: Vec<crate::domain::PoolChange>,
}

/// What a change would decide right now, written nowhere: the same code as
/// the mutation, run in a transaction that is rolled back.
#[Object]
impl LicensePreview {
    /// Whether the mutation would be accepted now.
    async fn allowed(&self) -> bool {
        self.refusal.is_none()
    }
    /// Per pool: used and total before and after, available, shortfall.
    async fn pools(&self) -> Vec<PoolImpactNode> {
        PoolImpactNode::all(self.site, &self.pools)
    }
    /// The refusal the mutation would answer with, if any.
    async fn refusal(&self) -> Option<&RefusalInterface> {
        self.refusal.as_ref()
    }
}

impl LicensePreview {
    /// The preview of what a use case decided.
    pub fn of<T, R: Into<RefusalInterface>>(decided: crate::service::Decided<T, R>) -> Self {
        LicensePreview { refusal: decided.outcome.err().map(Into::into), site: decided.site, pools: decided.pools }
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, EnumType, Schema};
    use serde_json::{Value, json};

    use super::*;
    use crate::domain::policy::{Remedy, Shortage};
    use crate::domain::*;

    /// One of each refusal the service decides.
    fn every_refusal() -> Vec<RefusalInterface> {
        let module = Module { id: ModuleId(1), code: "CASE".into(), name: "Case".into() };
        let shortage = Shortage { module_id: ModuleId(1), needed: 3, available: 1, shortfall: 2 };
        let held = Responsibility {
            id: ResponsibilityId(1),
            site_id: SiteId(1),
            person_id: PersonId(1),
            kind: "FORM".into(),
            name: "Intake".into(),
            created_at: 0,
        };
        let below = BelowUsage { module: module.clone(), requested_total: 1, used: 2, users_to_remove: 1 };
        vec![
            LicenseLimitExceeded {
                shortages: vec![ModuleShortage { module: module.clone(), shortage }],
                remedy: Remedy::LicenseOrder,
            }
            .into(),
            PoolBelowUsage { module, requested_total: 1, used: 2, users_to_remove: 1 }.into(),
            UsernameTaken { username: "ada".into() }.into(),
            ProfileInUse { profile: ProfileId(1), user_count: 2, deleted_user_count: 0 }.into(),
            ProfileNameTaken { name: "Clerks".into() }.into(),
            SiteNameTaken { name: "North".into() }.into(),
            PersonAlreadyHasLogin { person: PersonId(1) }.into(),
            PersonDeleted { person: PersonId(1) }.into(),
            PersonHasResponsibilities { responsibilities: vec![held] }.into(),
            TotalsBelowUsage { pools: vec![below] }.into(),
            WrongLicensePath { remedy: Remedy::ChangeRequest }.into(),
            OrderNotDraft { status: OrderStatus::CheckedOut }.into(),
            RequestNotPending { status: RequestStatus::Approved }.into(),
        ]
    }

    /// What the audit event of `refusal` records: its code and message.
    fn recorded(refusal: &RefusalInterface) -> Value {
        let (code, message) = match refusal {
            RefusalInterface::LicenseLimitExceeded(r) => (Refusal::code(r), Refusal::message(r)),
            RefusalInterface::PoolBelowUsage(r) => (Refusal::code(r), Refusal::message(r)),
            RefusalInterface::UsernameTaken(r) => (Refusal::code(r), Refusal::message(r)),
            RefusalInterface::ProfileInUse(r) => (Refusal::code(r), Refusal::message(r)),
            RefusalInterface::ProfileNameTaken(r) => (Refusal::code(r), Refusal::message(r)),
            RefusalInterface::SiteNameTaken(r) => (Refusal::code(r), Refusal::message(r)),
            RefusalInterface::PersonAlreadyHasLogin(r) => (Refusal::code(r), Refusal::message(r)),
            RefusalInterface::PersonDeleted(r) => (Refusal::code(r), Refusal::message(r)),
            RefusalInterface::PersonHasResponsibilities(r) => (Refusal::code(r), Refusal::message(r)),
            RefusalInterface::TotalsBelowUsage(r) => (Refusal::code(r), Refusal::message(r)),
            RefusalInterface::WrongLicensePath(r) => (Refusal::code(r), Refusal::message(r)),
            RefusalInterface::OrderNotDraft(r) => (Refusal::code(r), Refusal::message(r)),
            RefusalInterface::RequestNotPending(r) => (Refusal::code(r), Refusal::message(r)),
            RefusalInterface::SignInRefused(_) | RefusalInterface::SignInThrottled(_) => {
                unreachable!("sign-in refusals are not audit events")
            }
        };
        json!({ "code": code, "message": message })
    }

    struct Refusals;

    #[Object]
    impl Refusals {
        async fn refusals(&self) -> Vec<RefusalInterface> {
            every_refusal()
        }
    }

    /// The `code` and `message` of an answer are those its audit event
    /// records, and every `RefusalCode` but the sign-in ones is a refusal's.
    #[tokio::test]
    async fn every_refusal_answers_the_code_and_message_its_audit_event_records() {
        let schema = Schema::new(Refusals, EmptyMutation, EmptySubscription);
        let answer = schema.execute("{ refusals { code message } }").await.into_result().unwrap();
        let answered = answer.data.into_json().unwrap()["refusals"].clone();
        let recorded: Vec<Value> = every_refusal().iter().map(recorded).collect();
        assert_eq!(answered, Value::Array(recorded));

        let sign_in = ["INVALID_CREDENTIALS", "LOGIN_EXPIRED", "TOO_MANY_ATTEMPTS"];
        let codes: Vec<&str> = RefusalCode::items().iter().map(|i| i.name).filter(|n| !sign_in.contains(n)).collect();
        let covered: Vec<&str> = answered.as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
        assert_eq!(covered, codes);
    }
}
