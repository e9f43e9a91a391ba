//! Paging of every connection, in one place: the arguments (`first` and
//! `after` forward, `last` and `before` backward) checked once, typed opaque
//! cursors, and a page of rows turned into a Relay connection with its
//! `pageInfo`. The keyset SQL is the store's (`store::Slice`, `store::Rows`).

use async_graphql::Context;
use base64::Engine;

use crate::domain::{self, InvalidInput};
use crate::service::ServiceError;
use crate::store::{Rows, Slice};

type R<T> = Result<T, ServiceError>;

/// Largest page any connection returns.
pub const MAX_PAGE: i32 = 100;
/// The page size when neither `first` nor `last` is given.
pub const DEFAULT_PAGE: i32 = 20;

/// The paging arguments of a connection field, as the client sent them.
#[derive(Debug, Clone, Default)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

impl PageArgs {
    pub fn new(first: Option<i32>, after: Option<String>, last: Option<i32>, before: Option<String>) -> Self {
        PageArgs { first, after, last, before }
    }

    /// The slice of list `T` these arguments ask for: the items after
    /// `after` and before `before`, the first `first` of them, or the last
    /// `last`. Neither: the first 20, or the last 20 when only `before` is
    /// given (the page just before it). Both `first` and `last` are refused.
    pub fn slice<T: Listed>(&self) -> R<Slice<T::Key>> {
        let (size, from_end) = match (self.first, self.last) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "last",
                    "give first or last, not both: first (with after) pages forward, last (with before) backward"
                        .to_string(),
                ));
            }
            (Some(n), None) => (page_size("first", "after", n)?, false),
            (None, Some(n)) => (page_size("last", "before", n)?, true),
            (None, None) => (DEFAULT_PAGE, self.before.is_some() && self.after.is_none()),
        };
        Ok(Slice {
            after: read::<T>("after", self.after.as_deref())?,
            before: read::<T>("before", self.before.as_deref())?,
            limit: i64::from(size),
            from_end,
        })
    }
}

fn invalid(field: &'static str, message: String) -> ServiceError {
    ServiceError::Invalid(InvalidInput::new(field, message))
}

fn page_size(arg: &'static str, cursor: &str, n: i32) -> R<i32> {
    match n {
        1..=MAX_PAGE => Ok(n),
        n => Err(invalid(arg, format!("{arg} must be from 1 to {MAX_PAGE}, got {n}; page with `{cursor}` for more"))),
    }
}

/// What the items of a list are and where each stands in it: its cursor
/// says which list (`LIST`) and the item's position (`Key`), so a cursor
/// given to another list is refused, never read as a position there. Lists
/// of the same items in the same order (a site's users, a profile's users,
/// `users`) share their cursors.
pub trait Listed {
    /// The list's name in cursors.
    const LIST: &'static str;
    /// The item's position: the values of the list's order columns.
    type Key: CursorKey;
    fn key(&self) -> Self::Key;
}

/// A position as cursor text.
pub trait CursorKey: Sized {
    fn write(&self) -> String;
    fn read(text: &str) -> Option<Self>;
}

impl CursorKey for i64 {
    fn write(&self) -> String {
        self.to_string()
    }
    fn read(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

impl CursorKey for String {
    fn write(&self) -> String {
        self.clone()
    }
    fn read(text: &str) -> Option<Self> {
        Some(text.to_string())
    }
}

/// A name and an id: `id:name` (the name may hold any character, `:` too).
impl CursorKey for (String, i64) {
    fn write(&self) -> String {
        format!("{}:{}", self.1, self.0)
    }
    fn read(text: &str) -> Option<Self> {
        let (id, name) = text.split_once(':')?;
        Some((name.to_string(), id.parse().ok()?))
    }
}

const CURSOR: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The opaque cursor of `item`: base64 of `list:position`.
pub fn cursor<T: Listed>(item: &T) -> String {
    CURSOR.encode(format!("{}:{}", T::LIST, item.key().write()))
}

/// The position named by `cursor`, the argument `arg`, which must be a cursor of list `T`.
fn read<T: Listed>(arg: &'static str, cursor: Option<&str>) -> R<Option<T::Key>> {
    let Some(cursor) = cursor else { return Ok(None) };
    let text = CURSOR.decode(cursor).ok().and_then(|b| String::from_utf8(b).ok());
    let (list, position) = text.as_deref().and_then(|t| t.split_once(':')).unwrap_or(("", ""));
    if let Some(key) = T::Key::read(position).filter(|_| list == T::LIST) {
        return Ok(Some(key));
    }
    let why = if LISTS.contains(&list) && list != T::LIST {
        format!("{arg} is a cursor of {list}, not of {}: cursors work only in the list that gave them", T::LIST)
    } else {
        format!(
            "{arg} is not a cursor of {}: pass back an edge's cursor, or pageInfo's startCursor or endCursor",
            T::LIST
        )
    };
    Err(invalid(arg, why))
}

/// Every list's name in cursors, to tell a cursor of another list from one that is no cursor at all.
const LISTS: &[&str] = &[
    <domain::Site as Listed>::LIST,
    <(domain::Login, domain::Person) as Listed>::LIST,
    <domain::Person as Listed>::LIST,
    <domain::LicenseOrder as Listed>::LIST,
    <domain::ChangeRequest as Listed>::LIST,
    <domain::AuditRecord as Listed>::LIST,
];

impl Listed for domain::Site {
    const LIST: &'static str = "sites";
    type Key = i64;
    fn key(&self) -> i64 {
        self.id.0
    }
}

/// Users, by username (its key: usernames are ASCII, compared without case).
impl Listed for (domain::Login, domain::Person) {
    const LIST: &'static str = "users";
    type Key = String;
    fn key(&self) -> String {
        self.0.username.to_ascii_lowercase()
    }
}

impl Listed for domain::Person {
    const LIST: &'static str = "people";
    type Key = (String, i64);
    fn key(&self) -> (String, i64) {
        (self.name.clone(), self.id.0)
    }
}

impl Listed for domain::LicenseOrder {
    const LIST: &'static str = "licenseOrders";
    type Key = i64;
    fn key(&self) -> i64 {
        self.id.0
    }
}

impl Listed for domain::ChangeRequest {
    const LIST: &'static str = "changeRequests";
    type Key = i64;
    fn key(&self) -> i64 {
        self.id.0
    }
}

impl Listed for domain::AuditRecord {
    const LIST: &'static str = "auditEvents";
    type Key = i64;
    fn key(&self) -> i64 {
        self.id
    }
}

/// How many items a list holds in all, as `totalCount` answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Total {
    pub count: i64,
    /// False when counting stopped at a cap: there are more.
    pub exact: bool,
}

impl Total {
    pub fn exact(count: i64) -> Self {
        Total { count, exact: true }
    }

    /// A count that stopped at `cap`: `counted` is at most `cap + 1`.
    pub fn capped(counted: i64, cap: i64) -> Self {
        Total { count: counted.min(cap), exact: counted <= cap }
    }
}

/// Whether the client selected the connection's count, so that it is
/// counted (one statement) only when asked for.
pub fn wants_total(ctx: &Context<'_>) -> bool {
    let look = ctx.look_ahead();
    look.field("totalCount").exists() || look.field("totalCountIsExact").exists()
}

/// A connection type (declared with `connection!` in `types`).
pub trait Connection: Sized {
    type Node;
    fn new(
        edges: Vec<(String, Self::Node)>,
        has_previous_page: bool,
        has_next_page: bool,
        total: Option<Total>,
    ) -> Self;
}

/// The connection of a page of list `T` read for `slice`, its items made
/// into nodes by `node`, in the list's order, with Relay's `pageInfo`: read
/// forward, a next page exists when rows were left past the page, and a
/// previous one when it starts after a cursor (the item at that cursor comes
/// before it); read backward from the end, the other way round.
pub fn connection<T: Listed, C: Connection>(
    page: Rows<T>,
    slice: &Slice<T::Key>,
    total: Option<Total>,
    mut node: impl FnMut(T) -> R<C::Node>,
) -> R<C> {
    let (has_previous_page, has_next_page) =
        if slice.from_end { (page.more, slice.before.is_some()) } else { (slice.after.is_some(), page.more) };
    let edges = page.rows.into_iter().map(|item| Ok((cursor(&item), node(item)?))).collect::<R<Vec<_>>>()?;
    Ok(C::new(edges, has_previous_page, has_next_page, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(first: Option<i32>, last: Option<i32>) -> PageArgs {
        PageArgs { first, last, ..Default::default() }
    }

    #[test]
    fn page_sizes_are_from_1_to_100_and_first_and_last_exclude_each_other() {
        assert_eq!(args(None, None).slice::<domain::Site>().unwrap().limit, 20);
        assert_eq!(args(Some(100), None).slice::<domain::Site>().unwrap().limit, 100);
        assert!(args(None, Some(1)).slice::<domain::Site>().unwrap().from_end);
        for (first, last, field) in [(Some(0), None, "first"), (Some(101), None, "first"), (None, Some(-1), "last")] {
            match args(first, last).slice::<domain::Site>() {
                Err(ServiceError::Invalid(e)) => assert_eq!(e.field, field),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(args(Some(1), Some(1)).slice::<domain::Site>(), Err(ServiceError::Invalid(_))));
        let only_before = PageArgs { before: Some(CURSOR.encode("sites:4")), ..Default::default() };
        assert!(only_before.slice::<domain::Site>().unwrap().from_end);
    }

    #[test]
    fn a_cursor_is_read_only_by_its_own_list() {
        let person = (String::from("Åsa: Öberg"), 7);
        let text = CURSOR.encode(format!("people:{}", person.write()));
        let read_back = read::<domain::Person>("after", Some(&text)).unwrap();
        assert_eq!(read_back, Some(person));
        for (cursor, says) in [
            (text.as_str(), "is a cursor of people, not of sites"),
            ("%%%", "is not a cursor of sites"),
            (&CURSOR.encode("sites:x"), "is not a cursor of sites"),
            (&CURSOR.encode("Site:1"), "is not a cursor of sites"),
        ] {
            match read::<domain::Site>("before", Some(cursor)) {
                Err(ServiceError::Invalid(e)) => {
                    assert_eq!(e.field, "before");
                    assert!(e.message.contains(says), "{}", e.message);
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
