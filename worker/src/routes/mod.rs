pub mod auth;
pub mod orgs;
pub mod projects;
