pub mod auth;
pub mod files;
pub mod orgs;
pub mod preview;
pub mod projects;
pub mod tokens;
pub mod ui;
pub mod versions;
