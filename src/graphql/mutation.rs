//! Mutation root: parses input into domain values, calls one service, and
//! turns its outcome into the mutation's typed result.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};

use super::context::rc;
use super::ids::{Kind, decode, encode};
use super::query::QueryRoot;
use super::results::*;
use super::scalars;
use super::types::*;
use crate::domain::throttle::ClientAddress;
use crate::domain::*;
use crate::service::auth::{self, SignInRefusal};
use crate::service::{Mode, ServiceError, sites, staff};

type R<T> = Result<T, ServiceError>;

fn opt_email(raw: Option<&str>) -> R<Option<Email>> {
    Ok(raw.filter(|e| !e.trim().is_empty()).map(Email::parse).transpose()?)
}

/// A new person (staff record).
#[derive(InputObject)]
pub struct CreatePersonInput {
    /// The site; only operators give it, administrators always use their own.
    pub site_id: Option<ID>,
    /// Full name, 1–200 characters.
    pub name: String,
    /// E-mail address.
    pub email: Option<String>,
}

/// New details of a person.
#[derive(InputObject)]
pub struct UpdatePersonInput {
    /// Full name, 1–200 characters.
    pub name: String,
    /// E-mail address; null or omitted clears it.
    pub email: Option<String>,
}

/// A new login for a person: makes them a user. A person has at most one login.
#[derive(InputObject)]
pub struct CreateLoginInput {
    /// The person who gets the login.
    pub person_id: ID,
    /// Username: 3–64 letters, digits or `. _ - @`; unique without case.
    pub username: String,
    /// Password: 12–200 characters, not easy to guess (common passwords, single words, keyboard patterns and repeats are refused).
    pub password: String,
    /// The profile; the user occupies one license of each of its modules.
    pub profile_id: ID,
    /// Last day the login works (`YYYY-MM-DD`, inclusive, from 1900-01-01 to
    /// 9999-12-31); omit for no end. From the day after it the login cannot sign in.
    pub valid_until: Option<scalars::Date>,
    /// Site administrator rights (occupy no license). Default false.
    pub is_administrator: Option<bool>,
}

/// Changes to a login; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateLoginInput {
    /// New username.
    pub username: Option<String>,
    /// New password (12–200 characters, not easy to guess, as for a new login); ends the login's sessions.
    pub password: Option<String>,
    /// New profile: licenses move with it, and the change is refused whole if a pool lacks free licenses.
    pub profile_id: Option<ID>,
    /// New last day (`YYYY-MM-DD`, from 1900-01-01 to 9999-12-31); null clears it (no end).
    pub valid_until: MaybeUndefined<scalars::Date>,
    /// Grant or take administrator rights.
    pub is_administrator: Option<bool>,
}

/// A new profile.
#[derive(InputObject)]
pub struct CreateProfileInput {
    /// The site; only operators give it.
    pub site_id: Option<ID>,
    /// Name, unique per site without case.
    pub name: String,
    /// Module codes, e.g. `["CASE"]`; empty for a profile without modules, whose users occupy no license.
    pub modules: Vec<String>,
}

/// Changes to a profile; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateProfileInput {
    /// New name.
    pub name: Option<String>,
    /// The complete new set of module codes. Each module added needs one
    /// free license per user of the profile, all or nothing.
    pub modules: Option<Vec<String>>,
}

/// One pool's initial total.
#[derive(InputObject)]
pub struct PoolTotalInput {
    /// Module code, e.g. `CASE`.
    pub module: String,
    /// Licenses bought, 0 or more.
    pub total: i32,
}

/// The site's first administrator.
#[derive(InputObject)]
pub struct FirstAdministratorInput {
    /// Full name.
    pub name: String,
    /// E-mail address.
    pub email: Option<String>,
    /// Username, unique without case.
    pub username: String,
    /// Password: 12–200 characters, not easy to guess (common passwords, single words, keyboard patterns and repeats are refused).
    pub password: String,
}

/// A new site with its agreement.
#[derive(InputObject)]
pub struct CreateSiteInput {
    /// Site name, unique in the installation.
    pub name: String,
    /// The agreement's name or number.
    pub agreement_name: String,
    /// Whether administrators may change totals themselves with license orders (otherwise they send change requests to the vendor). Default false.
    pub self_service: Option<bool>,
    /// Initial totals, each module at most once; modules not named start at 0.
    pub pools: Vec<PoolTotalInput>,
    /// The first administrator (on a profile without modules).
    pub administrator: FirstAdministratorInput,
}

fn codes(list: &[String]) -> R<Vec<ModuleCode>> {
    Ok(list.iter().map(|c| ModuleCode::parse(c)).collect::<Result<_, _>>()?)
}

async fn load_login(ctx: &Context<'_>, id: LoginId) -> R<UserNode> {
    let principal = rc(ctx).principal().await?;
    UserNode::seen(principal, rc(ctx).loaders.load_one(id).await?.ok_or(ServiceError::Internal)?)
}

async fn load_profile(ctx: &Context<'_>, id: ProfileId) -> R<ProfileNode> {
    let principal = rc(ctx).principal().await?;
    let profile = rc(ctx).loaders.load_one(id).await?.ok_or(ServiceError::Internal)?;
    ProfileNode::seen(principal, profile, None, false)
}

#[derive(Default)]
pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Signs in with username (any case) and password; returns a bearer token.
    /// A login past its validUntil cannot sign in. After too many failed
    /// attempts for one username, or from one address, sign-in is paused for
    /// a while (`SignInThrottled`, with `retryAfterSeconds`), whether or not
    /// the password is right. A request may contain at most one `signIn`.
    async fn sign_in(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Username, compared without case.")] username: String,
        #[graphql(desc = "Password.")] password: String,
    ) -> R<SignInResult> {
        let limits = ctx.data_opt::<super::Settings>().map(|s| s.sign_in).unwrap_or_default();
        let client = ctx.data_opt::<ClientAddress>().copied();
        Ok(match auth::sign_in(&rc(ctx).store, &limits, client, &username, &password).await? {
            Ok(s) => {
                rc(ctx).adopt(s.principal.clone());
                SignInResult::SignInSuccess(SignInSuccess {
                    token: s.token,
                    expires_at: s.expires_at,
                    viewer: Viewer(s.principal),
                })
            }
            Err(SignInRefusal::InvalidCredentials) => SignInResult::SignInRefused(SignInRefused {
                code: RefusalCode::InvalidCredentials,
                message: "Unknown username or wrong password.".into(),
            }),
            Err(SignInRefusal::LoginExpired) => SignInResult::SignInRefused(SignInRefused {
                code: RefusalCode::LoginExpired,
                message: "This login's validUntil date has passed; ask an administrator to extend it.".into(),
            }),
            Err(SignInRefusal::Throttled { retry_after_seconds }) => SignInResult::SignInThrottled(SignInThrottled {
                code: RefusalCode::TooManyAttempts,
                message: format!(
                    "Too many failed sign-ins for this username or from this address; the password was not checked. \
                     Try again in {retry_after_seconds} s."
                ),
                retry_after_seconds: i32::try_from(retry_after_seconds).unwrap_or(i32::MAX),
            }),
        })
    }

    /// Ends the current session; true when it was active.
    async fn sign_out(&self, ctx: &Context<'_>) -> R<bool> {
        let rcx = rc(ctx);
        rcx.principal().await?;
        let token = rcx.token.as_deref().ok_or(ServiceError::Internal)?;
        crate::retrying!(rcx.store.retries(), auth::sign_out(&rcx.store, token))
    }

    /// Creates a site, its agreement, a pool per module and its first administrator (operators).
    async fn create_site(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new site.")] input: CreateSiteInput,
    ) -> R<CreateSiteResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let totals = input
            .pools
            .iter()
            .map(|p| Ok((ModuleCode::parse(&p.module)?, LicenseTotal::parse(i64::from(p.total), "total")?)))
            .collect::<Result<Vec<_>, InvalidInput>>()?;
        let parsed = sites::SiteInput {
            name: SiteName::parse(&input.name)?,
            agreement_name: AgreementName::parse(&input.agreement_name)?,
            self_service: input.self_service.unwrap_or(false),
            totals,
            admin_name: PersonName::parse(&input.administrator.name)?,
            admin_email: opt_email(input.administrator.email.as_deref())?,
            admin_username: Username::parse(&input.administrator.username)?,
            admin_password: Password::parse(&input.administrator.password)?,
        };
        match crate::retrying!(rcx.store.retries(), sites::create_site(&rcx.store, principal, parsed.clone()))? {
            Ok(created) => Ok(CreateSiteResult::CreateSiteSuccess(CreateSiteSuccess {
                site: rcx.loaders.load_one(created.site).await?.map(SiteNode).ok_or(ServiceError::Internal)?,
                administrator: load_login(ctx, created.administrator).await?,
            })),
            Err(refusal) => Ok(refusal.into()),
        }
    }

    /// Sets a pool's total (operators). Refused when the new total is below the licenses in use.
    async fn set_pool_total(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the site.")] site_id: ID,
        #[graphql(desc = "Module code, e.g. `DOCUMENT`.")] module: String,
        #[graphql(desc = "The new total, 0 or more.")] total: i32,
    ) -> R<SetPoolTotalResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let site = SiteId(decode(&site_id, Kind::Site, "siteId")?);
        let module = ModuleCode::parse(&module)?;
        let total = LicenseTotal::parse(i64::from(total), "total")?;
        match crate::retrying!(
            rcx.store.retries(),
            sites::set_pool_total(&rcx.store, principal, site, module.clone(), total)
        )? {
            Ok(pool) => {
                Ok(SetPoolTotalResult::SetPoolTotalSuccess(SetPoolTotalSuccess { pool: LicensePoolNode(pool) }))
            }
            Err(refusal) => Ok(refusal.into()),
        }
    }

    /// Creates a person (staff record, not yet a user).
    async fn create_person(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new person.")] input: CreatePersonInput,
    ) -> R<CreatePersonResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let site = staff::target_site(
            principal,
            input.site_id.as_ref().map(|id| decode(id, Kind::Site, "siteId")).transpose()?.map(SiteId),
        )?;
        let parsed =
            staff::PersonInput { name: PersonName::parse(&input.name)?, email: opt_email(input.email.as_deref())? };
        let person =
            crate::retrying!(rcx.store.retries(), staff::create_person(&rcx.store, principal, site, parsed.clone()))?;
        Ok(CreatePersonResult::CreatePersonSuccess(CreatePersonSuccess {
            person: PersonNode::seen(principal, person)?,
        }))
    }

    /// Changes a person's name and e-mail.
    async fn update_person(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the person.")] id: ID,
        #[graphql(desc = "The new details.")] input: UpdatePersonInput,
    ) -> R<UpdatePersonResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let id = PersonId(decode(&id, Kind::Person, "id")?);
        let parsed =
            staff::PersonInput { name: PersonName::parse(&input.name)?, email: opt_email(input.email.as_deref())? };
        match crate::retrying!(rcx.store.retries(), staff::update_person(&rcx.store, principal, id, parsed.clone()))? {
            Ok(person) => Ok(UpdatePersonResult::UpdatePersonSuccess(UpdatePersonSuccess {
                person: PersonNode::seen(principal, person)?,
            })),
            Err(refusal) => Ok(refusal.into()),
        }
    }

    /// Deletes a person and their login. Frees their licenses and leaves the
    /// totals as they were; the person is kept as a tombstone, so their name
    /// stays on everything they took part in.
    async fn delete_person(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the person.")] id: ID,
        #[graphql(
            desc = "A colleague to hand the person's responsibilities to, in the same operation; a person who holds responsibilities is deleted only with one."
        )]
        hand_over_to: Option<ID>,
    ) -> R<DeletePersonResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let id = PersonId(decode(&id, Kind::Person, "id")?);
        let heir = hand_over_to.as_ref().map(|h| decode(h, Kind::Person, "handOverTo")).transpose()?.map(PersonId);
        match crate::retrying!(rcx.store.retries(), staff::delete_person(&rcx.store, principal, id, heir))? {
            Ok(staff::Removed { person, login }) => Ok(DeletePersonResult::DeletePersonSuccess(DeletePersonSuccess {
                pools: PoolsAfter(person.site_id),
                person: PersonNode::seen(principal, person)?,
                login,
            })),
            Err(refusal) => Ok(refusal.into()),
        }
    }

    /// Gives a person a login on a profile: occupies one license per module of
    /// the profile, refused whole (nothing written) when a pool lacks free licenses.
    async fn create_login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new login.")] input: CreateLoginInput,
    ) -> R<CreateLoginResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let parsed = staff::LoginInput {
            person: PersonId(decode(&input.person_id, Kind::Person, "personId")?),
            username: Username::parse(&input.username)?,
            password: Password::parse(&input.password)?,
            profile: ProfileId(decode(&input.profile_id, Kind::Profile, "profileId")?),
            valid_until: input.valid_until.as_ref().map(|d| d.day("validUntil")).transpose()?,
            is_admin: input.is_administrator.unwrap_or(false),
        };
        match crate::retrying!(
            rcx.store.retries(),
            staff::create_login(&rcx.store, principal, parsed.clone(), Mode::Apply)
        )?
        .outcome
        {
            Ok(login) => Ok(CreateLoginResult::CreateLoginSuccess(CreateLoginSuccess {
                pools: PoolsAfter(login.site_id),
                user: UserNode::seen(principal, login)?,
            })),
            Err(refusal) => Ok(refusal.into()),
        }
    }

    /// Changes a login. A new profile moves its licenses, refused whole when a pool lacks free licenses.
    async fn update_login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the user.")] id: ID,
        #[graphql(desc = "The changes.")] input: UpdateLoginInput,
    ) -> R<UpdateLoginResult> {
        let id = LoginId(decode(&id, Kind::User, "id")?);
        let changes = staff::LoginChanges {
            username: input.username.as_deref().map(Username::parse).transpose()?,
            password: input.password.as_deref().map(Password::parse).transpose()?,
            profile: input
                .profile_id
                .as_ref()
                .map(|p| decode(p, Kind::Profile, "profileId"))
                .transpose()?
                .map(ProfileId),
            valid_until: match input.valid_until {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(d) => Some(Some(d.day("validUntil")?)),
            },
            is_admin: input.is_administrator,
        };
        update_login(ctx, id, changes, "updateLogin").await
    }

    /// Moves a user to another profile: modules gained need free licenses
    /// (refused whole otherwise), modules lost free theirs. A profile without
    /// modules parks the user: they can sign in and occupy no license.
    async fn change_login_profile(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the user.")] id: ID,
        #[graphql(desc = "Global id of the new profile.")] profile_id: ID,
    ) -> R<UpdateLoginResult> {
        let id = LoginId(decode(&id, Kind::User, "id")?);
        let profile = ProfileId(decode(&profile_id, Kind::Profile, "profileId")?);
        let changes = || staff::LoginChanges { profile: Some(profile), ..Default::default() };
        // A session this instance checked before needs no lookup: the change's writes
        // are guarded by it instead. If anything fails there (the guard, a rule, the
        // database), nothing was written, and the change is decided again on a fresh
        // check, which gives the answer.
        const ACTION: &str = "changeLoginProfile";
        if let Some((principal, store)) = rc(ctx).guarded() {
            match staff::update_login(&store, &principal, id, changes(), Mode::Apply, ACTION).await {
                Ok(decided) => return update_login_result(&principal, decided.outcome),
                // Answered with its event written while the session held: deciding
                // again would record it twice.
                Err(e @ ServiceError::NotFound(_)) => return Err(e),
                Err(_) => {}
            }
        }
        update_login(ctx, id, changes(), ACTION).await
    }

    /// Deletes a login; the person stays as staff and the licenses are freed, totals unchanged.
    async fn delete_login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the user.")] id: ID,
    ) -> R<DeleteLoginResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let id = LoginId(decode(&id, Kind::User, "id")?);
        let staff::Removed { person, login } =
            crate::retrying!(rcx.store.retries(), staff::delete_login(&rcx.store, principal, id))?;
        Ok(DeleteLoginResult::DeleteLoginSuccess(DeleteLoginSuccess {
            pools: PoolsAfter(person.site_id),
            person: PersonNode::seen(principal, person)?,
            login: login.ok_or(ServiceError::Internal)?,
        }))
    }

    /// Creates a profile (a named set of modules).
    async fn create_profile(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new profile.")] input: CreateProfileInput,
    ) -> R<CreateProfileResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let site = staff::target_site(
            principal,
            input.site_id.as_ref().map(|id| decode(id, Kind::Site, "siteId")).transpose()?.map(SiteId),
        )?;
        let parsed = staff::ProfileInput { name: ProfileName::parse(&input.name)?, modules: codes(&input.modules)? };
        match crate::retrying!(rcx.store.retries(), staff::create_profile(&rcx.store, principal, site, parsed.clone()))?
        {
            Ok(id) => Ok(CreateProfileResult::CreateProfileSuccess(CreateProfileSuccess {
                pools: PoolsAfter(site),
                profile: load_profile(ctx, id).await?,
            })),
            Err(refusal) => Ok(refusal.into()),
        }
    }

    /// Renames a profile or sets its modules. Adding a module needs one free
    /// license per user of the profile, all or nothing.
    async fn update_profile(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the profile.")] id: ID,
        #[graphql(desc = "The changes.")] input: UpdateProfileInput,
    ) -> R<UpdateProfileResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let id = ProfileId(decode(&id, Kind::Profile, "id")?);
        let name = input.name.as_deref().map(ProfileName::parse).transpose()?;
        let modules = input.modules.as_deref().map(codes).transpose()?;
        match crate::retrying!(
            rcx.store.retries(),
            staff::update_profile(&rcx.store, principal, id, name.clone(), modules.clone(), Mode::Apply)
        )?
        .outcome
        {
            Ok(id) => {
                let profile = load_profile(ctx, id).await?;
                Ok(UpdateProfileResult::UpdateProfileSuccess(UpdateProfileSuccess {
                    pools: PoolsAfter(profile.0.site_id),
                    profile,
                }))
            }
            Err(refusal) => Ok(refusal.into()),
        }
    }

    /// Deletes a profile that has no users.
    async fn delete_profile(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the profile.")] id: ID,
    ) -> R<DeleteProfileResult> {
        let rcx = rc(ctx);
        let principal = rcx.principal().await?;
        let id = ProfileId(decode(&id, Kind::Profile, "id")?);
        match crate::retrying!(rcx.store.retries(), staff::delete_profile(&rcx.store, principal, id))? {
            Ok(id) => Ok(DeleteProfileResult::DeleteProfileSuccess(DeleteProfileSuccess {
                deleted_profile_id: encode(Kind::Profile, id.0),
            })),
            Err(refusal) => Ok(refusal.into()),
        }
    }
}

async fn update_login(
    ctx: &Context<'_>,
    id: LoginId,
    changes: staff::LoginChanges,
    action: &'static str,
) -> R<UpdateLoginResult> {
    let rcx = rc(ctx);
    let principal = rcx.principal().await?;
    update_login_result(
        principal,
        crate::retrying!(
            rcx.store.retries(),
            staff::update_login(&rcx.store, principal, id, changes.clone(), Mode::Apply, action)
        )?
        .outcome,
    )
}

fn update_login_result(
    principal: &Principal,
    outcome: crate::service::Outcome<staff::LoginUpdated, staff::UpdateLoginRefusal>,
) -> R<UpdateLoginResult> {
    match outcome {
        Ok(staff::LoginUpdated { login, left_profile }) => {
            Ok(UpdateLoginResult::UpdateLoginSuccess(UpdateLoginSuccess {
                pools: PoolsAfter(login.site_id),
                user: UserNode::seen(principal, login)?,
                left_profile,
            }))
        }
        Err(refusal) => Ok(refusal.into()),
    }
}

/// Changes. Each mutation writes all of its effects or none; expected
/// refusals are members of its result union, never errors.
#[derive(async_graphql::MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct Mutation(MutationRoot, super::lifecycle::LifecycleMutation);

/// Reads. Everything needs a signed-in principal (see `signIn`); site
/// principals see only their own site. Each type says who sees it. A
/// field that leads to an object the viewer may not see answers null, or the
/// error `FORBIDDEN` where it cannot be null; an id of another site is
/// answered `NOT_FOUND`, exactly like an id that does not exist.
#[derive(async_graphql::MergedObject, Default)]
#[graphql(name = "Query")]
pub struct Query(QueryRoot, super::lifecycle::LifecycleQuery);

/// The schema type.
pub type AppSchema = async_graphql::Schema<Query, Mutation, super::subscription::SubscriptionRoot>;
