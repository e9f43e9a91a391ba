//! The API's own scalars, `DateTime` and `Date`. Both travel as strings in a
//! fixed format, the same on every backend (the database keeps seconds and
//! calendar days, and this module writes them out). On the way in, a scalar
//! only takes the string; the resolver parses it into a domain value with
//! the name of its field, so a value that is a string but not a valid time
//! or date is answered `BAD_USER_INPUT` with `extensions.field`, like any
//! other bad input, and a value that is not a string at all fails
//! validation (`GRAPHQL_VALIDATION_FAILED`).

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use time::format_description::well_known::Rfc3339;

use crate::domain::{self, InvalidInput};

/// A point in time, written as RFC 3339 in UTC with whole seconds, e.g.
/// `2026-12-07T18:50:06Z`. As input, any RFC 3339 time with an offset, e.g.
/// `2026-12-07T19:50:06+01:00`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateTime(String);

impl DateTime {
    /// The time `secs` seconds after the Unix epoch.
    pub fn from_unix(secs: i64) -> Self {
        DateTime(
            time::OffsetDateTime::from_unix_timestamp(secs)
                .ok()
                .and_then(|t| t.format(&Rfc3339).ok())
                .unwrap_or_default(),
        )
    }

    /// Seconds since the Unix epoch of an input value; `field` names it in the error.
    pub fn unix(&self, field: &'static str) -> Result<i64, InvalidInput> {
        time::OffsetDateTime::parse(&self.0, &Rfc3339).map(|t| t.unix_timestamp()).map_err(|_| {
            InvalidInput::new(
                field,
                format!("{field} must be an RFC 3339 time with an offset, e.g. 2026-01-31T00:00:00Z, not `{}`", self.0),
            )
        })
    }
}

/// A point in time, written as RFC 3339 in UTC with whole seconds, e.g.
/// `2026-12-07T18:50:06Z`. As input, any RFC 3339 time with an offset, e.g.
/// `2026-12-07T19:50:06+01:00`.
#[Scalar(name = "DateTime", specified_by_url = "https://datatracker.ietf.org/doc/html/rfc3339")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => Ok(DateTime(s)),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::String(_))
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// A calendar date without a time of day or zone, ISO 8601 `YYYY-MM-DD`,
/// e.g. `2026-12-31`; from 1900-01-01 to 9999-12-31.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Date(String);

impl From<domain::Date> for Date {
    fn from(date: domain::Date) -> Self {
        Date(date.format())
    }
}

impl Date {
    /// The domain date of an input value; `field` names it in the error.
    pub fn day(&self, field: &'static str) -> Result<domain::Date, InvalidInput> {
        domain::Date::parse(&self.0, field)
    }
}

/// A calendar date without a time of day or zone, ISO 8601 `YYYY-MM-DD`,
/// e.g. `2026-12-31`; from 1900-01-01 to 9999-12-31.
#[Scalar(name = "Date", specified_by_url = "https://www.iso.org/iso-8601-date-and-time-format.html")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => Ok(Date(s)),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::String(_))
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}
