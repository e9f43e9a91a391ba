//! First start: the vendor operator account, and the optional demo site;
//! and the benchmark site of `license-gateway generate`.

use base64::Engine;

use super::sites::{SiteInput, create_site};
use super::staff::{LoginInput, PersonInput, ProfileInput, create_login, create_person, create_profile, hash_password};
use super::*;
use crate::dataset::{BENCH_ADMIN, BENCH_SITE, Dataset, DatasetSpec};

/// A random password of 20 URL-safe characters (120 random bits) that the
/// password policy accepts: drawn again in the (vanishingly rare) case that
/// chance spelled something easy to guess.
pub fn random_password() -> String {
    loop {
        let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 15]>());
        if Password::parse(&password).is_ok() {
            return password;
        }
    }
}

/// Creates the vendor operator `username` when the installation has none;
/// returns its one-time password. Safe with several processes starting at
/// once: the username registry lets only one of them create it.
pub async fn ensure_operator(store: &Store, username: &str) -> ServiceResult<Option<String>> {
    if store.operator_count().await? > 0 {
        return Ok(None);
    }
    let username = Username::parse(username)?;
    let password = random_password();
    let hash = hash_password(&Password::parse(&password)?).await?;
    let mut tx = store.begin().await?;
    if tx.operator_count().await? > 0 || !tx.insert_operator(&username, &hash, now()).await? {
        return Ok(None);
    }
    tx.commit().await?;
    Ok(Some(password))
}

/// How to sign in to a freshly made demo site.
pub struct DemoCredentials {
    pub admin_username: String,
    pub admin_password: String,
}

pub const DEMO_SITE: &str = "Demo site";

/// Creates the demo site (pools, one profile per module combination, a few
/// people, an administrator) unless it exists; returns the credentials once.
pub async fn ensure_demo(store: &Store) -> ServiceResult<Option<DemoCredentials>> {
    // The demo is made with the operator's powers, through the same services.
    let operator = Principal::Operator { id: OperatorId(0), username: "demo-setup".into() };
    let admin_password = random_password();
    let input = SiteInput {
        name: SiteName::parse(DEMO_SITE)?,
        agreement_name: AgreementName::parse("Demo agreement")?,
        self_service: true,
        totals: vec![
            (ModuleCode::parse("CASE")?, LicenseTotal::parse(5, "total")?),
            (ModuleCode::parse("DOCUMENT")?, LicenseTotal::parse(3, "total")?),
        ],
        admin_name: PersonName::parse("Ada Admin")?,
        admin_email: Some(Email::parse("ada@example.org")?),
        admin_username: Username::parse("admin")?,
        admin_password: Password::parse(&admin_password)?,
    };
    let created = match create_site(store, &operator, input).await? {
        Ok(created) => created,
        Err(_) => return Ok(None),
    };
    let site = created.site;
    let mut profiles = Vec::new();
    for (name, codes) in
        [("Case", vec!["CASE"]), ("Document", vec!["DOCUMENT"]), ("Case and Document", vec!["CASE", "DOCUMENT"])]
    {
        let modules = codes.iter().map(|c| ModuleCode::parse(c)).collect::<Result<_, _>>()?;
        let input = ProfileInput { name: ProfileName::parse(name)?, modules };
        if let Ok(id) = create_profile(store, &operator, site, input).await? {
            profiles.push(id);
        }
    }
    let people = [
        ("Bo Berg", Some(0usize)),
        ("Cecilia Carlsson", Some(1)),
        ("David Dahl", Some(2)),
        ("Eva Ek", None),
        ("Filip Falk", None),
    ];
    for (i, (name, profile)) in people.into_iter().enumerate() {
        let person =
            create_person(store, &operator, site, PersonInput { name: PersonName::parse(name)?, email: None }).await?;
        if let Some(p) = profile.and_then(|p| profiles.get(p)) {
            let input = LoginInput {
                person: person.id,
                username: Username::parse(&format!("user{}", i + 1))?,
                password: Password::parse(&random_password())?,
                profile: *p,
                valid_until: None,
                is_admin: false,
            };
            let _ = create_login(store, &operator, input, Mode::Apply).await?;
        }
    }
    Ok(Some(DemoCredentials { admin_username: "admin".into(), admin_password }))
}

/// The benchmark site as generated, with its administrator's password.
pub struct BenchSite {
    pub dataset: Dataset,
    pub admin_username: String,
    pub admin_password: String,
}

/// Creates (or replaces) the benchmark site [`BENCH_SITE`] with `people`
/// people and an administrator [`BENCH_ADMIN`] with `admin_password`
/// (random when `None`). Every generated login shares the hash of one random
/// password that is thrown away: only the administrator can sign in.
pub async fn generate_bench(
    store: &Store,
    people: i64,
    headroom: i64,
    admin_password: Option<&str>,
) -> ServiceResult<BenchSite> {
    if people < 1 {
        return Err(InvalidInput::new("people", "the number of people must be at least 1").into());
    }
    let headroom = LicenseTotal::parse(headroom, "headroom")?.get();
    let site_name = SiteName::parse(BENCH_SITE)?;
    let admin_username = Username::parse(BENCH_ADMIN)?;
    let admin_password = admin_password.map(str::to_string).unwrap_or_else(random_password);
    let admin_password_hash = hash_password(&Password::parse(&admin_password)?).await?;
    let user_password_hash = hash_password(&Password::parse(&random_password())?).await?;
    let spec = DatasetSpec {
        site_name: &site_name,
        people,
        headroom,
        user_password_hash: &user_password_hash,
        admin_username: &admin_username,
        admin_password_hash: &admin_password_hash,
        now: now(),
    };
    let dataset = crate::dataset::generate(store, &spec).await?.ok_or_else(|| {
        InvalidInput::new("username", format!("the username `{BENCH_ADMIN}` is taken on another site"))
    })?;
    Ok(BenchSite { dataset, admin_username: BENCH_ADMIN.to_string(), admin_password })
}

/// Result of comparing maintained counters with a fresh recount.
pub struct Verification {
    pub report: Vec<String>,
    pub problems: usize,
}

/// Recounts every pool (R2) and profile; reports drift and over-allocation (R4).
pub async fn verify(store: &Store) -> ServiceResult<Verification> {
    let mut report = Vec::new();
    let mut problems = 0;
    for (pool, recount) in store.pool_recount().await? {
        let ok = pool.used == recount && pool.used <= pool.total;
        problems += usize::from(!ok);
        report.push(format!(
            "{} site {} module {}: total {} used {} recount {}",
            if ok { "ok   " } else { "DRIFT" },
            pool.site_id.0,
            pool.module_id.0,
            pool.total,
            pool.used,
            recount
        ));
    }
    for (profile, recount) in store.profile_recount().await? {
        if profile.user_count != recount {
            problems += 1;
            report
                .push(format!("DRIFT profile {}: user_count {} recount {}", profile.id.0, profile.user_count, recount));
        }
    }
    Ok(Verification { report, problems })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_pass_the_password_policy() {
        for _ in 0..100 {
            assert!(Password::parse(&random_password()).is_ok());
        }
    }
}
