//! The folded copies of names that search compares (`people.name_folded`,
//! `audit_events.actor_folded`, migration 0009) and the name keys that
//! uniqueness compares (`profiles.name_key`, `sites.name_key`), all made by
//! [`fold`]. SQL cannot compute that fold (SQLite's `lower()` folds only
//! A-Z), so every statement that writes a name writes its folded copy too,
//! and [`Store::refold`] fills what a migration or an older release left
//! out.

use sqlx::Row;

use super::sql::Sql;
use super::{Store, StoreResult};
use crate::domain::fold;

/// What [`Store::refold`] changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Refolded {
    /// People whose folded name was filled.
    pub people: u64,
    /// Audit events whose folded actor was filled.
    pub audit_events: u64,
    /// Profile and site name keys brought to [`fold`].
    pub keys: u64,
    /// Name keys left as they were: their new key is another row's (two
    /// names that differed under the earlier lower-casing fold alike now).
    pub keys_kept: u64,
}

/// A folded copy kept beside a column, filled where it is still NULL.
struct FoldedCopy {
    /// The rows still NULL, first ids first, as `id` and `text`, read
    /// [`FoldedCopy::BATCH`] at a time (the partial index of migration 0009
    /// finds them).
    unfolded: &'static str,
    /// The start of the statement that sets the copy, up to `CASE id`; a
    /// `WHEN id THEN folded` per row follows.
    set: &'static str,
    /// What follows the `CASE`: only rows still NULL, then the id range.
    range: &'static str,
}

impl FoldedCopy {
    /// Rows per statement, two bound values each: SQLite looks its `$n`
    /// parameters up by name while preparing, so a few hundred are cheap and
    /// many thousands are not.
    const BATCH: i64 = 250;
}

const PEOPLE: FoldedCopy = FoldedCopy {
    unfolded: "SELECT id, name AS text FROM people WHERE name_folded IS NULL ORDER BY id",
    set: "UPDATE people SET name_folded = CASE id",
    range: " END WHERE name_folded IS NULL AND id BETWEEN ",
};

const AUDIT_ACTORS: FoldedCopy = FoldedCopy {
    unfolded: "SELECT id, actor AS text FROM audit_events WHERE actor_folded IS NULL ORDER BY id",
    set: "UPDATE audit_events SET actor_folded = CASE id",
    range: " END WHERE actor_folded IS NULL AND id BETWEEN ",
};

/// A unique name key: every row's key, and the statement that changes one
/// unless another row in its scope holds the new key already.
struct Key {
    all: &'static str,
    set: &'static str,
}

const PROFILE_KEYS: Key = Key {
    all: "SELECT id, name, name_key FROM profiles ORDER BY id",
    set: "UPDATE profiles SET name_key = $1 WHERE id = $2 AND NOT EXISTS \
          (SELECT 1 FROM profiles o WHERE o.site_id = profiles.site_id AND o.name_key = $1 AND o.id <> $2)",
};

const SITE_KEYS: Key = Key {
    all: "SELECT id, name, name_key FROM sites ORDER BY id",
    set: "UPDATE sites SET name_key = $1 WHERE id = $2 AND NOT EXISTS \
          (SELECT 1 FROM sites o WHERE o.name_key = $1 AND o.id <> $2)",
};

impl Store {
    /// Brings every folded copy and name key to [`fold`]: fills the copies
    /// still NULL (all rows right after migration 0009; later, only rows an
    /// instance of the previous release wrote during an upgrade), and
    /// recomputes the profiles' and sites' keys (made by lower-casing before
    /// 0009: they differ only for a few letters such as ß, or a decomposed
    /// Å). Idempotent: runs on every [`Store::migrate`]; once all is
    /// folded, it reads two empty partial indexes and the names of the
    /// profiles and sites. Each batch is a transaction of its own, so a
    /// stop half-way keeps what was done and the next run goes on.
    pub async fn refold(&self) -> StoreResult<Refolded> {
        let mut done = Refolded {
            people: self.fill_copy(&PEOPLE).await?,
            audit_events: self.fill_copy(&AUDIT_ACTORS).await?,
            ..Refolded::default()
        };
        for key in [&PROFILE_KEYS, &SITE_KEYS] {
            let (changed, kept) = self.refold_keys(key).await?;
            done.keys += changed;
            done.keys_kept += kept;
        }
        Ok(done)
    }

    async fn fill_copy(&self, copy: &FoldedCopy) -> StoreResult<u64> {
        let mut filled = 0;
        loop {
            let mut tx = self.begin().await?;
            let mut unfolded = Sql::new(copy.unfolded);
            unfolded.limit(FoldedCopy::BATCH);
            let rows = tx.fetch_all(unfolded.build()).await?;
            let (Some(first), Some(last)) = (rows.first(), rows.last()) else { break };
            let (first, last): (i64, i64) = (first.try_get("id")?, last.try_get("id")?);
            let mut set = Sql::new(copy.set);
            for row in &rows {
                let text: String = row.try_get("text")?;
                set.push(" WHEN ").bind(row.try_get::<i64, _>("id")?).push(" THEN ").bind(fold(&text));
            }
            set.push(copy.range).bind(first).push(" AND ").bind(last);
            filled += tx.execute(set.build()).await?;
            tx.commit().await?;
            if (rows.len() as i64) < FoldedCopy::BATCH {
                break;
            }
        }
        Ok(filled)
    }

    /// Recomputes the keys of `key`'s table; answers (changed, kept).
    async fn refold_keys(&self, key: &Key) -> StoreResult<(u64, u64)> {
        let rows = self.fetch_all(sqlx::query(key.all)).await?;
        let mut stale = Vec::new();
        for row in &rows {
            let (name, old): (String, String) = (row.try_get("name")?, row.try_get("name_key")?);
            let new = fold(&name);
            if new != old {
                stale.push((row.try_get::<i64, _>("id")?, new));
            }
        }
        if stale.is_empty() {
            return Ok((0, 0));
        }
        let (mut changed, mut kept) = (0, 0);
        let mut tx = self.begin().await?;
        for (id, new) in stale {
            if tx.execute(sqlx::query(key.set).bind(new).bind(id)).await? == 1 {
                changed += 1;
            } else {
                tracing::warn!(id, statement = key.set, "a name key stays as it was: its folded form is another's");
                kept += 1;
            }
        }
        tx.commit().await?;
        Ok((changed, kept))
    }
}
