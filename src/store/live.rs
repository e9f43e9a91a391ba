//! What committed, announced to the live subscribers of every instance.
//!
//! A transaction notes what it changed that a subscriber may want (a site's
//! pools, an audit event, a session that ended) as [`Announcement`]s. On
//! PostgreSQL they go out with `pg_notify` inside the transaction, so they
//! are delivered when, and only if, it commits, to every instance's
//! listener ([`listen`]), this one's included. The audit event's insert
//! carries the call, so a change that writes one (every mutation does)
//! costs no statement more; a transaction that wrote none sends them in
//! one statement before its commit. On SQLite, which has no notifications
//! and one process, a committed transaction hands them to this process's
//! channel after its commit.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::domain::SiteId;

/// The PostgreSQL channel every instance listens on.
pub const CHANNEL: &str = "license_gateway";

/// PostgreSQL refuses a notification payload of 8000 bytes or more; past
/// this a transaction announces [`Announcement::Resync`] instead.
const MAX_PAYLOAD: usize = 7000;

/// Something a committed transaction changed that live subscribers may want.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    /// The usage or a total of one of the site's pools changed.
    Pools(SiteId),
    /// An audit event was written on the site's trail by `action` (a mutation's name).
    Audit { site: SiteId, id: i64, action: String },
    /// The session whose token hashes to this ended (signed out).
    SessionEnded(String),
    /// Announcements may have been lost (a listener's connection was lost,
    /// a payload was too long): read every subscriber's state again.
    Resync,
}

/// The announcements of one committed transaction.
pub type Announcements = Arc<[Announcement]>;

/// Where this process publishes what committed, and where its live
/// subscribers learn it: fed after each commit on SQLite, by [`listen`] on
/// PostgreSQL. A slow reader misses batches and learns so (`Lagged`); a
/// send never waits.
#[derive(Clone)]
pub struct Changes(broadcast::Sender<Announcements>);

impl Changes {
    /// A channel that keeps up to `capacity` batches for a slow reader.
    pub fn new(capacity: usize) -> Changes {
        Changes(broadcast::channel(capacity.max(1)).0)
    }

    /// A new reader of every batch published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Announcements> {
        self.0.subscribe()
    }

    /// Publishes one committed transaction's announcements in this process.
    pub(super) fn publish(&self, batch: Announcements) {
        // No reader (no live subscriber yet) is not an error.
        let _ = self.0.send(batch);
    }
}

/// Appends `a`'s form in a notification payload to `out` (without the id of
/// an audit event, which its insert appends: see [`audit_prefix`]).
fn encode_into(out: &mut String, a: &Announcement) {
    use std::fmt::Write;
    if !out.is_empty() {
        out.push(' ');
    }
    let _ = match a {
        Announcement::Pools(site) => write!(out, "p{}", site.0),
        Announcement::Audit { site, id, action } => write!(out, "a{}.{}.{id}", site.0, sanitized(action)),
        Announcement::SessionEnded(hash) => write!(out, "s{}", sanitized(hash)),
        Announcement::Resync => write!(out, "*"),
    };
}

/// `text` with anything but ASCII letters, digits and `_` replaced, so it
/// cannot break a payload's tokens (actions are GraphQL names, hashes hex).
fn sanitized(text: &str) -> std::borrow::Cow<'_, str> {
    if text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return text.into();
    }
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect::<String>().into()
}

/// The payload of `pending`, or a resync when it would be too long.
pub(super) fn payload(pending: &[Announcement]) -> String {
    let mut out = String::new();
    for a in pending {
        encode_into(&mut out, a);
    }
    if out.len() > MAX_PAYLOAD { "*".into() } else { out }
}

/// The payload of `pending` followed by the start of the token of an audit
/// event of `site` written by `action`; its insert appends the event's id.
pub(super) fn audit_prefix(pending: &[Announcement], site: SiteId, action: &str) -> String {
    let mut out = payload(pending);
    let token = Announcement::Audit { site, id: 0, action: action.to_string() };
    encode_into(&mut out, &token);
    out.pop(); // the placeholder id
    out
}

/// The announcements of a notification's payload; tokens it does not know
/// (from a later release, during an upgrade) are skipped.
pub fn decode(payload: &str) -> Vec<Announcement> {
    payload
        .split(' ')
        .filter_map(|token| {
            let (kind, rest) = token.split_at_checked(1)?;
            match kind {
                "p" => Some(Announcement::Pools(SiteId(rest.parse().ok()?))),
                "a" => {
                    let mut parts = rest.splitn(3, '.');
                    let site = SiteId(parts.next()?.parse().ok()?);
                    let action = parts.next()?.to_string();
                    let id = parts.next()?.parse().ok()?;
                    Some(Announcement::Audit { site, id, action })
                }
                "s" if !rest.is_empty() => Some(Announcement::SessionEnded(rest.to_string())),
                "*" => Some(Announcement::Resync),
                _ => None,
            }
        })
        .collect()
}

/// Listens on [`CHANNEL`] with a connection of its own (one per process)
/// and publishes every notification's announcements on `changes`, until the
/// returned task is aborted. A lost connection is opened again; what was
/// announced meanwhile is lost, so once it listens again a
/// [`Announcement::Resync`] follows.
pub async fn listen(url: &str, changes: Changes) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(tokio::spawn(async move {
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => changes.publish(decode(notification.payload()).into()),
                // Lost, and listening again already (sqlx reconnects before it says so).
                Ok(None) => {
                    tracing::warn!("the change listener's database connection was lost; listening again");
                    changes.publish([Announcement::Resync].into());
                }
                Err(error) => {
                    tracing::warn!(%error, "the change listener cannot reach the database; retrying");
                    listen_again(&mut listener).await;
                    tracing::info!("the change listener is listening again");
                    changes.publish([Announcement::Resync].into());
                }
            }
        }
    }))
}

/// Connects `listener` again and listens on [`CHANNEL`], trying until it
/// does, a little longer between tries each time (up to 2 s).
async fn listen_again(listener: &mut sqlx::postgres::PgListener) {
    for attempt in 1u64.. {
        tokio::time::sleep(std::time::Duration::from_millis(250 * attempt.min(8))).await;
        // `UNLISTEN *` first: the channel list sqlx keeps (and listens to on
        // reconnecting) then holds the channel once.
        if listener.unlisten_all().await.is_ok() && listener.listen(CHANNEL).await.is_ok() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_survive_their_payload() {
        let all = vec![
            Announcement::Pools(SiteId(7)),
            Announcement::SessionEnded("ab12".into()),
            Announcement::Audit { site: SiteId(7), id: 42, action: "changeLoginProfile".into() },
            Announcement::Resync,
        ];
        assert_eq!(decode(&payload(&all)), all);
        let prefix = audit_prefix(&all[..1], SiteId(3), "signOut");
        assert_eq!(prefix, "p7 a3.signOut.");
        assert_eq!(
            decode(&format!("{prefix}99 x1 a1.b")),
            vec![
                Announcement::Pools(SiteId(7)),
                Announcement::Audit { site: SiteId(3), id: 99, action: "signOut".into() }
            ]
        );
    }

    #[test]
    fn a_payload_too_long_for_postgresql_asks_for_a_resync() {
        let many: Vec<_> = (0..2000).map(|n| Announcement::Pools(SiteId(n))).collect();
        assert_eq!(payload(&many), "*");
    }
}
