//! People, logins and profiles of a site: the changes that occupy and free
//! licenses (R1, R2, R4, R6, R8) and the decisions about them (`docs/domain.md`).

use std::convert::Infallible;

use super::*;
use crate::domain::policy::{NO_SELF_REMOVAL, module_deltas};
use crate::store::{NewLogin, Owned};

/// The site whose staff `principal` may manage for an existing object.
/// A site login acts on its own site only: the transaction then finds the
/// object under that site or answers not found (R13), so no lookup is
/// needed. Others (operators, owners) get the object's site looked up and
/// checked; objects they may not see answer as not found.
async fn managed_site(
    store: &Store,
    principal: &Principal,
    object: Owned,
    what: &'static str,
) -> ServiceResult<SiteId> {
    let site = match principal.site() {
        Some(own) => own,
        None => store.site_of(object).await?.ok_or(ServiceError::NotFound(what))?,
    };
    authorize(principal, Action::ManageStaff(site), what)?;
    Ok(site)
}

/// The site a new object goes to: the principal's own, or the one an operator names.
pub fn target_site(principal: &Principal, requested: Option<SiteId>) -> ServiceResult<SiteId> {
    match (principal.default_site(), requested) {
        (Some(own), None) => Ok(own),
        (_, Some(site)) => Ok(site),
        (None, None) => Err(ServiceError::Invalid(InvalidInput::new(
            "siteId",
            "name the site (siteId): operators and owners of several agreements act on more than one",
        ))),
    }
}

/// Resolves module codes (unknown codes are bad input), sorted by id, deduplicated.
pub async fn resolve_modules(store: &Store, codes: &[ModuleCode]) -> ServiceResult<Vec<Module>> {
    let all = store.modules().await?;
    let mut found = Vec::new();
    for code in codes {
        let module = all.iter().find(|m| m.code == code.as_str()).ok_or_else(|| {
            let known: Vec<&str> = all.iter().map(|m| m.code.as_str()).collect();
            InvalidInput::new(
                "modules",
                format!("unknown module `{}`; known modules: {}", code.as_str(), known.join(", ")),
            )
        })?;
        if !found.iter().any(|m: &Module| m.id == module.id) {
            found.push(module.clone());
        }
    }
    found.sort_by_key(|m| m.id);
    Ok(found)
}

fn is_self(principal: &Principal, login: Option<LoginId>, person: Option<PersonId>) -> bool {
    match principal {
        Principal::SiteLogin { login_id, person_id, .. } => Some(*login_id) == login || Some(*person_id) == person,
        Principal::Operator { .. } | Principal::Owner { .. } => false,
    }
}

pub async fn hash_password(password: &Password) -> ServiceResult<String> {
    let password = password.clone();
    super::auth::argon2_turn(move || {
        use argon2::PasswordHasher;
        argon2::Argon2::default().hash_password(password.expose().as_bytes()).map(|h| h.to_string())
    })
    .await?
    .map_err(|e| {
        tracing::error!(error = %e, "password hashing failed");
        ServiceError::Internal
    })
}

/// Person input, parsed.
#[derive(Clone)]
pub struct PersonInput {
    pub name: PersonName,
    pub email: Option<Email>,
}

pub async fn create_person(
    store: &Store,
    principal: &Principal,
    site: SiteId,
    input: PersonInput,
) -> ServiceResult<Person> {
    const ACTION: &str = "createPerson";
    recorded(store, principal, Mode::Apply, ACTION, authorize(principal, Action::ManageStaff(site), "site")).await?;
    let mut tx = store.begin().await?;
    let decided = create_person_in(&mut tx, site, &input).await;
    let target = target_of(&decided, |p: &Person| Target::person(p.id), Target::none());
    let Ok(person) = finish(tx, principal, Some(site), ACTION, &target, decided).await?;
    Ok(person)
}

async fn create_person_in(
    tx: &mut Tx,
    site: SiteId,
    input: &PersonInput,
) -> ServiceResult<Outcome<Person, Infallible>> {
    if !tx.site_exists(site).await? {
        return Err(ServiceError::NotFound("site"));
    }
    Ok(Ok(tx.insert_person(site, &input.name, input.email.as_ref(), now()).await?))
}

refusals! {
    /// What `updatePerson` may refuse.
    pub enum UpdatePersonRefusal { PersonDeleted }
}

pub async fn update_person(
    store: &Store,
    principal: &Principal,
    id: PersonId,
    input: PersonInput,
) -> ServiceResult<Outcome<Person, UpdatePersonRefusal>> {
    const ACTION: &str = "updatePerson";
    let site = managed_site(store, principal, Owned::Person(id), "person").await;
    let site = recorded(store, principal, Mode::Apply, ACTION, site).await?;
    let mut tx = store.begin().await?;
    let decided = update_person_in(&mut tx, site, id, input).await;
    finish(tx, principal, Some(site), ACTION, &Target::person(id), decided).await
}

async fn update_person_in(
    tx: &mut Tx,
    site: SiteId,
    id: PersonId,
    input: PersonInput,
) -> ServiceResult<Outcome<Person, UpdatePersonRefusal>> {
    let person = tx.lock_person(site, id).await?.ok_or(ServiceError::NotFound("person"))?;
    if person.deleted_at.is_some() {
        return Ok(Err(PersonDeleted { person: id }.into()));
    }
    tx.update_person(id, &input.name, input.email.as_ref()).await?;
    Ok(Ok(Person {
        name: input.name.as_str().to_string(),
        email: input.email.map(|e| e.as_str().to_string()),
        ..person
    }))
}

/// Frees the licenses of a live login inside `tx` and marks it deleted (R6).
async fn remove_login(tx: &mut Tx, site: SiteId, login: &Login, with_person: bool) -> ServiceResult<()> {
    if login.occupying {
        tx.join_profile(site, login.profile_id, -1).await?;
        let modules: Vec<ModuleId> =
            tx.profile_module_ids(&[login.profile_id]).await?.into_iter().map(|(_, m)| m).collect();
        let deltas = module_deltas(&modules, &[], 1);
        // Freeing never fails for capacity (R6).
        apply_deltas(tx, site, &deltas).await?.map_err(|_| ServiceError::Internal)?;
    }
    tx.mark_login_deleted(login.id, now(), with_person).await?;
    tx.release_username(&login.username.to_ascii_lowercase()).await?;
    tx.revoke_login_sessions(login.id, now()).await?;
    Ok(())
}

/// A person after their login (or they themselves) was deleted, with the
/// login that went (as it was), so the answer can name what changed.
#[derive(Debug, Clone)]
pub struct Removed {
    pub person: Person,
    pub login: Option<Login>,
}

/// A login after a change, with the profile it left when it moved (R2: that
/// profile's user count changed too).
#[derive(Debug, Clone)]
pub struct LoginUpdated {
    pub login: Login,
    pub left_profile: Option<ProfileId>,
}

refusals! {
    /// What `deletePerson` may refuse.
    pub enum DeletePersonRefusal { PersonHasResponsibilities, PersonDeleted }
}

/// Deletes a person (a tombstone, R7) and their login, freeing its licenses
/// (R6). A person who still holds responsibilities is refused with the list,
/// unless `hand_over_to` names a live colleague of the same site, who gets
/// them in the same transaction (R12).
pub async fn delete_person(
    store: &Store,
    principal: &Principal,
    id: PersonId,
    hand_over_to: Option<PersonId>,
) -> ServiceResult<Outcome<Removed, DeletePersonRefusal>> {
    const ACTION: &str = "deletePerson";
    let site = managed_site(store, principal, Owned::Person(id), "person").await;
    let site = recorded(store, principal, Mode::Apply, ACTION, site).await?;
    if is_self(principal, None, Some(id)) {
        return Err(ServiceError::Forbidden(NO_SELF_REMOVAL));
    }
    if hand_over_to == Some(id) {
        return Err(
            InvalidInput::new("handOverTo", "responsibilities cannot be handed to the person being deleted").into()
        );
    }
    let mut tx = store.begin().await?;
    let decided = delete_person_in(&mut tx, site, id, hand_over_to).await;
    finish(tx, principal, Some(site), ACTION, &Target::person(id), decided).await
}

async fn delete_person_in(
    tx: &mut Tx,
    site: SiteId,
    id: PersonId,
    hand_over_to: Option<PersonId>,
) -> ServiceResult<Outcome<Removed, DeletePersonRefusal>> {
    // Lock order: people by id, then the login.
    let mut ids = vec![id];
    ids.extend(hand_over_to);
    ids.sort();
    let mut person = None;
    let mut heir = None;
    for pid in ids {
        let locked = tx.lock_person(site, pid).await?;
        if pid == id {
            person = locked;
        } else {
            heir = Some(locked.ok_or(ServiceError::NotFound("person to hand over to"))?);
        }
    }
    let person = person.ok_or(ServiceError::NotFound("person"))?;
    if person.deleted_at.is_some() {
        return Err(ServiceError::NotFound("person"));
    }
    let held = tx.responsibilities_of_person(id).await?;
    if !held.is_empty() {
        match heir {
            None => return Ok(Err(PersonHasResponsibilities { responsibilities: held }.into())),
            Some(heir) if heir.deleted_at.is_some() => return Ok(Err(PersonDeleted { person: heir.id }.into())),
            Some(heir) => {
                tx.hand_over_responsibilities(id, heir.id).await?;
            }
        }
    }
    let login = tx.lock_login_of_person(site, id).await?;
    if let Some(login) = &login {
        remove_login(tx, site, login, true).await?;
    }
    let at = now();
    tx.mark_person_deleted(id, at).await?;
    Ok(Ok(Removed { person: Person { deleted_at: Some(at), ..person }, login }))
}

refusals! {
    /// What `restorePerson` may refuse.
    pub enum RestorePersonRefusal { LicenseLimitExceeded, UsernameTaken }
}

/// Restores a deleted person and the login deleted with them; the login's
/// licenses are consumed again, so R4 applies, and its username must still
/// be free.
pub async fn restore_person(
    store: &Store,
    principal: &Principal,
    id: PersonId,
    mode: Mode,
) -> ServiceResult<Decided<Person, RestorePersonRefusal>> {
    const ACTION: &str = "restorePerson";
    let site = managed_site(store, principal, Owned::Person(id), "person").await;
    let site = recorded(store, principal, mode, ACTION, site).await?;
    let mut tx = store.begin().await?;
    let decided = restore_person_in(&mut tx, site, id).await;
    finish_with(tx, mode, principal, Some(site), ACTION, &Target::person(id), decided).await
}

async fn restore_person_in(
    tx: &mut Tx,
    site: SiteId,
    id: PersonId,
) -> ServiceResult<Outcome<Person, RestorePersonRefusal>> {
    let person = tx.lock_person(site, id).await?.ok_or(ServiceError::NotFound("person"))?;
    if person.deleted_at.is_none() {
        return Err(InvalidInput::new("id", "this person is not deleted").into());
    }
    if let Some(login) = tx.lock_login_deleted_with(site, id).await?
        && let Err(refusal) = bring_back_login(tx, site, &login).await?
    {
        return Ok(Err(refusal));
    }
    tx.mark_person_restored(id).await?;
    Ok(Ok(Person { deleted_at: None, ..person }))
}

/// Brings a deleted login back: its username, its place on the profile and
/// its licenses (R4).
async fn bring_back_login<R>(tx: &mut Tx, site: SiteId, login: &Login) -> ServiceResult<Outcome<(), R>>
where
    R: From<UsernameTaken> + From<LicenseLimitExceeded>,
{
    if !tx.reserve_username(&login.username.to_ascii_lowercase(), "LOGIN").await? {
        return Ok(Err(UsernameTaken { username: login.username.clone() }.into()));
    }
    if !tx.join_profile(site, login.profile_id, 1).await? {
        return Err(ServiceError::NotFound("profile"));
    }
    let modules: Vec<ModuleId> =
        tx.profile_module_ids(&[login.profile_id]).await?.into_iter().map(|(_, m)| m).collect();
    if let Err(refusal) = apply_deltas(tx, site, &module_deltas(&[], &modules, 1)).await? {
        return Ok(Err(refusal.into()));
    }
    tx.mark_login_restored(login.id).await?;
    Ok(Ok(()))
}

refusals! {
    /// What `restoreLogin` may refuse.
    pub enum RestoreLoginRefusal { LicenseLimitExceeded, UsernameTaken, PersonAlreadyHasLogin, PersonDeleted }
}

/// Restores a deleted login of a live person who has no other login (R4 applies).
pub async fn restore_login(
    store: &Store,
    principal: &Principal,
    id: LoginId,
    mode: Mode,
) -> ServiceResult<Decided<Login, RestoreLoginRefusal>> {
    const ACTION: &str = "restoreLogin";
    let found = restorable_login(store, principal, id).await;
    let (site, person_id) = recorded(store, principal, mode, ACTION, found).await?;
    let mut tx = store.begin().await?;
    let decided = restore_login_in(&mut tx, site, person_id, id).await;
    let target = Target::new(format!("login:{}", id.0)).of_person(person_id);
    finish_with(tx, mode, principal, Some(site), ACTION, &target, decided).await
}

/// The site and person of login `id` (deleted or not), when `principal` manages its site.
async fn restorable_login(store: &Store, principal: &Principal, id: LoginId) -> ServiceResult<(SiteId, PersonId)> {
    let login = store.last_login_by_id(id).await?.ok_or(ServiceError::NotFound("login"))?;
    authorize(principal, Action::ManageStaff(login.site_id), "login")?;
    Ok((login.site_id, login.person_id))
}

async fn restore_login_in(
    tx: &mut Tx,
    site: SiteId,
    person_id: PersonId,
    id: LoginId,
) -> ServiceResult<Outcome<Login, RestoreLoginRefusal>> {
    let person = tx.lock_person(site, person_id).await?.ok_or(ServiceError::NotFound("person"))?;
    if person.deleted_at.is_some() {
        return Ok(Err(PersonDeleted { person: person_id }.into()));
    }
    if tx.lock_login_of_person(site, person_id).await?.is_some() {
        return Ok(Err(PersonAlreadyHasLogin { person: person_id }.into()));
    }
    let login = tx.lock_deleted_login(site, id).await?.ok_or(ServiceError::NotFound("deleted login"))?;
    if let Err(refusal) = bring_back_login(tx, site, &login).await? {
        return Ok(Err(refusal));
    }
    Ok(Ok(Login { occupying: true, ..login }))
}

refusals! {
    /// What `assignResponsibility` may refuse.
    pub enum AssignResponsibilityRefusal { PersonDeleted }
}

/// Gives a person a responsibility (a form, a document folder) (R12).
pub async fn assign_responsibility(
    store: &Store,
    principal: &Principal,
    person: PersonId,
    kind: ResponsibilityKind,
    name: ResponsibilityName,
) -> ServiceResult<Outcome<ResponsibilityId, AssignResponsibilityRefusal>> {
    const ACTION: &str = "assignResponsibility";
    let site = managed_site(store, principal, Owned::Person(person), "person").await;
    let site = recorded(store, principal, Mode::Apply, ACTION, site).await?;
    let mut tx = store.begin().await?;
    let decided = assign_responsibility_in(&mut tx, site, person, kind, name).await;
    let target = target_of(
        &decided,
        |r: &ResponsibilityId| Target::new(format!("responsibility:{}", r.0)).of_person(person),
        Target::person(person),
    );
    finish(tx, principal, Some(site), ACTION, &target, decided).await
}

async fn assign_responsibility_in(
    tx: &mut Tx,
    site: SiteId,
    person: PersonId,
    kind: ResponsibilityKind,
    name: ResponsibilityName,
) -> ServiceResult<Outcome<ResponsibilityId, AssignResponsibilityRefusal>> {
    let holder = tx.lock_person(site, person).await?.ok_or(ServiceError::NotFound("person"))?;
    if holder.deleted_at.is_some() {
        return Ok(Err(PersonDeleted { person }.into()));
    }
    Ok(Ok(tx.insert_responsibility(site, person, kind.as_str(), name.as_str(), now()).await?))
}

/// Removes a responsibility.
pub async fn remove_responsibility(store: &Store, principal: &Principal, id: ResponsibilityId) -> ServiceResult<()> {
    const ACTION: &str = "removeResponsibility";
    let site = responsibility_site(store, principal, id).await;
    let site = recorded(store, principal, Mode::Apply, ACTION, site).await?;
    let mut tx = store.begin().await?;
    let decided: ServiceResult<Outcome<(), Infallible>> = match tx.delete_responsibility(site, id).await {
        Ok(true) => Ok(Ok(())),
        Ok(false) => Err(ServiceError::NotFound("responsibility")),
        Err(e) => Err(e.into()),
    };
    let target = Target::new(format!("responsibility:{}", id.0));
    let Ok(()) = finish(tx, principal, Some(site), ACTION, &target, decided).await?;
    Ok(())
}

/// The site of responsibility `id`, when `principal` manages it.
async fn responsibility_site(store: &Store, principal: &Principal, id: ResponsibilityId) -> ServiceResult<SiteId> {
    let site = store.site_of_responsibility(id).await?.ok_or(ServiceError::NotFound("responsibility"))?;
    authorize(principal, Action::ManageStaff(site), "responsibility")?;
    Ok(site)
}

/// A new login, parsed.
#[derive(Clone)]
pub struct LoginInput {
    pub person: PersonId,
    pub username: Username,
    pub password: Password,
    pub profile: ProfileId,
    pub valid_until: Option<Date>,
    pub is_admin: bool,
}

refusals! {
    /// What `createLogin` may refuse.
    pub enum CreateLoginRefusal { LicenseLimitExceeded, UsernameTaken, PersonAlreadyHasLogin, PersonDeleted }
}

/// Creates a login: the person becomes a user and occupies one license per
/// module of the profile (R1, R2), if the pools have room (R4).
pub async fn create_login(
    store: &Store,
    principal: &Principal,
    input: LoginInput,
    mode: Mode,
) -> ServiceResult<Decided<Login, CreateLoginRefusal>> {
    const ACTION: &str = "createLogin";
    let site = managed_site(store, principal, Owned::Person(input.person), "person").await;
    let site = recorded(store, principal, mode, ACTION, site).await?;
    // A preview writes nothing, so it needs no real hash.
    let password_hash = match mode {
        Mode::Apply => hash_password(&input.password).await?,
        Mode::Preview => String::new(),
    };
    let mut tx = store.begin().await?;
    let decided = create_login_in(&mut tx, site, &input, &password_hash).await;
    let person = Target::person(input.person);
    let target =
        target_of(&decided, |l: &Login| Target::new(format!("login:{}", l.id.0)).of_person(l.person_id), person);
    finish_with(tx, mode, principal, Some(site), ACTION, &target, decided).await
}

async fn create_login_in(
    tx: &mut Tx,
    site: SiteId,
    input: &LoginInput,
    password_hash: &str,
) -> ServiceResult<Outcome<Login, CreateLoginRefusal>> {
    let person = tx.lock_person(site, input.person).await?.ok_or(ServiceError::NotFound("person"))?;
    if person.deleted_at.is_some() {
        return Ok(Err(PersonDeleted { person: person.id }.into()));
    }
    if tx.lock_login_of_person(site, person.id).await?.is_some() {
        return Ok(Err(PersonAlreadyHasLogin { person: person.id }.into()));
    }
    if !tx.join_profile(site, input.profile, 1).await? {
        return Err(ServiceError::NotFound("profile"));
    }
    let modules: Vec<ModuleId> = tx.profile_module_ids(&[input.profile]).await?.into_iter().map(|(_, m)| m).collect();
    if let Err(refusal) = apply_deltas(tx, site, &module_deltas(&[], &modules, 1)).await? {
        return Ok(Err(refusal.into()));
    }
    if !tx.reserve_username(&input.username.key(), "LOGIN").await? {
        return Ok(Err(UsernameTaken { username: input.username.as_str().to_string() }.into()));
    }
    let login = tx
        .insert_login(NewLogin {
            site,
            person: person.id,
            username: &input.username,
            password_hash,
            valid_until: input.valid_until,
            profile: input.profile,
            is_admin: input.is_admin,
            now: now(),
        })
        .await?;
    Ok(Ok(login))
}

/// Moves a locked login to `profile`, moving its licenses (R2, R4, R6, R8).
/// The login's profile and `profile` keep their modules until commit: the
/// transaction shares their locks, here or, when `shared`, with the login's
/// ([`Tx::lock_login_to_move`]). Moves share them with each other, so they
/// never wait on a profile, and count their users as rows of their own.
async fn move_login(
    tx: &mut Tx,
    site: SiteId,
    login: &Login,
    profile: ProfileId,
    shared: bool,
) -> ServiceResult<Outcome<(), LicenseLimitExceeded>> {
    let profiles = [login.profile_id, profile];
    let wanted = if login.profile_id == profile { 1 } else { 2 };
    if !shared && tx.share_profiles(site, &profiles).await? < wanted {
        return Err(ServiceError::NotFound("profile"));
    }
    if login.profile_id == profile {
        return Ok(Ok(()));
    }
    let users = i64::from(login.occupying);
    // The profiles' modules come with the repointing, read after the locks, so
    // they stay as read until commit. The pools are the contended rows: touch
    // them last, so their locks are held for as short a time as possible (a
    // refusal rolls all of it back).
    let (from, to) = tx.repoint_login(login.id, login.profile_id, profile).await?;
    if users != 0 {
        tx.add_profile_users(site, &[(login.profile_id, -users), (profile, users)]).await?;
    }
    apply_deltas(tx, site, &module_deltas(&from, &to, users)).await
}

/// Changes of a login, parsed; `None` leaves a field as it is.
#[derive(Clone, Default)]
pub struct LoginChanges {
    pub username: Option<Username>,
    pub password: Option<Password>,
    pub profile: Option<ProfileId>,
    /// `Some(None)` clears the date (valid indefinitely).
    pub valid_until: Option<Option<Date>>,
    pub is_admin: Option<bool>,
}

refusals! {
    /// What `updateLogin` and `changeLoginProfile` may refuse.
    pub enum UpdateLoginRefusal { LicenseLimitExceeded, UsernameTaken }
}

/// Changes a login; a profile change goes through the same R4 check as any
/// consuming change. `action` is the mutation that asked (`updateLogin`,
/// `changeLoginProfile`), as the audit trail records it.
pub async fn update_login(
    store: &Store,
    principal: &Principal,
    id: LoginId,
    changes: LoginChanges,
    mode: Mode,
    action: &'static str,
) -> ServiceResult<Decided<LoginUpdated, UpdateLoginRefusal>> {
    let site = managed_site(store, principal, Owned::Login(id), "login").await;
    let site = recorded(store, principal, mode, action, site).await?;
    if changes.is_admin == Some(false) && is_self(principal, Some(id), None) {
        return Err(ServiceError::Forbidden(NO_SELF_REMOVAL));
    }
    let password_hash = match (&changes.password, mode) {
        (Some(p), Mode::Apply) => Some(hash_password(p).await?),
        (Some(_), Mode::Preview) => Some(String::new()),
        (None, _) => None,
    };
    let target = Target::new(format!("login:{}", id.0));
    if let Some(profile) = changes.profile
        && let Some((refusal, pools)) = move_refused_at_once(store, site, id, profile).await?
    {
        if mode == Mode::Apply {
            audit_refused(store, principal, Some(site), action, &target, &refusal, &pools).await?;
        }
        return Ok(Decided { outcome: Err(refusal.into()), site: Some(site), pools });
    }
    let mut tx = store.begin().await?;
    let decided = update_login_in(&mut tx, site, id, &changes, password_hash.as_deref()).await;
    let target = target_of(&decided, |u: &LoginUpdated| target.clone().of_person(u.login.person_id), target.clone());
    finish_with(tx, mode, principal, Some(site), action, &target, decided).await
}

/// A profile change that one lock-free read already shows cannot fit (R4)
/// is refused on that read: the refusal is true of that moment, and a
/// refusal writes nothing, so it needs no lock. When the pools are full this
/// saves the transaction and its locks (the common case under load). Every
/// other case, including any doubt (no such login, a profile of another
/// site), goes through the locked transaction, which decides for itself.
async fn move_refused_at_once(
    store: &Store,
    site: SiteId,
    login: LoginId,
    profile: ProfileId,
) -> ServiceResult<Option<(LicenseLimitExceeded, Vec<PoolChange>)>> {
    let Some(s) = store.move_snapshot(site, login, profile).await? else { return Ok(None) };
    let deltas = module_deltas(&s.current, &s.target, i64::from(s.occupying));
    if policy::shortages(&deltas, &s.pools).is_empty() {
        return Ok(None);
    }
    // The same journal as the locked path: the changes that fit, then those that do not.
    let fits = |&(m, d): &(ModuleId, i64)| s.pools.iter().any(|p| p.module_id == m && p.used + d <= p.total);
    let short: Vec<(ModuleId, i64)> = deltas.iter().copied().filter(|d| !fits(d)).collect();
    let (refusal, notes) = shortage_refusal(&short, &s.pools, &s.modules, s.self_service);
    let mut pools: Vec<PoolChange> =
        deltas.iter().filter(|d| fits(d)).filter_map(|&(m, d)| usage_change(&s.pools, m, d)).collect();
    pools.extend(notes);
    Ok(Some((refusal, pools)))
}

async fn update_login_in(
    tx: &mut Tx,
    site: SiteId,
    id: LoginId,
    changes: &LoginChanges,
    password_hash: Option<&str>,
) -> ServiceResult<Outcome<LoginUpdated, UpdateLoginRefusal>> {
    let moving = match changes.profile {
        Some(profile) => tx.lock_login_to_move(site, id, profile).await?,
        None => None,
    };
    let shared = moving.is_some();
    let mut login = match moving {
        Some(login) => login,
        None => tx.lock_login(site, id).await?.ok_or(ServiceError::NotFound("login"))?,
    };
    let before = login.profile_id;
    if let Some(profile) = changes.profile {
        if let Err(refusal) = move_login(tx, site, &login, profile, shared).await? {
            return Ok(Err(refusal.into()));
        }
        login.profile_id = profile;
    }
    if let Some(username) = &changes.username {
        if username.key() != login.username.to_ascii_lowercase() {
            if !tx.reserve_username(&username.key(), "LOGIN").await? {
                return Ok(Err(UsernameTaken { username: username.as_str().to_string() }.into()));
            }
            tx.release_username(&login.username.to_ascii_lowercase()).await?;
        }
        tx.set_login_username(id, username).await?;
        login.username = username.as_str().to_string();
    }
    if let Some(hash) = password_hash {
        tx.set_login_password(id, hash).await?;
        tx.revoke_login_sessions(id, now()).await?;
    }
    if let Some(valid_until) = changes.valid_until {
        tx.set_login_valid_until(id, valid_until).await?;
        login.valid_until = valid_until;
    }
    if let Some(is_admin) = changes.is_admin {
        tx.set_login_admin(id, is_admin).await?;
        login.is_admin = is_admin;
    }
    let left_profile = (login.profile_id != before).then_some(before);
    Ok(Ok(LoginUpdated { login, left_profile }))
}

/// Deletes a login; the person stays as staff and the licenses are freed (R6).
pub async fn delete_login(store: &Store, principal: &Principal, id: LoginId) -> ServiceResult<Removed> {
    const ACTION: &str = "deleteLogin";
    let site = managed_site(store, principal, Owned::Login(id), "login").await;
    let site = recorded(store, principal, Mode::Apply, ACTION, site).await?;
    if is_self(principal, Some(id), None) {
        return Err(ServiceError::Forbidden(NO_SELF_REMOVAL));
    }
    // Person before login: the lock order every transaction keeps. A login
    // of another site is answered like one never issued (R13): "no such login".
    let person_id = store.logins_by_ids(&[id]).await?.first().filter(|l| l.site_id == site).map(|l| l.person_id);
    let person_id =
        recorded(store, principal, Mode::Apply, ACTION, person_id.ok_or(ServiceError::NotFound("login"))).await?;
    let mut tx = store.begin().await?;
    let decided = delete_login_in(&mut tx, site, id, person_id).await;
    let target = Target::new(format!("login:{}", id.0)).of_person(person_id);
    let Ok(removed) = finish(tx, principal, Some(site), ACTION, &target, decided).await?;
    Ok(removed)
}

async fn delete_login_in(
    tx: &mut Tx,
    site: SiteId,
    id: LoginId,
    person_id: PersonId,
) -> ServiceResult<Outcome<Removed, Infallible>> {
    // The login is gone (or moved to another person) since it was looked up: no such login.
    let person = tx.lock_person(site, person_id).await?.ok_or(ServiceError::NotFound("login"))?;
    let login =
        tx.lock_login(site, id).await?.filter(|l| l.person_id == person_id).ok_or(ServiceError::NotFound("login"))?;
    remove_login(tx, site, &login, false).await?;
    Ok(Ok(Removed { person, login: Some(login) }))
}

/// A new profile, parsed.
#[derive(Clone)]
pub struct ProfileInput {
    pub name: ProfileName,
    pub modules: Vec<ModuleCode>,
}

refusals! {
    /// What `createProfile` may refuse.
    pub enum CreateProfileRefusal { ProfileNameTaken }
}

pub async fn create_profile(
    store: &Store,
    principal: &Principal,
    site: SiteId,
    input: ProfileInput,
) -> ServiceResult<Outcome<ProfileId, CreateProfileRefusal>> {
    const ACTION: &str = "createProfile";
    recorded(store, principal, Mode::Apply, ACTION, authorize(principal, Action::ManageStaff(site), "site")).await?;
    let modules = resolve_modules(store, &input.modules).await?;
    let mut tx = store.begin().await?;
    let decided = create_profile_in(&mut tx, site, &input, &modules).await;
    let target = target_of(&decided, |p: &ProfileId| Target::new(format!("profile:{}", p.0)), Target::none());
    finish(tx, principal, Some(site), ACTION, &target, decided).await
}

async fn create_profile_in(
    tx: &mut Tx,
    site: SiteId,
    input: &ProfileInput,
    modules: &[Module],
) -> ServiceResult<Outcome<ProfileId, CreateProfileRefusal>> {
    if !tx.site_exists(site).await? {
        return Err(ServiceError::NotFound("site"));
    }
    let Some(id) = tx.insert_profile(site, &input.name, now()).await? else {
        return Ok(Err(ProfileNameTaken { name: input.name.as_str().to_string() }.into()));
    };
    for m in modules {
        tx.add_profile_module(site, id, m.id).await?;
    }
    Ok(Ok(id))
}

refusals! {
    /// What `updateProfile` may refuse.
    pub enum UpdateProfileRefusal { LicenseLimitExceeded, ProfileNameTaken }
}

/// Renames a profile and/or sets its modules. Adding a module needs one
/// license per user of the profile, all or nothing (R4); removing one frees them.
pub async fn update_profile(
    store: &Store,
    principal: &Principal,
    id: ProfileId,
    name: Option<ProfileName>,
    modules: Option<Vec<ModuleCode>>,
    mode: Mode,
) -> ServiceResult<Decided<ProfileId, UpdateProfileRefusal>> {
    const ACTION: &str = "updateProfile";
    let site = managed_site(store, principal, Owned::Profile(id), "profile").await;
    let site = recorded(store, principal, mode, ACTION, site).await?;
    let modules = match modules {
        Some(codes) => Some(resolve_modules(store, &codes).await?),
        None => None,
    };
    let mut tx = store.begin().await?;
    let decided = update_profile_in(&mut tx, site, id, name, modules).await;
    let target = Target::new(format!("profile:{}", id.0));
    finish_with(tx, mode, principal, Some(site), ACTION, &target, decided).await
}

async fn update_profile_in(
    tx: &mut Tx,
    site: SiteId,
    id: ProfileId,
    name: Option<ProfileName>,
    modules: Option<Vec<Module>>,
) -> ServiceResult<Outcome<ProfileId, UpdateProfileRefusal>> {
    let profile = tx.lock_profile(site, id).await?.ok_or(ServiceError::NotFound("profile"))?;
    if let Some(modules) = modules {
        let before: Vec<ModuleId> = tx.profile_module_ids(&[id]).await?.into_iter().map(|(_, m)| m).collect();
        let after: Vec<ModuleId> = modules.iter().map(|m| m.id).collect();
        if let Err(refusal) = apply_deltas(tx, site, &module_deltas(&before, &after, profile.user_count)).await? {
            return Ok(Err(refusal.into()));
        }
        for m in after.iter().filter(|m| !before.contains(m)) {
            tx.add_profile_module(site, id, *m).await?;
        }
        for m in before.iter().filter(|m| !after.contains(m)) {
            tx.remove_profile_module(id, *m).await?;
        }
    }
    if let Some(name) = name
        && !tx.rename_profile(id, &name).await?
    {
        return Ok(Err(ProfileNameTaken { name: name.as_str().to_string() }.into()));
    }
    Ok(Ok(id))
}

refusals! {
    /// What `deleteProfile` may refuse.
    pub enum DeleteProfileRefusal { ProfileInUse }
}

/// Deletes a profile that has no users (a decision of `docs/domain.md`).
pub async fn delete_profile(
    store: &Store,
    principal: &Principal,
    id: ProfileId,
) -> ServiceResult<Outcome<ProfileId, DeleteProfileRefusal>> {
    const ACTION: &str = "deleteProfile";
    let site = managed_site(store, principal, Owned::Profile(id), "profile").await;
    let site = recorded(store, principal, Mode::Apply, ACTION, site).await?;
    let mut tx = store.begin().await?;
    let decided = delete_profile_in(&mut tx, site, id).await;
    finish(tx, principal, Some(site), ACTION, &Target::new(format!("profile:{}", id.0)), decided).await
}

async fn delete_profile_in(
    tx: &mut Tx,
    site: SiteId,
    id: ProfileId,
) -> ServiceResult<Outcome<ProfileId, DeleteProfileRefusal>> {
    let profile = tx.lock_profile(site, id).await?.ok_or(ServiceError::NotFound("profile"))?;
    if profile.user_count > 0 {
        return Ok(Err(ProfileInUse { profile: id, user_count: profile.user_count, deleted_user_count: 0 }.into()));
    }
    let referencing = tx.logins_referencing_profile(id).await?;
    if referencing > 0 {
        return Ok(Err(ProfileInUse { profile: id, user_count: 0, deleted_user_count: referencing }.into()));
    }
    tx.delete_profile(id).await?;
    Ok(Ok(id))
}
