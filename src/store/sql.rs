//! A small statement builder for dynamic SQL (filters, id lists). sqlx's
//! `QueryBuilder<Any>` writes `?` placeholders, which PostgreSQL rejects;
//! this one writes `$1, $2, ...`, which both PostgreSQL and SQLite read by
//! number. Text can only be pushed as `&'static str` (or a page size, an
//! integer: see [`Sql::limit`]), so nothing a client sends can reach the SQL
//! text: every other value is a bound parameter.

use std::fmt::Write;

use sqlx::any::AnyArguments;
use sqlx::{Any, Arguments, Encode, Type};

use super::AnyQuery;

pub(super) struct Sql {
    text: String,
    args: AnyArguments,
    count: usize,
}

impl Sql {
    pub fn new(text: &'static str) -> Self {
        Sql { text: text.to_string(), args: AnyArguments::default(), count: 0 }
    }

    pub fn push(&mut self, text: &'static str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends ` LIMIT n`, the number written into the text. A page size is
    /// one of at most a hundred numbers the resolvers allow, not client text;
    /// as a bound parameter it would keep PostgreSQL from planning a prepared
    /// page statement once: it either plans it again on every execution or
    /// keeps a generic plan made for an unknown limit (what that cost:
    /// bench/README.md).
    pub fn limit(&mut self, n: i64) -> &mut Self {
        let _ = write!(self.text, " LIMIT {n}");
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind<T>(&mut self, value: T) -> &mut Self
    where
        T: for<'q> Encode<'q, Any> + Type<Any>,
    {
        self.count += 1;
        let _ = write!(self.text, "${}", self.count);
        // Encoding into the Any buffer only copies the value; it cannot fail.
        self.args.add(value).expect("encode a bound value");
        self
    }

    /// Appends `(v1, v2, ...)`; an empty list becomes `(NULL)`, matching nothing.
    pub fn bind_list(&mut self, values: impl IntoIterator<Item = i64>) -> &mut Self {
        self.text.push('(');
        let mut first = true;
        for v in values {
            if !first {
                self.text.push_str(", ");
            }
            first = false;
            self.bind(v);
        }
        if first {
            self.text.push_str("NULL");
        }
        self.text.push(')');
        self
    }

    pub fn build(self) -> AnyQuery<'static> {
        sqlx::query_with(sqlx::AssertSqlSafe(self.text), self.args)
    }
}
