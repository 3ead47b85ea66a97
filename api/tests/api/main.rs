//! HTTP integration tests: the real service on a random port, a fresh database per test.

mod auth;
mod health;
mod helpers;
mod organizations;
mod startup;
