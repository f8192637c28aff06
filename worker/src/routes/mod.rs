pub mod auth;
pub mod files;
pub mod orgs;
pub mod projects;
pub mod versions;
