//! Sign-in, sign-out and resolving a bearer token to a principal (R9).
//! Tokens are random and opaque; only their SHA-256 is stored.

use base64::Engine;

use super::throttle;
use super::*;
use crate::domain::throttle::{ClientAddress, SignInLimits};
use crate::store::{Credentials, SessionOwner};

/// How long a session lasts unless signed out or revoked.
pub const SESSION_SECONDS: i64 = 12 * 3600;

/// Why signing in did not work: an expected outcome, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInRefusal {
    /// Unknown username or wrong password (never says which).
    InvalidCredentials,
    /// The login's `validUntil` has passed (R9).
    LoginExpired,
    /// Too many failed sign-ins for the username or from the client's
    /// address: no password was checked. Try again after this many seconds.
    Throttled { retry_after_seconds: i64 },
}

/// A new session.
pub struct SignedIn {
    pub token: String,
    pub expires_at: i64,
    pub principal: Principal,
}

/// The hex SHA-256 of a session token: what the database keeps of it.
pub fn token_hash(token: &str) -> String {
    crate::domain::sha256_hex(token)
}

fn verify(password: &str, hash: &str) -> bool {
    use argon2::PasswordVerifier;
    argon2::Argon2::default().verify_password(password.as_bytes(), hash).is_ok()
}

/// A hash of no one's password, verified when the username is unknown so
/// that timing does not tell which usernames exist.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    use argon2::PasswordHasher;
    argon2::Argon2::default().hash_password(&rand::random::<[u8; 16]>()).map(|h| h.to_string()).unwrap_or_default()
});

/// Argon2 takes 19 MiB and a core for as long as it checks or hashes a
/// password. At most one such task per core runs at a time, in arrival order,
/// so a burst of sign-ins waits its turn instead of taking the server's
/// memory (`a_burst_of_sign_ins_is_answered_within_bounded_memory`).
static ARGON2_TURNS: std::sync::LazyLock<std::sync::Arc<tokio::sync::Semaphore>> = std::sync::LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    std::sync::Arc::new(tokio::sync::Semaphore::new(cores))
});

/// Runs `work` (an Argon2 check or hash) on the blocking pool when its turn
/// comes. The turn ends with the work, not with the request: a client that
/// hangs up does not free a turn while its hash still runs.
pub(crate) async fn argon2_turn<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> ServiceResult<T> {
    let turn = ARGON2_TURNS.clone().acquire_owned().await.map_err(|_| ServiceError::Internal)?;
    tokio::task::spawn_blocking(move || {
        let result = work();
        drop(turn);
        result
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "password hashing task failed");
        ServiceError::Internal
    })
}

/// Signs `username` in with `password`, coming from `client`. The attempt
/// is first admitted by the throttle (`limits`; see `service::throttle`),
/// which refuses it without checking the password once the username or the
/// address has had too many failures. Known and unknown usernames cost the
/// same: one Argon2 check each (of a dummy hash for an unknown username).
pub async fn sign_in(
    store: &Store,
    limits: &SignInLimits,
    client: Option<ClientAddress>,
    username: &str,
    password: &str,
) -> ServiceResult<Result<SignedIn, SignInRefusal>> {
    let key = username.trim().to_ascii_lowercase();
    let admitted = match throttle::admit(store, limits, &key, client).await? {
        Ok(admitted) => admitted,
        Err(retry_after_seconds) => return Ok(Err(refused(SignInRefusal::Throttled { retry_after_seconds }))),
    };
    let credentials = store.credentials(&key).await?;
    let (hash, principal, expired) = match &credentials {
        None => (None, None, false),
        Some(Credentials::Operator { id, username, password_hash }) => {
            (Some(password_hash.clone()), Some(Principal::Operator { id: *id, username: username.clone() }), false)
        }
        Some(Credentials::Owner { id, username, name, password_hash }) => (
            Some(password_hash.clone()),
            Some(Principal::Owner { id: *id, username: username.clone(), name: name.clone(), sites: Vec::new() }),
            false,
        ),
        Some(Credentials::Login { login, person_name, password_hash }) => (
            Some(password_hash.clone()),
            Some(Principal::SiteLogin {
                login_id: login.id,
                person_id: login.person_id,
                site_id: login.site_id,
                username: login.username.clone(),
                name: person_name.clone(),
                is_admin: login.is_admin,
            }),
            !login.active_on(Date::today()),
        ),
    };
    let password = password.to_string();
    crate::observability::record_password_check();
    let ok = argon2_turn(move || verify(&password, hash.as_deref().unwrap_or(&DUMMY_HASH))).await?;
    let Some(principal) = principal.filter(|_| ok) else {
        throttle::failed(store, limits, &admitted).await?;
        return Ok(Err(refused(SignInRefusal::InvalidCredentials)));
    };
    if expired {
        // The password was right: it is not a guess, and does not count as one.
        crate::retrying!(store.retries(), settle_right_password(store, &admitted))?;
        return Ok(Err(refused(SignInRefusal::LoginExpired)));
    }
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let at = now();
    let expires_at = at + SESSION_SECONDS;
    crate::retrying!(
        store.retries(),
        start_session(store, &admitted, &token_hash(&token), &principal, at, expires_at)
    )?;
    Ok(Ok(SignedIn { token, expires_at, principal }))
}

/// Inserts the session and settles the throttle for a right password, in one transaction.
async fn start_session(
    store: &Store,
    admitted: &throttle::Admitted,
    hash: &str,
    principal: &Principal,
    at: i64,
    expires_at: i64,
) -> ServiceResult<()> {
    let mut tx = store.begin().await?;
    tx.insert_session(hash, principal, at, expires_at).await?;
    throttle::password_right(&mut tx, admitted).await?;
    tx.commit().await?;
    Ok(())
}

/// Settles the throttle for a right password that opened no session.
async fn settle_right_password(store: &Store, admitted: &throttle::Admitted) -> ServiceResult<()> {
    let mut tx = store.begin().await?;
    throttle::password_right(&mut tx, admitted).await?;
    tx.commit().await?;
    Ok(())
}

/// A failed sign-in, counted (metrics, access line) on its way out.
fn refused(refusal: SignInRefusal) -> SignInRefusal {
    crate::observability::record_sign_in_refusal(refusal);
    refusal
}

/// Ends the session of `token`; false when it was not active.
pub async fn sign_out(store: &Store, token: &str) -> ServiceResult<bool> {
    let mut tx = store.begin().await?;
    let revoked = tx.revoke_session(&token_hash(token), now()).await?;
    tx.commit().await?;
    Ok(revoked)
}

/// The principal of the session whose token hashes to `hash`. A login past
/// its `validUntil` has no working session any more (R9), nor has a deleted one.
/// The guarded audit insert (`store::writes::audit_insert`) checks these
/// same conditions in SQL: a change to one must be made to the other.
async fn authenticate_hash(store: &Store, hash: &str) -> ServiceResult<Principal> {
    Ok(authenticate_until(store, hash).await?.0)
}

/// [`authenticate_hash`], and until when the session works unless it is
/// ended or changed before (unix seconds): its expiry, or the end of its
/// login's last valid day (UTC), whichever comes first.
pub(crate) async fn authenticate_until(store: &Store, hash: &str) -> ServiceResult<(Principal, i64)> {
    const SIGN_IN_AGAIN: &str = "the session is unknown, expired or signed out; sign in again";
    let Some((owner, expires_at)) = store.session_owner(hash, now()).await? else {
        return Err(ServiceError::Unauthenticated(SIGN_IN_AGAIN));
    };
    match owner {
        SessionOwner::Operator { id, username } => Ok((Principal::Operator { id, username }, expires_at)),
        SessionOwner::Owner { id, username, name } => {
            // An owner acts on the sites whose agreements it owns now (R11).
            let sites = store.owner_sites(id).await?;
            Ok((Principal::Owner { id, username, name, sites }, expires_at))
        }
        SessionOwner::Login { login_deleted: true, .. } | SessionOwner::Login { person_deleted: true, .. } => {
            Err(ServiceError::Unauthenticated(SIGN_IN_AGAIN))
        }
        SessionOwner::Login { login, .. } if !login.active_on(Date::today()) => {
            Err(ServiceError::Unauthenticated("the login's validUntil date has passed; its sessions no longer work"))
        }
        SessionOwner::Login { login, person_name, .. } => {
            let until = login.valid_until.map_or(expires_at, |last| expires_at.min(last.end_unix()));
            let principal = Principal::SiteLogin {
                login_id: login.id,
                person_id: login.person_id,
                site_id: login.site_id,
                username: login.username,
                name: person_name,
                is_admin: login.is_admin,
            };
            Ok((principal, until))
        }
    }
}

/// Principals of recently checked sessions, so that reads need no session
/// lookup statement. An entry is trusted for `ttl` after it was read from
/// the database, and only until this instance runs its next mutation that
/// may end or alter a session (a deleted or expired login, a renamed person,
/// a transferred agreement: any mutation but those `documents.rs` lists as
/// session-neutral). Mutations never trust it: they check their
/// session in the database, before they write or, for a change whose writes
/// the session guards, in the statement that writes (an entry of any age
/// may start such a change: see `RequestContext::guarded`). A session ended
/// through another instance may therefore still read here for up to `ttl`,
/// never write. A zero `ttl` turns the cache off.
pub struct SessionCache {
    ttl: std::time::Duration,
    /// Bumped when a mutation has run on this instance.
    generation: std::sync::atomic::AtomicU64,
    entries: std::sync::Mutex<std::collections::HashMap<String, CachedSession>>,
}

struct CachedSession {
    principal: Principal,
    checked: std::time::Instant,
    generation: u64,
}

/// Most sessions the cache holds; when full, stale entries go first, then all.
const SESSION_CACHE_ENTRIES: usize = 10_000;

impl SessionCache {
    pub fn new(ttl: std::time::Duration) -> Self {
        SessionCache { ttl, generation: Default::default(), entries: Default::default() }
    }

    /// A mutation that may end or alter a session has run here: no cached
    /// session is trusted any more.
    pub fn mutation_ran(&self) {
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn fresh(&self, entry: &CachedSession, generation: u64) -> bool {
        entry.generation == generation && entry.checked.elapsed() < self.ttl
    }

    fn get(&self, hash: &str) -> Option<Principal> {
        let generation = self.generation();
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(hash).filter(|e| self.fresh(e, generation)).map(|e| e.principal.clone())
    }

    /// The principal last read from the database for `hash`, however long
    /// ago: only for a change whose writes are guarded by the session
    /// ([`crate::store::SessionGuard`]).
    pub fn last_checked(&self, hash: &str) -> Option<Principal> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(hash).map(|e| e.principal.clone())
    }

    /// Remembers `principal`, read from the database at `generation` (taken
    /// before the read, so a mutation that ran meanwhile makes it stale).
    fn put(&self, hash: String, principal: &Principal, checked: std::time::Instant, generation: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= SESSION_CACHE_ENTRIES {
            let now = self.generation();
            entries.retain(|_, e| self.fresh(e, now));
            if entries.len() >= SESSION_CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(hash, CachedSession { principal: principal.clone(), checked, generation });
    }

    fn evict(&self, hash: &str) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(hash);
    }
}

/// The principal of a bearer token: `fresh` (every mutation) always asks the
/// database; otherwise a principal `cache` checked recently enough is reused.
pub async fn authenticate_cached(
    store: &Store,
    cache: &SessionCache,
    token: &str,
    fresh: bool,
) -> ServiceResult<Principal> {
    let hash = token_hash(token);
    if !fresh && let Some(principal) = cache.get(&hash) {
        return Ok(principal);
    }
    let (checked, generation) = (std::time::Instant::now(), cache.generation());
    match authenticate_hash(store, &hash).await {
        Ok(principal) => {
            cache.put(hash, &principal, checked, generation);
            Ok(principal)
        }
        Err(e) => {
            cache.evict(&hash);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_token_hash_is_the_lower_case_hex_sha256_of_the_token() {
        assert_eq!(super::token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(super::token_hash(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
