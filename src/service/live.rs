//! Live changes for subscriptions: one hub per process turns what committed
//! (the announcements of `store::live`, from every instance on PostgreSQL)
//! into per-site feeds, and ends the connections whose session ended.
//!
//! The work per change does not grow with the subscribers: the hub reads a
//! changed site's pools once, in one statement for every site that changed
//! since its last read (so a burst of changes to one site costs one read),
//! and each audit event once, then hands the same values to every
//! subscriber of the site. Pools go through a `watch` channel: a subscriber
//! always gets the newest state, never an older one than it has (versions
//! only go up), and one that is slow skips states rather than queueing them.
//! Audit events go through a bounded `broadcast` channel: every event, in
//! order; a subscriber further behind than the bound is ended with an error
//! instead of holding memory.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{OnceCell, broadcast, watch};

use super::{ServiceError, ServiceResult, auth};
use crate::domain::{AuditRecord, Module, Person, PersonId, Pool, Principal, SiteId, now};
use crate::store::Store;
use crate::store::live::{Announcement, Announcements, Changes};

/// Most ids in one statement of the hub's reads.
const CHUNK: usize = 1000;
/// How long the hub waits before it reads again after a read failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What the hub needs to know besides the store.
#[derive(Clone, Copy)]
pub struct LiveSettings {
    /// Audit events a subscriber may fall behind before its subscription
    /// ends (with an error saying so).
    pub max_lag: usize,
    /// Whether an audit event of this action (a mutation's name) may have
    /// ended or changed sessions of its site, so that they are checked again.
    pub may_change_sessions: fn(&str) -> bool,
}

/// A site's pools as one read found them.
#[derive(Debug)]
pub struct SitePools {
    pub site: SiteId,
    /// The sum of the pools' versions: it grows with every change of any of
    /// them, so of two reads of a site the one with the higher is the newer.
    pub version: i64,
    pub pools: Vec<Pool>,
}

impl SitePools {
    fn new(site: SiteId, pools: Vec<Pool>) -> SitePools {
        SitePools { site, version: pools.iter().map(|p| p.version).sum(), pools }
    }
}

/// An audit event as written, with the people it names (its actor and the
/// person it was about), read once for every subscriber.
#[derive(Debug)]
pub struct AuditDelivery {
    pub event: AuditRecord,
    pub people: Vec<Person>,
}

/// Why an audit feed ended before its subscriber left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedEnded {
    /// The subscriber fell this many events behind.
    Lagged(u64),
    /// Events may have been missed (the database connection that brings
    /// them was lost): subscribe again, and read the trail for the gap.
    Interrupted,
}

/// Why a live connection's session no longer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnded {
    /// Signed out, expired, revoked, or its login or person deleted.
    Ended,
    /// Still valid, but its principal changed (a rename, rights, owned sites):
    /// what its subscriptions were allowed must be decided again.
    Changed,
}

/// The live-change hub of this process (cheap to clone).
#[derive(Clone)]
pub struct Live(Arc<Hub>);

struct Hub {
    store: Store,
    settings: LiveSettings,
    feeds: Mutex<Feeds>,
    /// Every module, read once (modules change only with a release).
    modules: OnceCell<Arc<Vec<Module>>>,
}

#[derive(Default)]
struct Feeds {
    pools: HashMap<SiteId, watch::Sender<Option<Arc<SitePools>>>>,
    audit: HashMap<SiteId, broadcast::Sender<Arc<AuditDelivery>>>,
    sessions: HashMap<u64, Arc<LiveSession>>,
    next_session: u64,
}

impl Live {
    /// Starts the hub on `store`, reading what commits from `changes`.
    /// Returns it and its task (abort the task to stop it).
    pub fn start(store: Store, changes: &Changes, settings: LiveSettings) -> (Live, tokio::task::JoinHandle<()>) {
        let hub = Arc::new(Hub { store, settings, feeds: Mutex::default(), modules: OnceCell::new() });
        let task = tokio::spawn(pump(hub.clone(), changes.subscribe()));
        (Live(hub), task)
    }

    /// Every module, for the subscribers' loaders (read once per process).
    pub async fn modules(&self) -> ServiceResult<Arc<Vec<Module>>> {
        let read =
            self.0.modules.get_or_try_init(|| async { Ok::<_, ServiceError>(Arc::new(self.0.store.modules().await?)) });
        Ok(read.await?.clone())
    }

    /// The feed of `site`'s pools: first their state now, then every newer
    /// one. The first subscriber of a site reads it; the others share it.
    pub async fn pools(&self, site: SiteId) -> ServiceResult<PoolsFeed> {
        let (receiver, known) = {
            let mut feeds = self.0.lock();
            let sender = feeds.pools.entry(site).or_insert_with(|| watch::channel(None).0);
            let known = sender.borrow().is_some();
            (sender.subscribe(), known)
        };
        let mut feed = PoolsFeed { receiver, _release: Release { hub: self.0.clone(), site, kind: FeedKind::Pools } };
        if !known {
            let pools = self.0.store.pools_by_sites(&[site]).await?;
            self.0.publish_pools(SitePools::new(site, pools));
        }
        feed.receiver.mark_changed();
        Ok(feed)
    }

    /// The feed of `site`'s audit events from now on.
    pub fn audit(&self, site: SiteId) -> AuditFeed {
        let mut feeds = self.0.lock();
        let capacity = self.0.settings.max_lag;
        let sender = feeds.audit.entry(site).or_insert_with(|| broadcast::channel(capacity.max(1)).0);
        let receiver = sender.subscribe();
        AuditFeed { receiver, _release: Release { hub: self.0.clone(), site, kind: FeedKind::Audit } }
    }

    /// Checks `token` in the database now and registers its session, so it
    /// learns when the session ends (see [`Registration::ended`]).
    pub async fn connect(&self, token: &str) -> ServiceResult<Registration> {
        let token_hash = auth::token_hash(token);
        let (principal, until) = auth::authenticate_until(&self.0.store, &token_hash).await?;
        let session = Arc::new(LiveSession {
            token_hash,
            principal,
            until: AtomicI64::new(until),
            ended: watch::channel(None).0,
        });
        let id = {
            let mut feeds = self.0.lock();
            feeds.next_session += 1;
            let id = feeds.next_session;
            feeds.sessions.insert(id, session.clone());
            id
        };
        Ok(Registration { hub: self.0.clone(), id, session })
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, Feeds> {
        self.feeds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `state` to the site's subscribers, unless they have it or a
    /// newer one (a read that finished late).
    fn publish_pools(&self, state: SitePools) {
        let feeds = self.lock();
        let Some(sender) = feeds.pools.get(&state.site) else { return };
        sender.send_if_modified(|current| {
            let newer = current.as_ref().is_none_or(|c| state.version > c.version);
            if newer {
                *current = Some(Arc::new(state));
            }
            newer
        });
    }

    /// Reads the pools of `sites` that still have subscribers, and hands
    /// each site's state to them.
    async fn refresh_pools(&self, sites: &HashSet<SiteId>) -> ServiceResult<()> {
        let watched: Vec<SiteId> = {
            let feeds = self.lock();
            sites.iter().copied().filter(|s| feeds.pools.contains_key(s)).collect()
        };
        for chunk in watched.chunks(CHUNK) {
            let mut by_site: HashMap<SiteId, Vec<Pool>> = chunk.iter().map(|s| (*s, Vec::new())).collect();
            for pool in self.store.pools_by_sites(chunk).await? {
                by_site.entry(pool.site_id).or_default().push(pool);
            }
            for (site, pools) in by_site {
                self.publish_pools(SitePools::new(site, pools));
            }
        }
        Ok(())
    }

    /// Reads the audit events of `events` whose site has subscribers, with
    /// the people they name, and hands each to its site's subscribers.
    async fn deliver_audit(&self, events: &[(SiteId, i64)]) -> ServiceResult<()> {
        let ids: Vec<i64> = {
            let feeds = self.lock();
            events.iter().filter(|(site, _)| feeds.audit.contains_key(site)).map(|(_, id)| *id).collect()
        };
        for chunk in ids.chunks(CHUNK) {
            let records = self.store.audit_events_by_ids(chunk).await?;
            let named: HashSet<PersonId> =
                records.iter().flat_map(|r| r.actor.person.into_iter().chain(r.target_person)).collect();
            let people = if named.is_empty() {
                Vec::new()
            } else {
                self.store.people_by_ids(&named.into_iter().collect::<Vec<_>>()).await?
            };
            let feeds = self.lock();
            for event in records {
                let Some(sender) = event.site_id.and_then(|site| feeds.audit.get(&site)) else { continue };
                let mine = |p: &&Person| Some(p.id) == event.actor.person || Some(p.id) == event.target_person;
                let people = people.iter().filter(mine).cloned().collect();
                let _ = sender.send(Arc::new(AuditDelivery { event, people }));
            }
        }
        Ok(())
    }

    /// Ends the sessions whose token hashes to one of `hashes`.
    fn end_sessions(&self, hashes: &HashSet<String>) {
        let feeds = self.lock();
        for session in feeds.sessions.values().filter(|s| hashes.contains(&s.token_hash)) {
            session.end(SessionEnded::Ended);
        }
    }

    /// The sessions a change on `sites` may have ended or changed: site
    /// logins of those sites, and every owner (an agreement may have moved
    /// to or from one). `None`: every session.
    fn sessions_of(&self, sites: Option<&HashSet<SiteId>>) -> Vec<Arc<LiveSession>> {
        let feeds = self.lock();
        let touched = |p: &Principal| match (p, sites) {
            (_, None) => true,
            (Principal::SiteLogin { site_id, .. }, Some(sites)) => sites.contains(site_id),
            (Principal::Owner { .. }, Some(_)) => true,
            (Principal::Operator { .. }, Some(_)) => false,
        };
        feeds.sessions.values().filter(|s| touched(&s.principal)).cloned().collect()
    }

    /// Checks `sessions` in the database again, each token once: ends those
    /// that no longer work or whose principal changed, and moves the
    /// others' end to what the database says now. One whose check failed
    /// (the database unavailable) is left as it is.
    async fn recheck(&self, sessions: Vec<Arc<LiveSession>>) {
        let mut by_token: HashMap<String, Vec<Arc<LiveSession>>> = HashMap::new();
        for session in sessions {
            by_token.entry(session.token_hash.clone()).or_default().push(session);
        }
        for (hash, sessions) in by_token {
            match auth::authenticate_until(&self.store, &hash).await {
                Ok((principal, until)) => {
                    for session in sessions {
                        if session.principal == principal {
                            session.until.store(until, Ordering::Relaxed);
                        } else {
                            session.end(SessionEnded::Changed);
                        }
                    }
                }
                Err(ServiceError::Unauthenticated(_)) => sessions.iter().for_each(|s| s.end(SessionEnded::Ended)),
                Err(e) => tracing::warn!(error = ?e, "could not check a live session again; keeping it for now"),
            }
        }
    }

    /// Something may have been missed: every watched site's pools are read
    /// again, every audit feed ends (its subscribers learn so), and every
    /// session is checked again.
    fn everything_again(&self, work: &mut Work) {
        let mut feeds = self.lock();
        work.pools.extend(feeds.pools.keys().copied());
        // Dropping the senders ends their subscribers' feeds with `Interrupted`.
        feeds.audit.clear();
        work.recheck_all = true;
    }
}

/// What one pass of the hub does, gathered from the batches that came in
/// since the last pass.
#[derive(Default)]
struct Work {
    pools: HashSet<SiteId>,
    audit: Vec<(SiteId, i64)>,
    ended: HashSet<String>,
    recheck: HashSet<SiteId>,
    recheck_all: bool,
    resync: bool,
}

impl Work {
    fn add(&mut self, batch: &[Announcement], settings: &LiveSettings) {
        for announcement in batch {
            match announcement {
                Announcement::Pools(site) => {
                    self.pools.insert(*site);
                }
                Announcement::Audit { site, id, action } => {
                    self.audit.push((*site, *id));
                    if (settings.may_change_sessions)(action) {
                        self.recheck.insert(*site);
                    }
                }
                Announcement::SessionEnded(hash) => {
                    self.ended.insert(hash.clone());
                }
                Announcement::Resync => self.resync = true,
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.pools.is_empty()
            && self.audit.is_empty()
            && self.ended.is_empty()
            && self.recheck.is_empty()
            && !self.recheck_all
            && !self.resync
    }
}

/// The hub's loop: waits for committed changes, takes every batch that came
/// in meanwhile, and does their work in one pass (so changes that come
/// faster than it reads are folded together). Reads that fail are tried
/// again with what comes next, after [`RETRY_AFTER`].
async fn pump(hub: Arc<Hub>, mut changes: broadcast::Receiver<Announcements>) {
    let mut work = Work::default();
    // One check of sessions at a time (each is a statement per session); what
    // asks for another meanwhile waits for it, folded together.
    let mut rechecking: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        // Work left over (a read failed) is tried again with what comes next, or after a pause.
        let next = if work.is_empty() {
            Some(changes.recv().await)
        } else {
            tokio::time::timeout(RETRY_AFTER, changes.recv()).await.ok()
        };
        match next {
            Some(Ok(batch)) => work.add(&batch, &hub.settings),
            Some(Err(broadcast::error::RecvError::Lagged(missed))) => {
                tracing::warn!(
                    missed,
                    "live subscriptions fell behind the committed changes; reading everything again"
                );
                work.resync = true;
            }
            Some(Err(broadcast::error::RecvError::Closed)) => return,
            None => {}
        }
        loop {
            match changes.try_recv() {
                Ok(batch) => work.add(&batch, &hub.settings),
                Err(broadcast::error::TryRecvError::Lagged(_)) => work.resync = true,
                Err(_) => break,
            }
        }
        if std::mem::take(&mut work.resync) {
            hub.everything_again(&mut work);
        }
        if !work.ended.is_empty() {
            hub.end_sessions(&std::mem::take(&mut work.ended));
        }
        let idle = rechecking.as_ref().is_none_or(|task| task.is_finished());
        if idle && (work.recheck_all || !work.recheck.is_empty()) {
            let (recheck, all) = (std::mem::take(&mut work.recheck), std::mem::take(&mut work.recheck_all));
            let sessions = hub.sessions_of((!all).then_some(&recheck));
            let hub = hub.clone();
            rechecking = Some(tokio::spawn(async move { hub.recheck(sessions).await }));
        }
        if !work.pools.is_empty() {
            match hub.refresh_pools(&work.pools).await {
                Ok(()) => work.pools.clear(),
                Err(e) => tracing::warn!(error = ?e, "could not read changed pools for live subscribers; retrying"),
            }
        }
        if !work.audit.is_empty() {
            match hub.deliver_audit(&work.audit).await {
                Ok(()) => work.audit.clear(),
                Err(e) => tracing::warn!(error = ?e, "could not read new audit events for live subscribers; retrying"),
            }
        }
    }
}

/// A subscriber's feed of a site's pools.
pub struct PoolsFeed {
    receiver: watch::Receiver<Option<Arc<SitePools>>>,
    _release: Release,
}

impl PoolsFeed {
    /// The site's state: at first the current one, then each newer one
    /// (states that came while the subscriber was busy are skipped). `None`
    /// when the hub stopped.
    pub async fn next(&mut self) -> Option<Arc<SitePools>> {
        loop {
            self.receiver.changed().await.ok()?;
            if let Some(state) = self.receiver.borrow_and_update().clone() {
                return Some(state);
            }
        }
    }
}

/// A subscriber's feed of a site's audit events.
pub struct AuditFeed {
    receiver: broadcast::Receiver<Arc<AuditDelivery>>,
    _release: Release,
}

impl AuditFeed {
    /// The next event written on the site's trail, or why the feed ended.
    pub async fn next(&mut self) -> Result<Arc<AuditDelivery>, FeedEnded> {
        match self.receiver.recv().await {
            Ok(delivery) => Ok(delivery),
            Err(broadcast::error::RecvError::Lagged(missed)) => Err(FeedEnded::Lagged(missed)),
            Err(broadcast::error::RecvError::Closed) => Err(FeedEnded::Interrupted),
        }
    }
}

#[derive(Clone, Copy)]
enum FeedKind {
    Pools,
    Audit,
}

/// Drops a site's feed when its last subscriber leaves.
struct Release {
    hub: Arc<Hub>,
    site: SiteId,
    kind: FeedKind,
}

impl Drop for Release {
    fn drop(&mut self) {
        // The feeds hold their receiver before this, so the leaving
        // subscriber's is gone already; subscribing takes the same lock.
        let mut feeds = self.hub.lock();
        match self.kind {
            FeedKind::Pools => {
                if feeds.pools.get(&self.site).is_some_and(|s| s.receiver_count() == 0) {
                    feeds.pools.remove(&self.site);
                }
            }
            FeedKind::Audit => {
                if feeds.audit.get(&self.site).is_some_and(|s| s.receiver_count() == 0) {
                    feeds.audit.remove(&self.site);
                }
            }
        }
    }
}

/// The session of a live connection, as checked when it connected.
pub struct LiveSession {
    token_hash: String,
    principal: Principal,
    /// When the session stops working by itself (unix seconds).
    until: AtomicI64,
    ended: watch::Sender<Option<SessionEnded>>,
}

impl LiveSession {
    fn end(&self, why: SessionEnded) {
        self.ended.send_if_modified(|ended| {
            let first = ended.is_none();
            if first {
                *ended = Some(why);
            }
            first
        });
    }
}

/// A live connection's session, registered with the hub until dropped.
pub struct Registration {
    hub: Arc<Hub>,
    id: u64,
    session: Arc<LiveSession>,
}

impl Registration {
    /// The principal the session had when the connection began.
    pub fn principal(&self) -> &Principal {
        &self.session.principal
    }

    /// Completes when the session no longer holds: ended through this or
    /// another instance, or run out (at its end it is checked again, since
    /// its login's last day may have moved).
    pub async fn ended(&self) -> SessionEnded {
        let mut ended = self.session.ended.subscribe();
        loop {
            let left = self.session.until.load(Ordering::Relaxed) - now();
            // A day at most: the end may move meanwhile.
            let wait = Duration::from_secs(left.clamp(0, 86_400) as u64);
            tokio::select! {
                why = async { ended.wait_for(Option::is_some).await.ok().and_then(|w| *w) } => {
                    return why.unwrap_or(SessionEnded::Ended);
                }
                () = tokio::time::sleep(wait) => {
                    if left <= 86_400 {
                        self.hub.recheck(vec![self.session.clone()]).await;
                        if self.session.until.load(Ordering::Relaxed) <= now() && self.session.ended.borrow().is_none() {
                            // The check itself failed: try again a little later.
                            self.session.until.store(now() + 5, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.lock().sessions.remove(&self.id);
    }
}
