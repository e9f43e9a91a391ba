//! What one request carries: its counting store, its loaders, and its
//! principal, resolved from the bearer token on first need (so `signIn` and
//! introspection cost no session lookup) through the server's session cache
//! (reads only; a mutation checks its session in the database, or, for a
//! change whose writes the session guards, in the statement that writes).

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use async_graphql::Context;
use async_graphql::dataloader::Loader;
use tokio::sync::OnceCell;

use super::loaders::{Loaders, ModulesOfProfile, Nested, NestedQuery, PoolsOfSite, StoreLoader, loaders};
use crate::domain::{Date, Module, Pool, Principal, Profile, ProfileId, SiteId};
use crate::observability::PrincipalKind;
use crate::service::{ServiceError, auth};
use crate::store::{Backend, Parent, SessionGuard, Store};

pub struct RequestContext {
    pub store: Store,
    pub loaders: Loaders,
    pub token: Option<String>,
    pub today: Date,
    pub sessions: Arc<auth::SessionCache>,
    /// The operation is a mutation: its session is checked in the database.
    pub mutation: bool,
    principal: OnceCell<Result<Principal, ServiceError>>,
    /// The kind of the principal [`RequestContext::guarded`] handed out, for the access line.
    guarded_kind: std::sync::OnceLock<PrincipalKind>,
    /// The parents lists of this request named, by kind ([`RequestContext::nested`]).
    listed: Mutex<HashMap<Parent, Arc<[i64]>>>,
    /// The nested reads for those parents, once each: by the query's type, a
    /// `HashMap<Q, Arc<OnceCell<HashMap<i64, Q::Value>>>>`.
    nested: Mutex<HashMap<TypeId, Box<dyn Any + Send>>>,
}

/// The nested reads of one query type, by query, each done once.
type NestedReads<Q> = HashMap<Q, Arc<OnceCell<HashMap<i64, <Q as NestedQuery>::Value>>>>;

impl RequestContext {
    pub fn new(store: Store, sessions: Arc<auth::SessionCache>, token: Option<String>, mutation: bool) -> Self {
        RequestContext {
            loaders: loaders(store.clone()),
            store,
            token,
            today: Date::today(),
            sessions,
            mutation,
            principal: OnceCell::new(),
            guarded_kind: std::sync::OnceLock::new(),
            listed: Mutex::new(HashMap::new()),
            nested: Mutex::new(HashMap::new()),
        }
    }

    /// Notes that a list of this request holds the parents `ids` (profiles
    /// of `profiles`, sites of `sites`), so that a connection below them
    /// reads for all of them at once ([`RequestContext::nested`]).
    pub fn list(&self, kind: Parent, ids: impl IntoIterator<Item = i64>) {
        let mut listed = self.listed.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<i64> = listed.get(&kind).map(|l| l.to_vec()).unwrap_or_default();
        all.extend(ids);
        all.sort_unstable();
        all.dedup();
        listed.insert(kind, all.into());
    }

    /// `query` (a connection's page, or its count) of the parent `parent`.
    /// For a parent a list named ([`RequestContext::list`]), the first to
    /// ask reads for every parent of its kind listed so far, in one
    /// statement, and the others wait for that read: one statement however
    /// many parents, and however slowly their resolvers run. Other parents
    /// go through the loader, which reads those asking within its batching
    /// window together.
    pub async fn nested<Q: NestedQuery>(&self, parent: i64, query: Q) -> Result<Option<Q::Value>, ServiceError>
    where
        StoreLoader: Loader<Nested<Q>, Value = Q::Value, Error = ServiceError>,
    {
        let listed = self.listed.lock().unwrap_or_else(|e| e.into_inner()).get(&query.parent()).cloned();
        if let Some(parents) = listed.filter(|p| p.contains(&parent)) {
            let read = {
                let mut nested = self.nested.lock().unwrap_or_else(|e| e.into_inner());
                let reads = nested.entry(TypeId::of::<Q>()).or_insert_with(|| Box::new(NestedReads::<Q>::new()));
                let reads = reads.downcast_mut::<NestedReads<Q>>().ok_or(ServiceError::Internal)?;
                reads.entry(query.clone()).or_default().clone()
            };
            let values = read.get_or_try_init(|| async { query.read(&self.store, &parents).await }).await?;
            // A parent listed after the read (by another list) is read on its own, below.
            if let Some(value) = values.get(&parent) {
                return Ok(Some(value.clone()));
            }
        }
        self.loaders.load_one(Nested { parent, query }).await
    }

    /// Loads `keys` now, in one statement, and puts the values in the
    /// request's loader cache, so the resolvers that follow find them there.
    /// List resolvers call this for the relations their selection asks for:
    /// the statement count is then fixed by the query's shape, and no load
    /// waits for the loader's batching delay or hops to another task.
    pub async fn prime<K>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<HashMap<K, <StoreLoader as Loader<K>>::Value>, ServiceError>
    where
        K: Send + Sync + Hash + Eq + Clone + 'static,
        StoreLoader: Loader<K, Error = ServiceError>,
    {
        let unique: HashSet<K> = keys.into_iter().collect();
        if unique.is_empty() {
            return Ok(HashMap::new());
        }
        let keys: Vec<K> = unique.into_iter().collect();
        let values = self.loaders.loader().load(&keys).await?;
        self.loaders.feed_many(values.clone()).await;
        Ok(values)
    }

    /// Profiles and their modules, in one statement, by profile.
    pub async fn profiles_with_modules(
        &self,
        ids: &[ProfileId],
    ) -> Result<HashMap<ProfileId, (Profile, Arc<Vec<Module>>)>, ServiceError> {
        let unique: HashSet<ProfileId> = ids.iter().copied().collect();
        if unique.is_empty() {
            return Ok(HashMap::new());
        }
        let unique: Vec<ProfileId> = unique.into_iter().collect();
        let rows = self.store.profiles_with_modules(&unique).await?;
        Ok(rows.into_iter().map(|(p, m)| (p.id, (p, Arc::new(m)))).collect())
    }

    /// Primes profiles and their modules with one statement.
    pub async fn prime_profiles_with_modules(&self, ids: &[ProfileId]) -> Result<(), ServiceError> {
        let rows = self.profiles_with_modules(ids).await?;
        self.loaders.feed_many(rows.iter().map(|(id, (_, m))| (ModulesOfProfile(*id), m.as_ref().clone()))).await;
        self.loaders.feed_many(rows.into_iter().map(|(id, (p, _))| (id, p))).await;
        Ok(())
    }

    /// A site's pools, with their modules primed, in one statement.
    pub async fn pools_with_modules(&self, site: SiteId) -> Result<Vec<Pool>, ServiceError> {
        let rows = self.store.pools_with_modules(site).await?;
        self.loaders.feed_many(rows.iter().map(|(_, m)| (m.id, m.clone()))).await;
        let pools: Vec<Pool> = rows.into_iter().map(|(p, _)| p).collect();
        self.loaders.feed_one(PoolsOfSite(site), pools.clone()).await;
        Ok(pools)
    }

    /// For a change whose every write goes with its audit event (see
    /// [`crate::store::SessionGuard`]): the principal of a site login's
    /// session this instance checked before, and a store on which that
    /// change writes only while the session still holds. No session lookup;
    /// when the guard fails, nothing was written and the caller decides
    /// again on [`RequestContext::principal`]. `None`: no such session here,
    /// or SQLite: there the lookup is a read outside the one writer's turn,
    /// and moving the check into that turn measured slower, so SQLite keeps
    /// the lookup (docs/decisions/0005).
    pub fn guarded(&self) -> Option<(Principal, Store)> {
        if self.store.backend() == Backend::Sqlite {
            return None;
        }
        let hash = auth::token_hash(self.token.as_deref()?);
        let principal = self.sessions.last_checked(&hash)?;
        let Principal::SiteLogin { login_id, site_id, username, name, is_admin, .. } = &principal else {
            return None;
        };
        let guard = SessionGuard {
            token_hash: hash,
            login_id: *login_id,
            site_id: *site_id,
            username: username.clone(),
            name: name.clone(),
            is_admin: *is_admin,
            today: self.today,
        };
        let store = self.store.guarded(guard);
        let _ = self.guarded_kind.set(PrincipalKind::of(&principal));
        Some((principal, store))
    }

    /// Takes `principal`, who just signed in, as this request's principal
    /// when the request had none resolved yet, so what the request reads of
    /// the new session's viewer is decided for that principal.
    pub fn adopt(&self, principal: Principal) {
        let _ = self.principal.set(Ok(principal));
    }

    /// The signed-in principal, or `UNAUTHENTICATED`.
    pub async fn principal(&self) -> Result<&Principal, ServiceError> {
        let resolved = self
            .principal
            .get_or_init(|| async {
                match &self.token {
                    None => Err(ServiceError::Unauthenticated(
                        "send `Authorization: Bearer <token>`; get a token with the signIn mutation",
                    )),
                    Some(token) => auth::authenticate_cached(&self.store, &self.sessions, token, self.mutation).await,
                }
            })
            .await;
        resolved.as_ref().map_err(Clone::clone)
    }

    /// What kind of principal made the request, as far as the request
    /// resolved it (for the access line; never the token).
    pub fn principal_kind(&self) -> PrincipalKind {
        if self.token.is_none() {
            return PrincipalKind::Anonymous;
        }
        match self.principal.get() {
            Some(Ok(principal)) => PrincipalKind::of(principal),
            Some(Err(_)) => PrincipalKind::Unauthenticated,
            None => self.guarded_kind.get().copied().unwrap_or(PrincipalKind::Unchecked),
        }
    }
}

/// Shorthand for resolvers.
pub fn rc<'a>(ctx: &Context<'a>) -> &'a RequestContext {
    ctx.data_unchecked::<std::sync::Arc<RequestContext>>()
}
