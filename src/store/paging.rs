//! Keyset paging of every list, in both directions: one list (a root
//! connection), or one list per parent in one statement (a nested
//! connection: a branch per parent, or for many parents a window,
//! `ROW_NUMBER() OVER (PARTITION BY parent ...)`, which SQLite has since
//! 3.25 and PostgreSQL since 8.4), and their counts. One text per statement
//! for both databases.
//! Never OFFSET: a page starts at a position (the values of the list's
//! order columns, unique together), so it costs the same deep in a list
//! as at its start, and rows added or removed elsewhere do not shift it.

use std::collections::HashMap;
use std::hash::Hash;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::sql::Sql;
use super::{Store, StoreResult};

/// A position in a list: the values of its order columns for one row.
pub(super) trait Key: Clone + Eq + Hash + Send + Sync + 'static {
    /// Appends the position as a value to compare the order columns with:
    /// `$n`, or `($n, $m)` for two columns.
    fn bind(&self, sql: &mut Sql);
}

impl Key for i64 {
    fn bind(&self, sql: &mut Sql) {
        sql.bind(*self);
    }
}

impl Key for String {
    fn bind(&self, sql: &mut Sql) {
        sql.bind(self.clone());
    }
}

impl Key for (String, i64) {
    fn bind(&self, sql: &mut Sql) {
        sql.push("(").bind(self.0.clone()).push(", ").bind(self.1).push(")");
    }
}

/// Which rows of a list a page holds: those after `after` and before
/// `before` (positions in the list's order), the first `limit` of them, or
/// the last `limit` when `from_end`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slice<K> {
    pub after: Option<K>,
    pub before: Option<K>,
    pub limit: i64,
    pub from_end: bool,
}

/// A page as read: its rows in the list's order, and whether more rows of
/// the range lie past them in the direction read (after the last row, or
/// before the first when read from the end).
#[derive(Debug, Clone)]
pub struct Rows<T> {
    pub rows: Vec<T>,
    pub more: bool,
}

impl<T> Default for Rows<T> {
    fn default() -> Self {
        Rows { rows: Vec::new(), more: false }
    }
}

impl<T> Rows<T> {
    /// The page of `read` (at most `limit + 1` rows in the order read): the
    /// row past the limit only says that there are more.
    fn cut<K>(mut read: Vec<T>, slice: &Slice<K>) -> Rows<T> {
        let more = read.len() as i64 > slice.limit;
        read.truncate(slice.limit as usize);
        if slice.from_end {
            read.reverse();
        }
        Rows { rows: read, more }
    }
}

/// How a list is read: its columns, its tables, and its order.
pub(super) struct List {
    /// The columns the row mapper reads (what follows `SELECT`).
    pub columns: &'static str,
    /// ` FROM` and the tables (with their joins).
    pub from: &'static str,
    /// The order columns, unique together: the position of a row.
    pub order: &'static [&'static str],
    /// The list runs from the highest position to the lowest (newest first).
    pub descending: bool,
}

/// The conditions of a list's filters: appends ` AND ...` terms.
pub(super) type Filter<'a> = &'a (dyn Fn(&mut Sql) + Sync);

/// No filter.
pub(super) fn unfiltered(_: &mut Sql) {}

impl List {
    /// Appends the range of `slice` (its `after` and `before`) as conditions.
    fn range<K: Key>(&self, sql: &mut Sql, slice: &Slice<K>) {
        let (later, earlier) = if self.descending { (" < ", " > ") } else { (" > ", " < ") };
        for (key, op) in [(&slice.after, later), (&slice.before, earlier)] {
            if let Some(key) = key {
                sql.push(" AND (");
                self.order_columns(sql, "");
                sql.push(")").push(op);
                key.bind(sql);
            }
        }
    }

    /// Appends the order columns, comma-separated, each followed by `suffix`.
    fn order_columns(&self, sql: &mut Sql, suffix: &'static str) {
        for (i, &column) in self.order.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push(column).push(suffix);
        }
    }

    /// Appends the order in which `slice` reads: the list's, or its reverse
    /// when the page is taken from the end.
    fn read_order<K>(&self, sql: &mut Sql, slice: &Slice<K>) {
        self.order_columns(sql, if self.descending != slice.from_end { " DESC" } else { "" });
    }

    /// Appends `SELECT` of the list's columns, of `parent` as `page_parent`
    /// and of each row's number in the order `slice` reads as `page_row`
    /// (counted apart for each value of `partition`, when not empty), and
    /// the list's `FROM`.
    fn numbered<K>(&self, sql: &mut Sql, parent: &'static str, partition: &'static str, slice: &Slice<K>) {
        sql.push("SELECT ").push(self.columns).push(", ").push(parent).push(" AS page_parent, ROW_NUMBER() OVER (");
        if !partition.is_empty() {
            sql.push("PARTITION BY ").push(partition).push(" ");
        }
        sql.push("ORDER BY ");
        self.read_order(sql, slice);
        sql.push(") AS page_row").push(self.from);
    }
}

/// Most parents whose pages one statement reads as a branch each: SQLite
/// takes at most 500 in one statement, and one page of any list holds at
/// most 100 parents.
const BRANCHES: usize = 100;

impl Store {
    /// One page of `list`: the rows whose `scope` column is `parent` (all
    /// rows without one) that pass `filter`, in `slice`. One statement, the
    /// keyset range in its `WHERE`, `limit + 1` rows.
    pub(super) async fn page<K: Key, T>(
        &self,
        list: &List,
        scope: Option<(&'static str, i64)>,
        filter: Filter<'_>,
        slice: &Slice<K>,
        row: fn(&AnyRow) -> StoreResult<T>,
    ) -> StoreResult<Rows<T>> {
        let mut sql = Sql::new("SELECT ");
        sql.push(list.columns).push(list.from).push(" WHERE ");
        match scope {
            Some((column, parent)) => sql.push(column).push(" = ").bind(parent),
            None => sql.push("1 = 1"),
        };
        filter(&mut sql);
        list.range(&mut sql, slice);
        sql.push(" ORDER BY ");
        list.read_order(&mut sql, slice);
        sql.limit(slice.limit + 1);
        let read = self.fetch_all(sql.build()).await?.iter().map(row).collect::<StoreResult<Vec<T>>>()?;
        Ok(Rows::cut(read, slice))
    }

    /// The page of `list` of each of `parents` (the values of its column
    /// `parent`), every page the same `filter` and `slice`, in one
    /// statement. Up to [`BRANCHES`] parents, one branch each (`UNION ALL`),
    /// read like [`Store::page`] through an index, so a parent's page costs
    /// the same however many rows it has; more parents, one windowed
    /// `SELECT` over them all that numbers each parent's rows in the order
    /// read (`ROW_NUMBER() OVER (PARTITION BY ...)`) and keeps the first
    /// `limit + 1`, which reads every row of those parents that passes the
    /// filter. Either way, the rows come numbered, by parent; every parent
    /// has an entry.
    pub(super) async fn pages<K: Key, T>(
        &self,
        list: &List,
        parent: &'static str,
        parents: &[i64],
        filter: Filter<'_>,
        slice: &Slice<K>,
        row: fn(&AnyRow) -> StoreResult<T>,
    ) -> StoreResult<HashMap<i64, Rows<T>>> {
        if let [one] = parents {
            let page = self.page(list, Some((parent, *one)), filter, slice, row).await?;
            return Ok(HashMap::from([(*one, page)]));
        }
        let mut sql = Sql::new("SELECT * FROM (");
        if parents.len() <= BRANCHES {
            for (i, &one) in parents.iter().enumerate() {
                if i > 0 {
                    sql.push(" UNION ALL SELECT * FROM (");
                }
                list.numbered(&mut sql, parent, "", slice);
                sql.push(" WHERE ").push(parent).push(" = ").bind(one);
                filter(&mut sql);
                list.range(&mut sql, slice);
                sql.push(" ORDER BY ");
                list.read_order(&mut sql, slice);
                sql.limit(slice.limit + 1).push(") page");
            }
        } else {
            list.numbered(&mut sql, parent, parent, slice);
            sql.push(" WHERE ").push(parent).push(" IN ").bind_list(parents.iter().copied());
            filter(&mut sql);
            list.range(&mut sql, slice);
            sql.push(") page WHERE page_row <= ").bind(slice.limit + 1);
        }
        sql.push(" ORDER BY page_parent, page_row");
        let mut read: HashMap<i64, Vec<T>> = parents.iter().map(|p| (*p, Vec::new())).collect();
        for r in &self.fetch_all(sql.build()).await? {
            read.entry(r.try_get("page_parent")?).or_default().push(row(r)?);
        }
        Ok(read.into_iter().map(|(p, rows)| (p, Rows::cut(rows, slice))).collect())
    }

    /// How many rows of `list` pass `filter` (whose `scope` column is
    /// `parent`, when given), counting at most `cap` when given: the count
    /// then stops there, so it costs no more however long the list grows.
    pub(super) async fn count(
        &self,
        list: &List,
        scope: Option<(&'static str, i64)>,
        filter: Filter<'_>,
        cap: Option<i64>,
    ) -> StoreResult<i64> {
        let mut sql = Sql::new("SELECT COUNT(*) AS n FROM (SELECT 1 AS counted");
        sql.push(list.from).push(" WHERE ");
        match scope {
            Some((column, parent)) => sql.push(column).push(" = ").bind(parent),
            None => sql.push("1 = 1"),
        };
        filter(&mut sql);
        if let Some(cap) = cap {
            sql.limit(cap);
        }
        sql.push(") rows_counted");
        let row = self.fetch_optional(sql.build()).await?;
        Ok(row.map(|r| r.try_get("n")).transpose()?.unwrap_or(0))
    }

    /// How many rows of `list` each of `parents` has that pass `filter`, in
    /// one statement. Every parent has an entry.
    pub(super) async fn counts(
        &self,
        list: &List,
        parent: &'static str,
        parents: &[i64],
        filter: Filter<'_>,
    ) -> StoreResult<HashMap<i64, i64>> {
        let mut sql = Sql::new("SELECT ");
        sql.push(parent).push(" AS page_parent, COUNT(*) AS n").push(list.from).push(" WHERE ").push(parent);
        sql.push(" IN ").bind_list(parents.iter().copied());
        filter(&mut sql);
        sql.push(" GROUP BY ").push(parent);
        let mut counts: HashMap<i64, i64> = parents.iter().map(|p| (*p, 0)).collect();
        for r in &self.fetch_all(sql.build()).await? {
            counts.insert(r.try_get("page_parent")?, r.try_get("n")?);
        }
        Ok(counts)
    }
}
