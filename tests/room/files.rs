use kiln_e2e::ws::Auth;
use kiln_e2e::{register, shared};
use serde_json::json;

use crate::{add_member, edit, join, project, put, url_path};

fn file_count(kiln: &kiln_e2e::Kiln, user: &kiln_e2e::User, pid: &str) -> usize {
    kiln.get(&format!("/api/projects/{pid}/files"), user.token())
        .expect(200)["items"]
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn files_over_rest_use_revs_like_the_socket() {
    let kiln = shared();
    let (owner, pid) = project(kiln, "rest-files");
    let (mut watcher, _) = join(kiln, &pid, &owner);

    let created = put(kiln, &owner, &pid, "src/App.tsx", b"export {}", None).expect(201);
    assert_eq!(created["rev"], 1);
    assert_eq!(created["size"], 9);
    let ev = watcher.recv_type("file_edited");
    assert_eq!(
        (ev["path"].as_str(), ev["rev"].as_u64()),
        (Some("src/App.tsx"), Some(1))
    );

    // Overwriting needs If-Match; a stale one is refused with the current rev.
    put(kiln, &owner, &pid, "src/App.tsx", b"x", None).expect_error(428, "precondition_required");
    let stale =
        put(kiln, &owner, &pid, "src/App.tsx", b"x", Some(0)).expect_error(412, "rev_mismatch");
    assert_eq!(stale["error"]["current_rev"], 1);
    put(
        kiln,
        &owner,
        &pid,
        "src/App.tsx",
        b"export const a = 1",
        Some(1),
    )
    .expect(200);

    let read = kiln.get(
        &format!("/api/projects/{pid}/files/src/App.tsx"),
        owner.token(),
    );
    assert_eq!(read.status, 200);
    assert_eq!(read.text, "export const a = 1");
    assert_eq!(read.header("x-kiln-rev"), Some("2"));

    // Binary content round-trips and is announced as base64.
    let png: Vec<u8> = vec![0x89, b'P', b'N', b'G', 0, 255, 254, 10];
    put(kiln, &owner, &pid, "public/logo.png", &png, None).expect(201);
    let ev = watcher.recv_type("file_edited");
    let ev = if ev["path"] == "public/logo.png" {
        ev
    } else {
        watcher.recv_type("file_edited")
    };
    assert_eq!(ev["encoding"], "base64");
    let mut headers = vec![(
        "authorization".to_owned(),
        format!("Bearer {}", owner.token),
    )];
    let raw = kiln.raw(
        "GET",
        &format!("/api/projects/{pid}/files/public/logo.png"),
        &headers,
        None,
    );
    assert_eq!(raw.header("content-type"), Some("image/png"));

    let tree = kiln
        .get(&format!("/api/projects/{pid}/files"), owner.token())
        .expect(200);
    let items = tree["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["path"], "public/logo.png");
    assert_eq!(items[1]["rev"], 2);
    assert_eq!(items[1]["sha256"].as_str().unwrap().len(), 64);

    headers.push(("if-match".to_owned(), "1".to_owned()));
    kiln.raw(
        "DELETE",
        &format!("/api/projects/{pid}/files/public/logo.png"),
        &headers,
        None,
    )
    .expect(204);
    kiln.get(
        &format!("/api/projects/{pid}/files/public/logo.png"),
        owner.token(),
    )
    .expect_error(404, "not_found");
    // Re-creating a deleted path continues its revs.
    let again = put(kiln, &owner, &pid, "public/logo.png", b"new", Some(2)).expect(201);
    assert_eq!(again["rev"], 3);
}

#[test]
fn traversal_and_malformed_paths_are_refused_everywhere() {
    let kiln = shared();
    let (owner, pid) = project(kiln, "traversal");
    put(kiln, &owner, &pid, "keep.txt", b"keep", None).expect(201);
    let long = "n".repeat(600);
    let bad = [
        "../x",
        "/etc/passwd",
        "a/../../b",
        "a\0b",
        "%2e%2e/x",
        &long,
        ".",
        "",
        "a//b",
        "a\\b",
    ];
    for path in bad {
        let resp = put(kiln, &owner, &pid, path, b"pwned", None);
        assert_eq!(resp.status, 400, "REST PUT {path:?}: {}", resp.text);
        resp.expect_error(400, "invalid_path");
        let read = kiln.get(
            &format!("/api/projects/{pid}/files/{}", url_path(path)),
            owner.token(),
        );
        assert_eq!(read.status, 400, "REST GET {path:?}: {}", read.text);
    }
    let (mut s, _) = join(kiln, &pid, &owner);
    for path in bad {
        edit(&mut s, path, 0, "pwned");
        let e = s.recv_type("error");
        assert_eq!(e["code"], "invalid_message", "socket {path:?}: {e}");
        s.send(json!({ "type": "rename", "from": "keep.txt", "to": path, "base_rev": 1 }));
        assert_eq!(s.recv_type("error")["code"], "invalid_message");
    }
    let tree = kiln
        .get(&format!("/api/projects/{pid}/files"), owner.token())
        .expect(200);
    let paths: Vec<&str> = tree["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, vec!["keep.txt"], "nothing was written");
}

#[test]
fn size_and_count_limits_are_clear_errors() {
    let kiln = shared();
    let (owner, pid) = project(kiln, "limits");
    let big = vec![b'a'; 1024 * 1024 + 1];
    put(kiln, &owner, &pid, "big.txt", &big, None).expect_error(413, "file_too_large");
    let exact = vec![b'a'; 1024 * 1024];
    put(kiln, &owner, &pid, "exact.txt", &exact, None).expect(201);
    let (mut s, _) = join(kiln, &pid, &owner);
    s.send(json!({ "type": "edit", "path": "big2.txt", "base_rev": 0, "content": String::from_utf8(big).unwrap() }));
    assert_eq!(s.recv_type("error")["code"], "file_too_large");
    assert_eq!(file_count(kiln, &owner, &pid), 1);
}

#[test]
fn a_project_holds_at_most_2000_files_and_50_mib() {
    let kiln = shared();
    let (owner, pid) = project(kiln, "many");
    let (mut s, _) = join(kiln, &pid, &owner);
    for k in 0..2000 {
        edit(&mut s, &format!("d{}/f{k}.txt", k % 20), 0, "x");
    }
    let mut got = 0;
    while got < 2000 {
        if s.recv()["type"] == "file_edited" {
            got += 1;
        }
    }
    edit(&mut s, "one-too-many.txt", 0, "x");
    assert_eq!(s.recv_type("error")["code"], "too_many_files");
    put(kiln, &owner, &pid, "rest-too-many.txt", b"x", None).expect_error(409, "too_many_files");
    assert_eq!(file_count(kiln, &owner, &pid), 2000);

    let (owner2, pid2) = project(kiln, "heavy");
    let mib = vec![b'z'; 1024 * 1024];
    for k in 0..50 {
        put(kiln, &owner2, &pid2, &format!("blob{k}.bin"), &mib, None).expect(201);
    }
    put(kiln, &owner2, &pid2, "straw.bin", b"z", None).expect_error(413, "project_too_large");
    assert_eq!(file_count(kiln, &owner2, &pid2), 50);
}

#[test]
fn sockets_are_authorised_like_rest() {
    let kiln = shared();
    let (owner, pid) = project(kiln, "ws-auth");
    let client = add_member(kiln, &owner, "ws-client", "client");
    let stranger = register(kiln, "ws-stranger");
    put(kiln, &owner, &pid, "a.txt", b"original", None).expect(201);

    let refused = kiln.ws(&pid, Auth::None).err().expect("no auth is refused");
    assert_eq!(refused.status, 401, "{}", refused.body);
    let refused = kiln
        .ws(&pid, Auth::Bearer(&stranger.token))
        .err()
        .expect("stranger refused");
    assert_eq!(refused.status, 404);
    let refused = kiln
        .ws(&pid, Auth::Bearer("forged.token.here"))
        .err()
        .unwrap();
    assert_eq!(refused.status, 401);
    assert_eq!(
        kiln.ws(
            "p_00000000000000000000000000000000",
            Auth::Bearer(&owner.token)
        )
        .err()
        .unwrap()
        .status,
        404
    );

    // The client watches but cannot write, on the socket as on REST.
    let (mut watching, _) = join(kiln, &pid, &client);
    edit(&mut watching, "a.txt", 1, "client was here");
    assert_eq!(watching.recv_type("error")["code"], "forbidden");
    watching.send(json!({ "type": "delete", "path": "a.txt", "base_rev": 1 }));
    assert_eq!(watching.recv_type("error")["code"], "forbidden");
    put(kiln, &client, &pid, "a.txt", b"client", Some(1)).expect_error(403, "forbidden");
    put(kiln, &client, &pid, "new.txt", b"client", None).expect_error(403, "forbidden");
    let read = kiln.get(&format!("/api/projects/{pid}/files/a.txt"), client.token());
    assert_eq!(read.text, "original");

    // Cookie and single-use tickets.
    let (mut by_cookie, _) = {
        let mut s = kiln
            .ws(&pid, Auth::Cookie(&owner.token))
            .expect("cookie auth");
        s.send(json!({ "type": "hello" }));
        let st = s.recv_type("state");
        (s, st)
    };
    edit(&mut by_cookie, "b.txt", 0, "via cookie");
    assert_eq!(by_cookie.recv_type("file_edited")["path"], "b.txt");
    let ticket = kiln
        .post(
            &format!("/api/projects/{pid}/ws-ticket"),
            owner.token(),
            json!({}),
        )
        .expect(201)["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, other_pid) = project(kiln, "ws-auth-other");
    assert_eq!(
        kiln.ws(&other_pid, Auth::Ticket(&ticket))
            .err()
            .unwrap()
            .status,
        401,
        "ticket is for another project"
    );
    let mut s = kiln
        .ws(&pid, Auth::Ticket(&ticket))
        .expect("ticket works once");
    s.send(json!({ "type": "hello" }));
    s.recv_type("state");
    assert_eq!(
        kiln.ws(&pid, Auth::Ticket(&ticket)).err().unwrap().status,
        401,
        "and only once"
    );
    kiln.post(
        &format!("/api/projects/{pid}/ws-ticket"),
        stranger.token(),
        json!({}),
    )
    .expect_error(404, "not_found");
    // Plain HTTP on the socket route is a clear error.
    kiln.get(&format!("/api/projects/{pid}/ws"), owner.token())
        .expect_error(426, "upgrade_required");
}
