//! An open WebSocket keeps no rights its user has lost: a demotion takes write away at once,
//! a removal, a sign-out or a deleted project closes it (an `error` frame, then close 4003).

use crate::{bearer, project};
use kiln_e2e::ws::{Auth, Ended, Socket};
use kiln_e2e::{join_org, register, shared, Kiln, User};
use serde_json::{json, Value};
use std::time::Duration;

/// A live socket of `token` on `project` (said hello, got the state).
fn join(kiln: &Kiln, project: &str, token: &str) -> Socket {
    let mut s = kiln
        .ws(project, Auth::Bearer(token))
        .unwrap_or_else(|r| panic!("connect: {r:?}"));
    s.send(json!({ "type": "hello" }));
    s.recv_type("state");
    s
}

fn edit(path: &str, base_rev: u64, content: &str) -> Value {
    json!({ "type": "edit", "path": path, "base_rev": base_rev, "content": content })
}

/// Frames until one of type `ty` arrives (within 20 s), that one included.
#[track_caller]
fn frames_until(s: &mut Socket, ty: &str) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut out = vec![];
    while std::time::Instant::now() < deadline {
        if let Some(v) = s.try_recv(Duration::from_millis(500)) {
            let done = v["type"] == ty;
            out.push(v);
            if done {
                return out;
            }
        }
    }
    panic!("no {ty} frame within 20 s; got {out:?}")
}

/// Edits `path` and waits for its broadcast; returns the new rev.
#[track_caller]
fn edit_ok(s: &mut Socket, path: &str, base_rev: u64, content: &str) -> u64 {
    s.send(edit(path, base_rev, content));
    let frames = frames_until(s, "file_edited");
    let ev = frames.last().unwrap();
    assert_eq!(ev["path"], path, "{ev}");
    ev["rev"].as_u64().unwrap_or(base_rev + 1)
}

/// The socket is closed by the server with 4003 after an `error` frame, and no edit of
/// ours was broadcast before it.
#[track_caller]
fn assert_closed_4003(s: &mut Socket, what: &str) {
    let (frames, ended) = s.wait_closed(Duration::from_secs(10));
    match &ended {
        Ended::Closed { code: 4003, .. } => {}
        other => panic!("{what}: expected close 4003, got {other:?}; frames {frames:?}"),
    }
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "error" && f["code"] == "forbidden"),
        "{what}: no forbidden error before the close: {frames:?}"
    );
    assert!(
        !frames.iter().any(|f| f["type"] == "file_edited"),
        "{what}: an edit went through: {frames:?}"
    );
}

/// The file's content and rev over REST.
#[track_caller]
fn read(kiln: &Kiln, user: &User, project: &str, path: &str) -> (String, String) {
    let resp = kiln.get(
        &format!("/api/projects/{project}/files/{path}"),
        user.token(),
    );
    assert_eq!(resp.status, 200, "{path}: {}", resp.text);
    let rev = resp.header("x-kiln-rev").unwrap_or_default().to_owned();
    (resp.text, rev)
}

/// An owner, a project in their personal org and a `member` of that org.
fn team(kiln: &Kiln, tag: &str) -> (User, String, User) {
    let owner = register(kiln, &format!("{tag}-owner"));
    let pid = project(kiln, &owner, tag);
    let member = register(kiln, &format!("{tag}-member"));
    join_org(kiln, &owner, &owner.personal_org, &member, "member");
    (owner, pid, member)
}

#[test]
fn a_demoted_member_cannot_write_on_the_socket_they_already_have() {
    let kiln = shared();
    let (owner, pid, member) = team(kiln, "demote");
    let mut s = join(kiln, &pid, &member.token);
    let rev = edit_ok(&mut s, "a.txt", 0, "x");
    assert_eq!(rev, 1);

    let changed = kiln
        .patch(
            &format!("/api/orgs/{}/members/{}", owner.personal_org, member.id),
            owner.token(),
            json!({ "role": "client" }),
        )
        .expect(200);
    assert_eq!(changed["role"], "client", "{changed}");

    // Same socket, no reconnect: the edit is refused.
    s.send(edit("a.txt", 1, "written after the demotion"));
    let frames = frames_until(&mut s, "error");
    assert_eq!(frames.last().unwrap()["code"], "forbidden", "{frames:?}");
    assert!(
        !frames.iter().any(|f| f["type"] == "file_edited"),
        "{frames:?}"
    );
    assert_eq!(
        read(kiln, &owner, &pid, "a.txt"),
        ("x".to_owned(), "1".to_owned())
    );
    // A client may still watch: the socket stays open and answers reads.
    s.send(json!({ "type": "get_state" }));
    frames_until(&mut s, "state");
}

#[test]
fn a_removed_member_is_disconnected_and_their_edit_changes_nothing() {
    let kiln = shared();
    let (owner, pid, member) = team(kiln, "remove");
    let mut s = join(kiln, &pid, &member.token);
    edit_ok(&mut s, "a.txt", 0, "x");

    let resp = kiln.delete(
        &format!("/api/orgs/{}/members/{}", owner.personal_org, member.id),
        owner.token(),
    );
    assert_eq!(resp.status, 204, "{}", resp.text);

    // An edit sent at once on the same socket (it may already be closing).
    let _ = s.try_send(edit("a.txt", 1, "written after the removal"));
    assert_closed_4003(&mut s, "removed member");
    assert_eq!(
        read(kiln, &owner, &pid, "a.txt"),
        ("x".to_owned(), "1".to_owned())
    );
    // And they cannot come back.
    let refused = kiln
        .ws(&pid, Auth::Bearer(&member.token))
        .err()
        .expect("a removed member reconnected");
    assert_eq!(refused.status, 404, "{refused:?}");
}

#[test]
fn signing_out_closes_that_sessions_sockets_and_no_others() {
    let kiln = shared();
    let owner = register(kiln, "logout");
    let pid = project(kiln, &owner, "logout");
    let second = kiln
        .post(
            "/api/auth/login",
            None,
            json!({ "email": owner.email, "password": owner.password }),
        )
        .expect(200)["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_ne!(second, owner.token);
    let mut first_socket = join(kiln, &pid, &owner.token);
    let mut second_socket = join(kiln, &pid, &second);
    // The first session also holds a socket on another project, opened with a ticket.
    let elsewhere = project(kiln, &owner, "logout-elsewhere");
    let ticket = kiln
        .post(
            &format!("/api/projects/{elsewhere}/ws-ticket"),
            owner.token(),
            json!({}),
        )
        .expect(201)["ticket"]
        .as_str()
        .expect("ticket")
        .to_owned();
    let mut by_ticket = kiln
        .ws(&elsewhere, Auth::Ticket(&ticket))
        .unwrap_or_else(|r| panic!("ticket connect: {r:?}"));
    by_ticket.send(json!({ "type": "hello" }));
    by_ticket.recv_type("state");

    let out = kiln.raw("POST", "/api/auth/logout", &[bearer(&owner.token)], None);
    assert_eq!(out.status, 204, "{}", out.text);

    assert_closed_4003(&mut first_socket, "signed-out session");
    assert_closed_4003(&mut by_ticket, "signed-out session's ticket socket");
    // The other session's socket is still open and may still write.
    edit_ok(&mut second_socket, "a.txt", 0, "still signed in");
    let resp = kiln.get(
        &format!("/api/projects/{pid}/files/a.txt"),
        Some(second.as_str()),
    );
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.text, "still signed in");
    // The signed-out token opens nothing any more.
    let refused = kiln
        .ws(&pid, Auth::Bearer(&owner.token))
        .err()
        .expect("a signed-out token reconnected");
    assert_eq!(refused.status, 401, "{refused:?}");
}

#[test]
fn deleting_a_project_closes_every_socket_on_it() {
    let kiln = shared();
    let (owner, pid, member) = team(kiln, "delete");
    let other = project(kiln, &owner, "delete-other");
    let mut by_owner = join(kiln, &pid, &owner.token);
    let mut by_member = join(kiln, &pid, &member.token);
    let mut elsewhere = join(kiln, &other, &owner.token);
    edit_ok(&mut by_member, "a.txt", 0, "x");
    // The owner saw that edit (so any later one would be news).
    frames_until(&mut by_owner, "file_edited");

    let resp = kiln.delete(&format!("/api/projects/{pid}"), owner.token());
    assert_eq!(resp.status, 204, "{}", resp.text);

    assert_closed_4003(&mut by_owner, "owner's socket on the deleted project");
    assert_closed_4003(&mut by_member, "member's socket on the deleted project");
    // Another project's socket is untouched.
    edit_ok(&mut elsewhere, "b.txt", 0, "unaffected");
    let refused = kiln
        .ws(&pid, Auth::Bearer(&owner.token))
        .err()
        .expect("connected to a deleted project");
    assert_eq!(refused.status, 404, "{refused:?}");
}
