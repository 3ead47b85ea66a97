//! saas-api: the HTTP service, its configuration and start-up.

pub mod admin_cli;
pub mod auth;
pub mod config;
pub mod consistency;
pub mod credentials;
pub mod dev_keys;
pub mod error;
pub mod extract;
pub mod gateway;
pub mod idempotency;
pub mod maintenance;
pub mod metrics;
pub mod openapi;
pub mod panel;
pub mod permissions;
pub mod request_schemas;
pub mod responses;
pub mod routes;
pub mod startup;
pub mod state;
pub mod team_auth;
pub mod telemetry;
