//! Sites, agreements and pool totals: the vendor operator's side (R3, R5).

use super::*;
use crate::store::NewLogin;

/// A new site, parsed.
#[derive(Clone)]
pub struct SiteInput {
    pub name: SiteName,
    pub agreement_name: AgreementName,
    pub self_service: bool,
    pub totals: Vec<(ModuleCode, LicenseTotal)>,
    pub admin_name: PersonName,
    pub admin_email: Option<Email>,
    pub admin_username: Username,
    pub admin_password: Password,
}

/// What creating a site made.
pub struct SiteCreated {
    pub site: SiteId,
    pub administrator: LoginId,
}

/// The profile every new site starts with: no modules, so its users (the
/// first administrator among them) occupy no license (R8).
pub const PARKING_PROFILE: &str = "No modules";

refusals! {
    /// What `createSite` may refuse.
    pub enum CreateSiteRefusal { SiteNameTaken, UsernameTaken }
}

/// Creates a site with its agreement, a pool for every module (R3) and its
/// first administrator on the module-less profile.
pub async fn create_site(
    store: &Store,
    principal: &Principal,
    input: SiteInput,
) -> ServiceResult<Outcome<SiteCreated, CreateSiteRefusal>> {
    authorize(principal, Action::CreateSite, "site")?;
    let modules = store.modules().await?;
    for (i, (code, _)) in input.totals.iter().enumerate() {
        if !modules.iter().any(|m| m.code == code.as_str()) {
            return Err(InvalidInput::new("pools", format!("unknown module `{}`", code.as_str())).into());
        }
        // One line per module: a second one would be ignored, and what the
        // caller meant by it is anyone's guess.
        if input.totals[..i].iter().any(|(earlier, _)| earlier.as_str() == code.as_str()) {
            return Err(InvalidInput::new(
                "pools",
                format!("module `{}` appears more than once; give each module one total", code.as_str()),
            )
            .into());
        }
    }
    let password_hash = staff::hash_password(&input.admin_password).await?;
    let mut tx = store.begin().await?;
    let decided = create_site_in(&mut tx, &modules, &input, &password_hash).await;
    let site = match &decided {
        Ok(Ok(created)) => Some(created.site),
        _ => None,
    };
    let target = target_of(&decided, |c: &SiteCreated| Target::new(format!("site:{}", c.site.0)), Target::none());
    finish(tx, principal, site, "createSite", &target, decided).await
}

async fn create_site_in(
    tx: &mut Tx,
    modules: &[Module],
    input: &SiteInput,
    password_hash: &str,
) -> ServiceResult<Outcome<SiteCreated, CreateSiteRefusal>> {
    let at = now();
    let Some(site) = tx.insert_site(&input.name, at).await? else {
        return Ok(Err(SiteNameTaken { name: input.name.as_str().to_string() }.into()));
    };
    tx.insert_agreement(site, &input.agreement_name, input.self_service, at).await?;
    for module in modules {
        let total = input
            .totals
            .iter()
            .find(|(code, _)| code.as_str() == module.code)
            .map(|(_, t)| *t)
            .unwrap_or(LicenseTotal::parse(0, "total")?);
        tx.insert_pool(site, module.id, total).await?;
    }
    let parking = ProfileName::parse(PARKING_PROFILE)?;
    let profile = tx.insert_profile(site, &parking, at).await?.ok_or(ServiceError::Internal)?;
    let person = tx.insert_person(site, &input.admin_name, input.admin_email.as_ref(), at).await?;
    if !tx.reserve_username(&input.admin_username.key(), "LOGIN").await? {
        return Ok(Err(UsernameTaken { username: input.admin_username.as_str().to_string() }.into()));
    }
    tx.join_profile(site, profile, 1).await?;
    let login = tx
        .insert_login(NewLogin {
            site,
            person: person.id,
            username: &input.admin_username,
            password_hash,
            valid_until: None,
            profile,
            is_admin: true,
            now: at,
        })
        .await?;
    Ok(Ok(SiteCreated { site, administrator: login.id }))
}

refusals! {
    /// What `setPoolTotal` may refuse.
    pub enum SetPoolTotalRefusal { PoolBelowUsage }
}

/// Sets a pool's total directly (operators). Refused below usage (R5).
pub async fn set_pool_total(
    store: &Store,
    principal: &Principal,
    site: SiteId,
    module: ModuleCode,
    total: LicenseTotal,
) -> ServiceResult<Outcome<Pool, SetPoolTotalRefusal>> {
    const ACTION: &str = "setPoolTotal";
    recorded(store, principal, Mode::Apply, ACTION, authorize(principal, Action::SetPoolTotal(site), "site")).await?;
    let module = store.module_by_code(&module).await?.ok_or_else(|| {
        ServiceError::Invalid(InvalidInput::new("module", format!("unknown module `{}`", module.as_str())))
    })?;
    let mut tx = store.begin().await?;
    let target = Target::new(format!("pool:{}:{}", site.0, module.id.0));
    let decided = set_pool_total_in(&mut tx, site, module, total).await;
    finish(tx, principal, Some(site), ACTION, &target, decided).await
}

async fn set_pool_total_in(
    tx: &mut Tx,
    site: SiteId,
    module: Module,
    total: LicenseTotal,
) -> ServiceResult<Outcome<Pool, SetPoolTotalRefusal>> {
    match tx.set_pool_total(site, module.id, total).await? {
        Ok(None) => Err(ServiceError::NotFound("license pool")),
        // Its version is one more: the update that set the total counted it.
        Ok(Some(before)) => Ok(Ok(Pool { total: total.get(), version: before.version + 1, ..before })),
        Err(pool) => {
            // The numbers of the refusal, for its audit event: the pool as it
            // is, and the total asked for.
            tx.note(PoolChange::new_total(&pool, total.get()));
            Ok(Err(PoolBelowUsage {
                requested_total: total.get(),
                used: pool.used,
                users_to_remove: policy::users_to_remove(&pool, total.get()).unwrap_or(0),
                module,
            }
            .into()))
        }
    }
}
