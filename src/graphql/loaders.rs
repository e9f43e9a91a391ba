//! DataLoaders, built per request (a loader kept in schema data would cache
//! across users). One loader type serves every relation a list fans out to,
//! each key type one batched statement.

use std::collections::HashMap;
use std::hash::Hash;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};

use crate::domain::*;
use crate::service::ServiceError;
use crate::store::{Parent, PersonFilter, Rows, Slice, Store, StoreResult, UserFilter};

/// The live login of a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LoginOfPerson(pub PersonId);
/// The modules of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModulesOfProfile(pub ProfileId);
/// The pools of a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PoolsOfSite(pub SiteId);
/// The agreement of a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AgreementOfSite(pub SiteId);

/// The lines of a license order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinesOfOrder(pub OrderId);
/// The lines of a change request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinesOfRequest(pub RequestId);
/// What a person is responsible for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponsibilitiesOf(pub PersonId);

/// Batches reads of one request through that request's counting store.
pub struct StoreLoader {
    pub store: Store,
}

pub type Loaders = DataLoader<StoreLoader, HashMapCache>;

pub fn loaders(store: Store) -> Loaders {
    // Cached for the request only: the loader dies with the request.
    DataLoader::with_cache(StoreLoader { store }, tokio::spawn, HashMapCache::default())
}

/// Forgets everything `loaders` hold but modules (which change only with a
/// release). A subscription's loaders live as long as it does: cleared
/// before each event, they answer nothing older than the event, and do not
/// grow over hours. Every key type of [`StoreLoader`] but `ModuleId` is here.
pub fn forget_all_but_modules(loaders: &Loaders) {
    loaders.clear::<PersonId>();
    loaders.clear::<LoginId>();
    loaders.clear::<ProfileId>();
    loaders.clear::<SiteId>();
    loaders.clear::<OrderId>();
    loaders.clear::<RequestId>();
    loaders.clear::<LinesOfOrder>();
    loaders.clear::<LinesOfRequest>();
    loaders.clear::<ResponsibilitiesOf>();
    loaders.clear::<LoginOfPerson>();
    loaders.clear::<ModulesOfProfile>();
    loaders.clear::<PoolsOfSite>();
    loaders.clear::<AgreementOfSite>();
}

macro_rules! by_id {
    ($key:ty, $value:ty, $method:ident, $id:ident) => {
        impl Loader<$key> for StoreLoader {
            type Value = $value;
            type Error = ServiceError;
            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, $value>, ServiceError> {
                Ok(self.store.$method(keys).await?.into_iter().map(|v| (v.$id, v)).collect())
            }
        }
    };
}

by_id!(PersonId, Person, people_by_ids, id);
by_id!(LoginId, Login, logins_by_ids, id);
by_id!(ProfileId, Profile, profiles_by_ids, id);
by_id!(ModuleId, Module, modules_by_ids, id);
by_id!(SiteId, Site, sites_by_ids, id);
by_id!(OrderId, LicenseOrder, orders_by_ids, id);
by_id!(RequestId, ChangeRequest, requests_by_ids, id);

/// Loads a map-valued relation keyed by a wrapper of an id.
macro_rules! grouped {
    ($key:ident, $id:ty, $value:ty, $method:ident) => {
        impl Loader<$key> for StoreLoader {
            type Value = $value;
            type Error = ServiceError;
            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, $value>, ServiceError> {
                let ids: Vec<$id> = keys.iter().map(|k| k.0).collect();
                Ok(self.store.$method(&ids).await?.into_iter().map(|(k, v)| ($key(k), v)).collect())
            }
        }
    };
}

grouped!(LinesOfOrder, OrderId, Vec<TotalLine>, order_lines);
grouped!(LinesOfRequest, RequestId, Vec<TotalLine>, request_lines);
grouped!(ResponsibilitiesOf, PersonId, Vec<Responsibility>, responsibilities_of);

impl Loader<LoginOfPerson> for StoreLoader {
    type Value = Login;
    type Error = ServiceError;
    async fn load(&self, keys: &[LoginOfPerson]) -> Result<HashMap<LoginOfPerson, Login>, ServiceError> {
        let ids: Vec<PersonId> = keys.iter().map(|k| k.0).collect();
        Ok(self.store.logins_by_people(&ids).await?.into_iter().map(|l| (LoginOfPerson(l.person_id), l)).collect())
    }
}

impl Loader<ModulesOfProfile> for StoreLoader {
    type Value = Vec<Module>;
    type Error = ServiceError;
    async fn load(&self, keys: &[ModulesOfProfile]) -> Result<HashMap<ModulesOfProfile, Vec<Module>>, ServiceError> {
        let ids: Vec<ProfileId> = keys.iter().map(|k| k.0).collect();
        Ok(self.store.modules_of_profiles(&ids).await?.into_iter().map(|(p, m)| (ModulesOfProfile(p), m)).collect())
    }
}

impl Loader<PoolsOfSite> for StoreLoader {
    type Value = Vec<Pool>;
    type Error = ServiceError;
    async fn load(&self, keys: &[PoolsOfSite]) -> Result<HashMap<PoolsOfSite, Vec<Pool>>, ServiceError> {
        let ids: Vec<SiteId> = keys.iter().map(|k| k.0).collect();
        let mut map: HashMap<PoolsOfSite, Vec<Pool>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for pool in self.store.pools_by_sites(&ids).await? {
            map.entry(PoolsOfSite(pool.site_id)).or_default().push(pool);
        }
        Ok(map)
    }
}

impl Loader<AgreementOfSite> for StoreLoader {
    type Value = Agreement;
    type Error = ServiceError;
    async fn load(&self, keys: &[AgreementOfSite]) -> Result<HashMap<AgreementOfSite, Agreement>, ServiceError> {
        let ids: Vec<SiteId> = keys.iter().map(|k| k.0).collect();
        Ok(self.store.agreements_by_sites(&ids).await?.into_iter().map(|a| (AgreementOfSite(a.site_id), a)).collect())
    }
}

/// A module by its code (the `module` filter of lists of users).
impl Loader<ModuleCode> for StoreLoader {
    type Value = Module;
    type Error = ServiceError;
    async fn load(&self, keys: &[ModuleCode]) -> Result<HashMap<ModuleCode, Module>, ServiceError> {
        // The modules are a handful of rows: read them all.
        let modules = self.store.modules().await?;
        Ok(keys
            .iter()
            .filter_map(|k| Some((k.clone(), modules.iter().find(|m| m.code == k.as_str())?.clone())))
            .collect())
    }
}

/// What a connection below an object (a site's people, a profile's users)
/// reads for one parent: `query`, of the parent with id `parent`. The
/// loader reads it for every parent asking the same `query` within its
/// batching window in one statement; a parent of a list that named its
/// items ([`crate::graphql::context::RequestContext::nested`]) needs no window.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nested<Q> {
    pub parent: i64,
    pub query: Q,
}

/// A read asked of many parents at once.
pub trait NestedQuery: Clone + Eq + Hash + Send + Sync + 'static {
    type Value: Clone + Send + Sync + 'static;
    /// What kind of object the parents are.
    fn parent(&self) -> Parent;
    /// The value of each of `parents`, in one statement.
    fn read(
        &self,
        store: &Store,
        parents: &[i64],
    ) -> impl Future<Output = StoreResult<HashMap<i64, Self::Value>>> + Send;
}

impl<Q: NestedQuery> Loader<Nested<Q>> for StoreLoader {
    type Value = Q::Value;
    type Error = ServiceError;
    async fn load(&self, keys: &[Nested<Q>]) -> Result<HashMap<Nested<Q>, Q::Value>, ServiceError> {
        let mut asked: HashMap<&Q, Vec<i64>> = HashMap::new();
        for key in keys {
            asked.entry(&key.query).or_default().push(key.parent);
        }
        let mut values = HashMap::new();
        for (query, parents) in asked {
            for (parent, value) in query.read(&self.store, &parents).await? {
                values.insert(Nested { parent, query: query.clone() }, value);
            }
        }
        Ok(values)
    }
}

/// A page of the users of sites or profiles.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UsersPage {
    pub of: Parent,
    pub filter: UserFilter,
    pub slice: Slice<String>,
}

impl NestedQuery for UsersPage {
    type Value = Rows<(Login, Person)>;
    fn parent(&self) -> Parent {
        self.of
    }
    async fn read(&self, store: &Store, parents: &[i64]) -> StoreResult<HashMap<i64, Self::Value>> {
        store.users_pages(self.of, parents, &self.filter, &self.slice).await
    }
}

/// How many users sites or profiles have.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UsersCount {
    pub of: Parent,
    pub filter: UserFilter,
}

impl NestedQuery for UsersCount {
    type Value = i64;
    fn parent(&self) -> Parent {
        self.of
    }
    async fn read(&self, store: &Store, parents: &[i64]) -> StoreResult<HashMap<i64, i64>> {
        store.users_counts(self.of, parents, &self.filter).await
    }
}

/// A page of the people of sites.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeoplePage {
    pub filter: PersonFilter,
    pub slice: Slice<(String, i64)>,
}

impl NestedQuery for PeoplePage {
    type Value = Rows<Person>;
    fn parent(&self) -> Parent {
        Parent::Site
    }
    async fn read(&self, store: &Store, sites: &[i64]) -> StoreResult<HashMap<i64, Self::Value>> {
        store.people_pages(sites, &self.filter, &self.slice).await
    }
}

/// How many people sites have.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeopleCount {
    pub filter: PersonFilter,
}

impl NestedQuery for PeopleCount {
    type Value = i64;
    fn parent(&self) -> Parent {
        Parent::Site
    }
    async fn read(&self, store: &Store, sites: &[i64]) -> StoreResult<HashMap<i64, i64>> {
        store.people_counts(sites, &self.filter).await
    }
}
