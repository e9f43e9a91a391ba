//! Sign-in throttling: failed sign-ins are counted per username (without
//! case) and per client address, in the database, so that every instance
//! enforces the same limits. An attempt is charged to both before its
//! password is checked, by conditional statements that refuse it when a
//! limit is reached or a lockout holds (`store::throttle`); a refused
//! attempt checks no password and says when to try again. A wrong password
//! leaves its charge and locks a subject whose window is full; a right one
//! clears the username's failures and takes back the address's charge.
//! Unknown usernames are counted like known ones, so the answers do not
//! tell which usernames exist.

use super::*;
use crate::domain::throttle::{ClientAddress, SignInLimits};

/// An attempt charged to its username and address, to settle once its
/// password has been checked.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// When it was charged (seconds).
    at: i64,
    /// The username's throttle row.
    username: String,
    /// The address's throttle row, when the address is known.
    address: Option<String>,
}

/// The throttle row of a username: `user:` and the SHA-256 of its
/// lower-cased form, so that what someone typed as a username (sometimes a
/// password, in the wrong field) is not kept in clear.
fn username_subject(username_key: &str) -> String {
    format!("user:{}", crate::domain::sha256_hex(username_key))
}

/// The throttle row of a client address.
fn address_subject(address: &ClientAddress) -> String {
    format!("addr:{}", address.throttle_key())
}

/// The rows an attempt is charged to, each with its limit.
fn subjects(limits: &SignInLimits, admitted: &Admitted) -> Vec<(String, i64)> {
    let mut subjects = vec![(admitted.username.clone(), limits.max_failures_per_username)];
    if let Some(address) = &admitted.address {
        subjects.push((address.clone(), limits.max_failures_per_address));
    }
    subjects
}

/// Charges an attempt at `username_key` from `client` to both, if both
/// allow one more; otherwise (nothing charged) the seconds until one may be
/// made again.
pub async fn admit(
    store: &Store,
    limits: &SignInLimits,
    username_key: &str,
    client: Option<ClientAddress>,
) -> ServiceResult<Result<Admitted, i64>> {
    let admitted =
        Admitted { at: now(), username: username_subject(username_key), address: client.as_ref().map(address_subject) };
    let subjects = subjects(limits, &admitted);
    if crate::retrying!(store.retries(), charge(store, limits, &subjects, admitted.at))? {
        return Ok(Ok(admitted));
    }
    let names: Vec<String> = subjects.iter().map(|(s, _)| s.clone()).collect();
    let states = store.sign_in_throttle(&names).await?;
    let retry_after = states
        .iter()
        .filter_map(|(subject, state)| {
            let max = subjects.iter().find(|(s, _)| s == subject).map_or(i64::MAX, |(_, max)| *max);
            state.retry_after(max, limits.window_seconds, admitted.at)
        })
        .max()
        // The lockout ended between the two statements: try again at once.
        .unwrap_or(1);
    Ok(Err(retry_after))
}

/// Charges one attempt to every subject, or to none (one transaction).
async fn charge(store: &Store, limits: &SignInLimits, subjects: &[(String, i64)], at: i64) -> ServiceResult<bool> {
    let mut tx = store.begin().await?;
    for (subject, max) in subjects {
        if !tx.admit_sign_in(subject, *max, limits.window_seconds, at).await? {
            tx.rollback().await?;
            return Ok(false);
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// The password of `admitted` was wrong: its charges stay, and a subject
/// whose window they filled is locked out.
pub async fn failed(store: &Store, limits: &SignInLimits, admitted: &Admitted) -> ServiceResult<()> {
    let subjects = subjects(limits, admitted);
    crate::retrying!(store.retries(), lock_full(store, limits, &subjects, now()))
}

async fn lock_full(store: &Store, limits: &SignInLimits, subjects: &[(String, i64)], at: i64) -> ServiceResult<()> {
    let mut tx = store.begin().await?;
    for (subject, max) in subjects {
        if tx.lock_sign_in_if_full(subject, *max, limits, at).await? {
            tracing::warn!(kind = %subject.split(':').next().unwrap_or(""), "sign-in locked out after repeated failures");
        }
    }
    tx.forget_stale_sign_in_failures(at).await?;
    tx.commit().await?;
    Ok(())
}

/// The password of `admitted` was right: in `tx`, the username's failures
/// and lockouts are forgotten and the address's charge is taken back.
pub async fn password_right(tx: &mut Tx, admitted: &Admitted) -> ServiceResult<()> {
    tx.clear_sign_in_failures(&admitted.username).await?;
    if let Some(address) = &admitted.address {
        tx.refund_sign_in(address, admitted.at).await?;
    }
    Ok(())
}
