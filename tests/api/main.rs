//! End-to-end tests of the REST API against a real workerd with local D1 and Durable Objects.

mod auth;
mod bad_input;
mod dashboard;
mod orgs;
mod projects;
mod tokens;
mod usage;
mod webhooks;
