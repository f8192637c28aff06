//! End-to-end tests of a project's room: realtime editing over WebSockets, replay, the
//! working tree over REST, versions and export.

mod coedit;
mod files;
mod realtime;
mod versions;

use kiln_e2e::ws::{Auth, Socket};
use kiln_e2e::{register, Kiln, User};
use serde_json::{json, Value};

/// A project owned by a fresh user.
pub fn project(kiln: &Kiln, tag: &str) -> (User, String) {
    let owner = register(kiln, tag);
    let p = kiln
        .post("/api/projects", owner.token(), json!({ "name": tag }))
        .expect(201);
    (owner, p["id"].as_str().unwrap().to_owned())
}

/// Adds `role` members to the project owner's personal org.
pub fn add_member(kiln: &Kiln, owner: &User, tag: &str, role: &str) -> User {
    let u = register(kiln, tag);
    kiln_e2e::join_org(kiln, owner, &owner.personal_org, &u, role);
    u
}

/// A connected, live socket (said hello; got the state snapshot).
pub fn join(kiln: &Kiln, project: &str, user: &User) -> (Socket, Value) {
    let mut s = kiln
        .ws(project, Auth::Bearer(&user.token))
        .unwrap_or_else(|r| panic!("connect: {r:?}"));
    s.send(json!({ "type": "hello" }));
    let state = s.recv_type("state");
    (s, state)
}

pub fn edit(s: &mut Socket, path: &str, base_rev: u64, content: &str) {
    s.send(json!({ "type": "edit", "path": path, "base_rev": base_rev, "content": content }));
}

/// Encodes a project path for a URL, the way `encodeURIComponent` would per segment… and
/// also its slashes, so that no client-side URL normalisation can hide what is sent.
pub fn url_path(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out += &format!("%{b:02X}");
        }
    }
    out
}

/// Writes a file over REST (creating it) and returns its rev.
pub fn put(
    kiln: &Kiln,
    user: &User,
    project: &str,
    path: &str,
    content: &[u8],
    if_match: Option<u64>,
) -> kiln_e2e::Resp {
    let mut headers = vec![
        ("authorization".to_owned(), format!("Bearer {}", user.token)),
        (
            "content-type".to_owned(),
            "application/octet-stream".to_owned(),
        ),
    ];
    if let Some(rev) = if_match {
        headers.push(("if-match".to_owned(), rev.to_string()));
    }
    kiln.raw(
        "PUT",
        &format!("/api/projects/{project}/files/{}", url_path(path)),
        &headers,
        Some(content),
    )
}
