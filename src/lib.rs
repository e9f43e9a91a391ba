//! license-gateway: a policy-driven GraphQL gateway that decides who may use
//! which module and keeps every site inside the licenses it has bought.
//! Rules: `docs/domain.md` (R1–R13), cited by number in code and tests;
//! where each is enforced and tested: `docs/architecture.md`.

/// Configuration and start-up wiring.
pub mod app;
/// The client address of a request (socket or trusted proxy header).
pub mod client;
/// The benchmark dataset of `license-gateway generate`: a set-based bulk
/// load beside the store, used by that command and tests, never by a request.
pub mod dataset;
/// Domain values, principals and the policy layer (no HTTP, GraphQL or SQL).
pub mod domain;
/// The GraphQL schema: thin resolvers over the services.
pub mod graphql;
/// Router, auth extraction, playground, transport limits, subscriptions over WebSocket.
pub mod http;
/// Metrics at `/metrics`, the access line and request ids, log output.
pub mod observability;
/// Connections: accept loop, timeouts, connection cap, graceful shutdown.
pub mod server;
/// Use cases: policy + one transaction each + audit.
pub mod service;
/// All SQL, for SQLite and PostgreSQL.
pub mod store;
