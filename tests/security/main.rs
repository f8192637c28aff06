//! End-to-end tests of the Worker's defences: cross-site requests refused, guessing and
//! flooding rate-limited, sockets that lose revoked rights at once, stored files served as
//! data, and peppered password hashes. Real requests against a real workerd; nothing mocked.

mod files;
mod limits;
mod origin;
mod passwords;
mod sockets;

use kiln_e2e::{Kiln, User};
use serde_json::json;

/// `authorization: Bearer <token>`.
pub fn bearer(token: &str) -> (String, String) {
    ("authorization".to_owned(), format!("Bearer {token}"))
}

/// `cookie: kiln_session=<token>`, as a browser sends the session cookie.
pub fn session_cookie(token: &str) -> (String, String) {
    ("cookie".to_owned(), format!("kiln_session={token}"))
}

pub fn header(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

/// A project named `name` in `owner`'s personal org.
pub fn project(kiln: &Kiln, owner: &User, name: &str) -> String {
    kiln.post("/api/projects", owner.token(), json!({ "name": name }))
        .expect(201)["id"]
        .as_str()
        .expect("project id")
        .to_owned()
}

/// The names of the projects `user` can see.
pub fn project_names(kiln: &Kiln, user: &User) -> Vec<String> {
    kiln.get("/api/projects?limit=100", user.token())
        .expect(200)["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect()
}
