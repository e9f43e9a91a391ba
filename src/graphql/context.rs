//! What one request carries: its counting store, its loaders, and its
//! principal, resolved from the bearer token on first need (so `signIn` and
//! introspection cost no session lookup).

use async_graphql::Context;
use tokio::sync::OnceCell;

use super::loaders::{Loaders, loaders};
use crate::domain::{Date, Principal};
use crate::service::{ServiceError, auth};
use crate::store::Store;

pub struct RequestContext {
    pub store: Store,
    pub loaders: Loaders,
    pub token: Option<String>,
    pub today: Date,
    principal: OnceCell<Result<Principal, ServiceError>>,
}

impl RequestContext {
    pub fn new(store: Store, token: Option<String>) -> Self {
        RequestContext {
            loaders: loaders(store.clone()),
            store,
            token,
            today: Date::today(),
            principal: OnceCell::new(),
        }
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
                    Some(token) => auth::authenticate(&self.store, token).await,
                }
            })
            .await;
        resolved.as_ref().map_err(Clone::clone)
    }
}

/// Shorthand for resolvers.
pub fn rc<'a>(ctx: &Context<'a>) -> &'a RequestContext {
    ctx.data_unchecked::<RequestContext>()
}
