//! The sign-in throttle's rows (`sign_in_throttle`, migration 0007): one per
//! username or client address with failed sign-ins. Each decision is one
//! conditional statement (an attempt is admitted and charged only while the
//! row is not locked and its window is not full; a lockout is set only on a
//! full row that is not locked yet), so concurrent attempts on any number of
//! instances cannot exceed the limits: the statement that charges holds the
//! row's lock (PostgreSQL) or the write lock (SQLite) while it decides.

use sqlx::Row;

use super::{Store, StoreResult, Tx};
use crate::domain::throttle::{SignInLimits, ThrottleState};

/// Charges one attempt to `$1` at `$2` if it may be made: not locked, and
/// either its window (`$3` seconds) is over (a new one starts) or it has
/// fewer than `$4` charges. Past lockouts are forgotten once a whole window
/// has passed since the last one ended.
const ADMIT: &str = "INSERT INTO sign_in_throttle (subject, failures, window_start, locked_until, lockouts, forget_at) \
     VALUES ($1, 1, $2, 0, 0, $2 + $3) \
     ON CONFLICT (subject) DO UPDATE SET \
     failures = CASE WHEN sign_in_throttle.window_start + $3 <= $2 THEN 1 ELSE sign_in_throttle.failures + 1 END, \
     window_start = CASE WHEN sign_in_throttle.window_start + $3 <= $2 THEN $2 ELSE sign_in_throttle.window_start END, \
     lockouts = CASE WHEN sign_in_throttle.locked_until + $3 <= $2 THEN 0 ELSE sign_in_throttle.lockouts END, \
     forget_at = $3 + CASE WHEN sign_in_throttle.window_start + $3 <= $2 THEN $2 \
                 ELSE sign_in_throttle.window_start END \
     WHERE sign_in_throttle.locked_until <= $2 \
     AND (sign_in_throttle.window_start + $3 <= $2 OR sign_in_throttle.failures < $4) \
     RETURNING failures";

/// The length of the next lockout of a row: `$5` seconds doubled per
/// previous lockout, `$6` from `$4` previous lockouts on (the cap).
macro_rules! lockout_length {
    () => {
        "(CASE WHEN lockouts >= $4 THEN $6 ELSE $5 << CAST(lockouts AS INTEGER) END)"
    };
}

/// Locks `$1` at `$2` when its window holds `$3` or more charges and it is
/// not locked yet; a new window (`$7` seconds) starts with the lockout.
const LOCK_IF_FULL: &str = concat!(
    "UPDATE sign_in_throttle SET locked_until = $2 + ",
    lockout_length!(),
    ", lockouts = lockouts + 1, failures = 0, window_start = $2, forget_at = $2 + $7 + ",
    lockout_length!(),
    " WHERE subject = $1 AND failures >= $3 AND locked_until <= $2"
);

impl Tx {
    /// Charges one sign-in attempt to `subject` at `now` if its limit
    /// (`max` in `window` seconds) and its lockout allow one more; false
    /// (nothing written) when they do not.
    pub async fn admit_sign_in(&mut self, subject: &str, max: i64, window: i64, now: i64) -> StoreResult<bool> {
        let q = sqlx::query(ADMIT).bind(subject.to_string()).bind(now).bind(window).bind(max);
        Ok(self.fetch_optional(q).await?.is_some())
    }

    /// After a failed attempt: locks `subject` when its window is full
    /// (`max` charges) and it is not locked yet, for the lockout `limits`
    /// give after its previous lockouts. True when this locked it.
    pub async fn lock_sign_in_if_full(
        &mut self,
        subject: &str,
        max: i64,
        limits: &SignInLimits,
        now: i64,
    ) -> StoreResult<bool> {
        let q = sqlx::query(LOCK_IF_FULL)
            .bind(subject.to_string())
            .bind(now)
            .bind(max)
            .bind(limits.doublings())
            .bind(limits.lockout_seconds)
            .bind(limits.max_lockout_seconds)
            .bind(limits.window_seconds);
        Ok(self.execute(q).await? == 1)
    }

    /// Forgets every failure and lockout of `subject` (a username whose
    /// password was right).
    pub async fn clear_sign_in_failures(&mut self, subject: &str) -> StoreResult<()> {
        self.execute(sqlx::query("DELETE FROM sign_in_throttle WHERE subject = $1").bind(subject.to_string())).await?;
        Ok(())
    }

    /// Takes back the charge of an attempt admitted at `admitted_at` whose
    /// password was right, unless its window has ended since (the charge
    /// went with it).
    pub async fn refund_sign_in(&mut self, subject: &str, admitted_at: i64) -> StoreResult<()> {
        let sql = "UPDATE sign_in_throttle SET failures = failures - 1 \
                   WHERE subject = $1 AND failures > 0 AND window_start <= $2";
        self.execute(sqlx::query(sql).bind(subject.to_string()).bind(admitted_at)).await?;
        Ok(())
    }

    /// Deletes the rows that no longer mean anything at `now` (window over,
    /// lockout over and forgotten).
    pub async fn forget_stale_sign_in_failures(&mut self, now: i64) -> StoreResult<()> {
        self.execute(sqlx::query("DELETE FROM sign_in_throttle WHERE forget_at <= $1").bind(now)).await?;
        Ok(())
    }
}

impl Store {
    /// The throttle rows of `subjects` that exist.
    pub async fn sign_in_throttle(&self, subjects: &[String]) -> StoreResult<Vec<(String, ThrottleState)>> {
        let mut sql = super::sql::Sql::new(
            "SELECT subject, failures, window_start, locked_until FROM sign_in_throttle WHERE subject IN ",
        );
        sql.push("(");
        for (i, subject) in subjects.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(subject.clone());
        }
        if subjects.is_empty() {
            sql.push("NULL");
        }
        sql.push(")");
        let rows = self.fetch_all(sql.build()).await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("subject")?,
                    ThrottleState {
                        failures: row.try_get("failures")?,
                        window_start: row.try_get("window_start")?,
                        locked_until: row.try_get("locked_until")?,
                    },
                ))
            })
            .collect()
    }
}
