//! HTTP integration tests: the real service on a random port, a fresh database per test.

mod accounts;
mod audit;
mod auth;
mod boundary;
mod faults;
mod gateway;
mod health;
mod helpers;
mod hostile;
mod idempotency;
mod litellm_sync;
mod model_groups;
mod operations;
mod organizations;
mod other_apis;
mod panel;
mod replay;
mod security;
mod spend_ingest;
mod startup;
mod teams;
mod usage;
mod webhooks;
