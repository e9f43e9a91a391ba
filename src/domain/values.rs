//! Values parsed once at the boundary ("parse, don't validate"): once one of
//! these exists, the inside trusts it.

use std::fmt;

use unicase::UniCase;
use unicode_normalization::UnicodeNormalization;

/// Why an input value was refused; becomes `BAD_USER_INPUT` at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidInput {
    /// The input field, as the API names it.
    pub field: &'static str,
    /// What is wrong, for a person to read.
    pub message: String,
}

impl InvalidInput {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        InvalidInput { field, message: message.into() }
    }
}

fn trimmed_text(field: &'static str, raw: &str, max: usize) -> Result<String, InvalidInput> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(InvalidInput::new(field, format!("{field} must not be empty")));
    }
    if text.chars().count() > max {
        return Err(InvalidInput::new(field, format!("{field} must be at most {max} characters")));
    }
    if text.chars().any(char::is_control) {
        return Err(InvalidInput::new(field, format!("{field} must not contain control characters")));
    }
    Ok(text.to_string())
}

/// The one case folding of the service: how names compare without regard
/// to case, for uniqueness (profile and site names) and for search (people's
/// and users' `nameContains`, the audit trail's `actorContains`), computed
/// here so that both databases compare the same strings (SQLite's `lower()`
/// folds only A-Z). Unicode full case folding (Å→å, É→é, ẞ and ß→ss, Σ and
/// ς→σ) of the canonical decomposition, composed again (NFC): a name typed
/// with a composed or a decomposed Å folds alike, and å stays a letter of
/// its own, so "a" does not find "å". Case folding maps letter by letter,
/// so the fold of a part of a name is a part of the name's fold, which a
/// `contains` search needs; lower-casing does not (it turns a word's last Σ
/// into ς, so "ΟΔΥΣ" would not be found in "Οδυσσέας").
pub fn fold(text: &str) -> String {
    let decomposed: String = text.nfd().collect();
    UniCase::new(decomposed).to_folded_case().nfc().collect()
}

macro_rules! text_value {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);
        impl $name {
            pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
                trimmed_text($field, raw, $max).map($name)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// The folded form ([`fold`]) that uniqueness and search compare.
            pub fn key(&self) -> String {
                fold(&self.0)
            }
        }
    };
}

text_value!(
    /// A person's display name: 1–200 characters, trimmed.
    PersonName, "name", 200
);
text_value!(
    /// A profile name, unique per site without case: 1–100 characters.
    ProfileName, "name", 100
);
text_value!(
    /// A site name, unique in the installation without case: 1–100 characters.
    SiteName, "name", 100
);
text_value!(
    /// An agreement's name or number: 1–100 characters.
    AgreementName, "agreementName", 100
);

text_value!(
    /// What a responsibility is called, e.g. a form's or a folder's name: 1–200 characters.
    ResponsibilityName, "name", 200
);
text_value!(
    /// A change request's message to the vendor: 1–2000 characters.
    RequestMessage, "message", 2000
);
text_value!(
    /// Why a change request was rejected: 1–2000 characters.
    RejectionReason, "reason", 2000
);
text_value!(
    /// A checkout's idempotency key: 1–200 characters chosen by the client.
    IdempotencyKey, "idempotencyKey", 200
);

/// Kinds of things a person can be responsible for (R12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponsibilityKind {
    Form,
    DocumentFolder,
}

impl ResponsibilityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponsibilityKind::Form => "FORM",
            ResponsibilityKind::DocumentFolder => "DOCUMENT_FOLDER",
        }
    }
}

/// A username: 3–64 characters of letters, digits and `. _ - @`, unique in
/// the whole installation without case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let name = raw.trim();
        let len = name.chars().count();
        if !(3..=64).contains(&len) {
            return Err(InvalidInput::new("username", "username must be 3 to 64 characters"));
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')) {
            return Err(InvalidInput::new("username", "username may contain only letters, digits and . _ - @"));
        }
        Ok(Username(name.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The case-folded form that uniqueness and sign-in compare.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// A new password, as NIST SP 800-63B asks of a memorized secret: 12–200
/// characters (counted as Unicode characters, spaces allowed, nothing
/// trimmed), and not easy to guess: zxcvbn's estimate must be at least
/// [`Password::MIN_SCORE`], which refuses common and leaked passwords,
/// dictionary words, keyboard walks, repeats and sequences. Never logged,
/// never echoed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

/// Words of this service that make a password easier to guess here.
const SERVICE_WORDS: &[&str] = &["license", "licenses", "gateway", "licensegateway"];

impl Password {
    /// Fewest characters.
    pub const MIN_CHARS: usize = 12;
    /// Most characters.
    pub const MAX_CHARS: usize = 200;
    /// Lowest zxcvbn score accepted: 3, "safely unguessable: moderate
    /// protection from an offline slow-hash scenario" (about 10^8 guesses
    /// or more), which Argon2 hashing makes a slow-hash scenario.
    pub const MIN_SCORE: zxcvbn::Score = zxcvbn::Score::Three;
    /// How many of its first characters the strength estimate reads. Its
    /// time grows much faster than the length, on the request's thread; a
    /// password whose first 64 characters are hard to guess is hard to
    /// guess, and zxcvbn's authors advise such a bound too.
    pub const ESTIMATED_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let len = raw.chars().count();
        if len < Self::MIN_CHARS {
            return Err(InvalidInput::new(
                "password",
                format!("password is too short: at least {} characters", Self::MIN_CHARS),
            ));
        }
        if len > Self::MAX_CHARS {
            return Err(InvalidInput::new(
                "password",
                format!("password is too long: at most {} characters", Self::MAX_CHARS),
            ));
        }
        let estimated = raw.char_indices().nth(Self::ESTIMATED_CHARS).map_or(raw, |(end, _)| &raw[..end]);
        let estimate = zxcvbn::zxcvbn(estimated, SERVICE_WORDS);
        if estimate.score() < Self::MIN_SCORE {
            return Err(InvalidInput::new(
                "password",
                format!("password is too easy to guess: {}", why_weak(&estimate)),
            ));
        }
        Ok(Password(raw.to_string()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// zxcvbn's warning and suggestions, as one sentence or a few.
fn why_weak(estimate: &zxcvbn::Entropy) -> String {
    let mut parts = Vec::new();
    if let Some(feedback) = estimate.feedback() {
        parts.extend(feedback.warning().map(|w| w.to_string()));
        parts.extend(feedback.suggestions().iter().map(ToString::to_string));
    }
    if parts.is_empty() {
        parts.push("use a longer phrase of uncommon words.".to_string());
    }
    parts.join(" ")
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// An optional e-mail address: contains one `@`, at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let email = raw.trim();
        if email.len() > 254 || email.matches('@').count() != 1 || email.starts_with('@') || email.ends_with('@') {
            return Err(InvalidInput::new("email", "email must look like name@example.org"));
        }
        Ok(Email(email.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A pool total: a whole number from 0 to 1,000,000 (R5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LicenseTotal(i64);

impl LicenseTotal {
    pub const MAX: i64 = 1_000_000;
    pub fn parse(raw: i64, field: &'static str) -> Result<Self, InvalidInput> {
        if !(0..=Self::MAX).contains(&raw) {
            return Err(InvalidInput::new(field, format!("{field} must be a whole number from 0 to {}", Self::MAX)));
        }
        Ok(LicenseTotal(raw))
    }
    pub fn get(self) -> i64 {
        self.0
    }
}

/// A module code such as `CASE`: 1–32 upper-case letters, digits or `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleCode(String);

impl ModuleCode {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let code = raw.trim().to_ascii_uppercase();
        if code.is_empty() || code.len() > 32 || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(InvalidInput::new("module", format!("`{raw}` is not a module code (e.g. CASE)")));
        }
        Ok(ModuleCode(code))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A calendar date (`YYYY-MM-DD`), as used by `validUntil` (R9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date(time::Date);

const DATE_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// The earliest and latest dates input may name. Outside them a date is a
/// typo, not a plan (`0000-01-01`), and years before 1000 or with a sign would
/// not sort as the `YYYY-MM-DD` text the database compares.
const DATE_RANGE: (time::Date, time::Date) = (
    match time::Date::from_calendar_date(1900, time::Month::January, 1) {
        Ok(d) => d,
        Err(_) => panic!("1900-01-01 is a date"),
    },
    match time::Date::from_calendar_date(9999, time::Month::December, 31) {
        Ok(d) => d,
        Err(_) => panic!("9999-12-31 is a date"),
    },
);

impl Date {
    /// A date from input: `YYYY-MM-DD`, from 1900-01-01 to 9999-12-31.
    pub fn parse(raw: &str, field: &'static str) -> Result<Self, InvalidInput> {
        let date = Self::stored(raw).ok_or_else(|| {
            InvalidInput::new(field, format!("{field} must be a date written YYYY-MM-DD, got `{raw}`"))
        })?;
        if date.0 < DATE_RANGE.0 || date.0 > DATE_RANGE.1 {
            return Err(InvalidInput::new(
                field,
                format!("{field} must be a date from 1900-01-01 to 9999-12-31, got `{}`", raw.trim()),
            ));
        }
        Ok(date)
    }
    /// A date as stored, without the input range: a row written before the
    /// range was enforced still reads as the date it names.
    pub fn stored(raw: &str) -> Option<Self> {
        time::Date::parse(raw.trim(), DATE_FORMAT).ok().map(Date)
    }
    /// Today in UTC: the day that `validUntil` is compared with.
    pub fn today() -> Self {
        Date(time::OffsetDateTime::now_utc().date())
    }
    pub fn format(&self) -> String {
        self.0.format(DATE_FORMAT).unwrap_or_default()
    }
    /// The day `days` after this one (negative goes back).
    pub fn plus_days(&self, days: i64) -> Self {
        Date(self.0 + time::Duration::days(days))
    }
    /// When this day ends in UTC: the first second of the next, in unix seconds.
    pub fn end_unix(&self) -> i64 {
        self.0.next_day().map_or(i64::MAX, |next| next.midnight().assume_utc().unix_timestamp())
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format())
    }
}

/// The SHA-256 of `text` as 64 lowercase hex digits: what is kept of a
/// session token, a username in the sign-in throttle, and the key of a
/// persisted query. One formatting of the whole digest, not a `format!`
/// per byte (measured: bench/results/ab-20261207T2020Z-issue14.txt).
pub fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_compare_without_case() {
        assert_eq!(Username::parse("Anna.B").unwrap().key(), Username::parse("anna.b").unwrap().key());
        assert!(Username::parse("a b").is_err());
        assert!(Username::parse("ab").is_err());
    }

    #[test]
    fn totals_are_whole_numbers_from_zero() {
        assert!(LicenseTotal::parse(-1, "total").is_err());
        assert_eq!(LicenseTotal::parse(0, "total").unwrap().get(), 0);
    }

    #[test]
    fn weak_passwords_are_refused_with_the_reason() {
        for weak in ["1234567890", "aaaaaaaaaaaa", "            ", "password1234", "qwertyuiopas", "abcdefghijkl"] {
            let err = Password::parse(weak).unwrap_err();
            assert_eq!(err.field, "password");
            assert!(
                err.message.starts_with("password is too short")
                    || err.message.starts_with("password is too easy to guess: "),
                "{weak:?}: {}",
                err.message
            );
        }
        assert_eq!(Password::parse("1234567890").unwrap_err().message, "password is too short: at least 12 characters");
        let common = Password::parse("password1234").unwrap_err().message;
        assert!(common.len() > "password is too easy to guess: ".len(), "says why: {common}");
    }

    #[test]
    fn strong_passwords_from_twelve_to_two_hundred_characters_pass() {
        assert!(Password::parse("correct horse battery").is_ok());
        assert!(Password::parse("Vw9-tq4Rk2xZ").is_ok());
        assert!(Password::parse("x".repeat(201).as_str()).unwrap_err().message.contains("at most 200"));
        let long: String = (0..200).map(|i| char::from(b'!' + ((i * 37 + i / 7) % 90) as u8)).collect();
        assert!(Password::parse(&long).is_ok(), "{long}");
    }

    #[test]
    fn fold_ignores_case_of_every_letter_and_keeps_letters_apart() {
        assert_eq!(fold("Åsa Ängel Öberg"), "åsa ängel öberg");
        assert_eq!(fold("ÅSA"), fold("åsa"));
        assert_eq!(fold("A\u{30A}sa"), "åsa", "a decomposed Å folds as the composed one");
        assert_ne!(fold("Åsa"), fold("Asa"), "å is a letter of its own");
        assert_eq!(fold("Straße"), fold("STRASSE"));
        assert_eq!(fold("STRAẞE"), "strasse");
        assert!(fold("Οδυσσέας").contains(&fold("ΟΔΥΣ")), "a final sigma in the query");
        assert_eq!(fold("Émile 100%_"), "émile 100%_");
    }

    #[test]
    fn dates_round_trip_and_compare() {
        let d = Date::parse("2026-01-31", "validUntil").unwrap();
        assert_eq!(d.format(), "2026-01-31");
        assert!(d < d.plus_days(1));
        assert!(Date::parse("31/01/2026", "validUntil").is_err());
    }

    #[test]
    fn input_dates_lie_between_1900_and_9999() {
        assert!(Date::parse("0000-01-01", "validUntil").is_err());
        assert!(Date::parse("1899-12-31", "validUntil").is_err());
        assert!(Date::parse("1900-01-01", "validUntil").is_ok());
        assert!(Date::parse("9999-12-31", "validUntil").is_ok());
        assert!(Date::parse("+10000-01-01", "validUntil").is_err());
        assert_eq!(Date::stored("0000-01-01").map(|d| d.format()).as_deref(), Some("0000-01-01"));
    }
}
