//! Puts refused authorizations of mutations (`FORBIDDEN`) on the audit
//! trail, with the rule that refused, so that every refused change is an
//! audit event — not only the refusals a mutation answers with as data.
//! Called once per mutation request with the finished response, so the
//! common path costs nothing (a schema extension would wrap every resolved
//! field).

use async_graphql::{PathSegment, Response, Value};

use super::context::RequestContext;
use super::error::codes;
use crate::service;

/// Records each FORBIDDEN error in `response`, the answer to a mutation.
pub async fn audit(rcx: &RequestContext, response: &Response) {
    let forbidden: Vec<_> = response
        .errors
        .iter()
        .filter(|e| e.extensions.as_ref().and_then(|x| x.get("code")) == Some(&Value::from(codes::FORBIDDEN)))
        .collect();
    if forbidden.is_empty() {
        return;
    }
    let Ok(principal) = rcx.principal().await else { return };
    for err in forbidden {
        let action = match err.path.first() {
            Some(PathSegment::Field(name)) => name.as_str(),
            _ => "",
        };
        let rule = match err.extensions.as_ref().and_then(|e| e.get("rule")) {
            Some(Value::String(rule)) => rule.as_str(),
            _ => "",
        };
        if let Err(e) = service::audit_denied(&rcx.store, principal, action, rule, &err.message).await {
            tracing::error!(?e, "could not record a refused authorization");
        }
    }
}
