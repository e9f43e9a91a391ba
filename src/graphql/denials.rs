//! Puts refused authorizations of mutations (`FORBIDDEN`) on the audit
//! trail, with the rule that refused, so that every refused change is an
//! audit event — not only the refusals a mutation answers with as data.
//! It looks once per request at the finished response, so it costs nothing
//! per resolved field.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{PathSegment, Response, ServerResult, Value, Variables};

use super::context::RequestContext;
use super::error::codes;
use crate::service;

/// The extension factory to register on the schema (one instance per request).
pub struct AuditDenials;

impl ExtensionFactory for AuditDenials {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AuditDenialsExtension { mutation: AtomicBool::new(false) })
    }
}

struct AuditDenialsExtension {
    mutation: AtomicBool,
}

#[async_graphql::async_trait::async_trait]
impl Extension for AuditDenialsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let mutation = document.operations.iter().any(|(_, op)| op.node.ty == OperationType::Mutation);
        self.mutation.store(mutation, Ordering::Relaxed);
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = next.run(ctx, operation_name).await;
        if !self.mutation.load(Ordering::Relaxed) {
            return response;
        }
        let Some(rcx) = ctx.data_opt::<RequestContext>() else {
            return response;
        };
        for err in &response.errors {
            let ext = err.extensions.as_ref();
            if ext.and_then(|e| e.get("code")) != Some(&Value::from(codes::FORBIDDEN)) {
                continue;
            }
            let Ok(principal) = rcx.principal().await else { continue };
            let action = match err.path.first() {
                Some(PathSegment::Field(name)) => name.clone(),
                _ => String::new(),
            };
            let rule = match ext.and_then(|e| e.get("rule")) {
                Some(Value::String(rule)) => rule.clone(),
                _ => String::new(),
            };
            if let Err(e) = service::audit_denied(&rcx.store, principal, &action, &rule, &err.message).await {
                tracing::error!(?e, "could not record a refused authorization");
            }
        }
        response
    }
}
