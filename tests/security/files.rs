//! Stored files are data, never a page of Kiln's origin: every read of one (the working tree
//! and versions) carries `nosniff` and a sandboxing CSP, and what a browser would run is an
//! attachment.

use crate::{bearer, header, project};
use kiln_e2e::{register, shared, Kiln, User};
use serde_json::json;

const CSP: &str = "sandbox; default-src 'none'";

/// (path, content type it is written with, bytes, whether it must be an attachment)
const FILES: &[(&str, &str, &str, bool)] = &[
    (
        "x.html",
        "text/html",
        "<script>fetch('/api/me').then(r => r.text()).then(alert)</script>",
        true,
    ),
    (
        "logo.svg",
        "image/svg+xml",
        "<svg xmlns='http://www.w3.org/2000/svg' onload='alert(document.cookie)'/>",
        true,
    ),
    ("app.js", "text/javascript", "alert(document.domain)", true),
    ("notes.md", "text/markdown", "# Notes\n\nplain text", false),
    // The extension's case does not matter to a browser, nor here.
    (
        "PAGE.HTM",
        "text/plain",
        "<iframe src='/api/me'></iframe>",
        true,
    ),
];

#[track_caller]
fn assert_served_as_data(kiln: &Kiln, user: &User, url: &str, body: &str, attachment: bool) {
    let resp = kiln.raw("GET", url, &[bearer(&user.token)], None);
    assert_eq!(resp.status, 200, "{url}: {}", resp.text);
    assert_eq!(resp.text, body, "{url}");
    assert_eq!(
        resp.header("x-content-type-options"),
        Some("nosniff"),
        "{url}: {:?}",
        resp.headers
    );
    assert_eq!(
        resp.header("content-security-policy"),
        Some(CSP),
        "{url}: {:?}",
        resp.headers
    );
    let disposition = resp.header("content-disposition");
    if attachment {
        assert!(
            disposition.is_some_and(|d| d.trim().to_ascii_lowercase().starts_with("attachment")),
            "{url}: content-disposition {disposition:?}"
        );
    } else {
        assert_eq!(disposition, None, "{url}");
    }
}

#[test]
fn stored_files_are_served_as_sandboxed_data_in_the_tree_and_in_versions() {
    let kiln = shared();
    let owner = register(kiln, "files-data");
    let pid = project(kiln, &owner, "files as data");
    for (path, ct, body, _) in FILES {
        kiln.raw(
            "PUT",
            &format!("/api/projects/{pid}/files/{path}"),
            &[bearer(&owner.token), header("content-type", ct)],
            Some(body.as_bytes()),
        )
        .expect(201);
    }
    for (path, _, body, attachment) in FILES {
        let url = format!("/api/projects/{pid}/files/{path}");
        assert_served_as_data(kiln, &owner, &url, body, *attachment);
    }

    let v = kiln
        .post(
            &format!("/api/projects/{pid}/versions"),
            owner.token(),
            json!({}),
        )
        .expect(201);
    assert_eq!(v["number"], 1, "{v}");
    for (path, _, body, attachment) in FILES {
        let url = format!("/api/projects/{pid}/versions/1/files/{path}");
        assert_served_as_data(kiln, &owner, &url, body, *attachment);
    }
}
