use std::time::Duration;

use kiln_e2e::ws::Auth;
use kiln_e2e::{shared, Kiln};
use serde_json::{json, Value};

use crate::{add_member, edit, join, project, put};

fn edited(frames: &[Value]) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| f["type"] == "file_edited")
        .cloned()
        .collect()
}

#[test]
fn three_clients_see_every_edit_in_the_same_order() {
    let kiln = shared();
    let (owner, pid) = project(kiln, "fanout");
    let member = add_member(kiln, &owner, "fanout-member", "member");
    let (mut a, state) = join(kiln, &pid, &owner);
    assert_eq!(state["project_id"], pid.as_str());
    let (mut b, _) = join(kiln, &pid, &member);
    let (mut c, _) = join(kiln, &pid, &owner); // a second tab of the owner
    for (i, s) in [&mut a, &mut b, &mut c].into_iter().enumerate() {
        for k in 0..5 {
            edit(
                s,
                &format!("f{i}/{k}.txt"),
                0,
                &format!("client {i} edit {k}"),
            );
        }
    }
    let mut seen = vec![];
    for s in [&mut a, &mut b, &mut c] {
        let mut got = vec![];
        while got.len() < 15 {
            let f = s.recv();
            if f["type"] == "file_edited" {
                got.push(f);
            }
        }
        seen.push(got);
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[1], seen[2]);
    let seqs: Vec<u64> = seen[0].iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let by: Vec<&str> = seen[0].iter().map(|f| f["by"].as_str().unwrap()).collect();
    assert!(by.contains(&member.id.as_str()) && by.contains(&owner.id.as_str()));
    // The state a newcomer gets agrees.
    let (_, state) = join(kiln, &pid, &member);
    assert_eq!(state["files"].as_array().unwrap().len(), 15);
    assert!(state["head_seq"].as_u64().unwrap() >= *seqs.last().unwrap());
}

#[test]
fn presence_lists_who_is_connected() {
    let kiln = shared();
    let (owner, pid) = project(kiln, "presence");
    let member = add_member(kiln, &owner, "presence-member", "member");
    let (mut a, _) = join(kiln, &pid, &owner);
    let first = a.recv_type("presence");
    assert_eq!(first["users"].as_array().unwrap().len(), 1);
    let (b, _) = join(kiln, &pid, &member);
    let both = a.recv_type("presence");
    let users = both["users"].as_array().unwrap();
    assert_eq!(users.len(), 2);
    assert!(users.iter().any(|u| u["email"] == member.email.as_str()));
    b.close();
    let after = a.recv_type("presence");
    assert_eq!(after["users"].as_array().unwrap().len(), 1);
    assert_eq!(after["users"][0]["id"], owner.id.as_str());
}

#[test]
fn concurrent_edits_on_one_base_rev_exactly_one_wins() {
    let kiln = shared();
    let (owner, pid) = project(kiln, "race");
    put(kiln, &owner, &pid, "race.txt", b"base", None).expect(201);
    let mut sockets: Vec<_> = (0..3).map(|_| join(kiln, &pid, &owner).0).collect();
    for (i, s) in sockets.iter_mut().enumerate() {
        edit(s, "race.txt", 1, &format!("writer {i}"));
    }
    let mut winners = vec![];
    let mut rejected = vec![];
    for s in sockets.iter_mut() {
        let frames = s.drain(Duration::from_millis(1500));
        winners.extend(edited(&frames));
        rejected.extend(frames.into_iter().filter(|f| f["type"] == "edit_rejected"));
    }
    // Each of the 3 sockets sees the single winning edit; 2 of them get a rejection.
    assert_eq!(winners.len(), 3, "{winners:?}");
    assert!(winners.windows(2).all(|w| w[0] == w[1]));
    let winner = &winners[0];
    assert_eq!(winner["rev"], 2);
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    for r in &rejected {
        assert_eq!(r["current_rev"], 2);
        assert_eq!(r["content"], winner["content"]);
        assert_eq!(r["path"], "race.txt");
    }
    let body = kiln.get(
        &format!("/api/projects/{pid}/files/race.txt"),
        owner.token(),
    );
    assert_eq!(body.status, 200);
    assert_eq!(body.text, winner["content"].as_str().unwrap());
}

/// What a client that stayed connected saw after `seq`.
fn broadcasts_after(frames: &[Value], seq: u64) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| f["seq"].as_u64().unwrap_or(0) > seq && f["type"] != "state")
        .cloned()
        .collect()
}

fn replay_check(
    kiln: &Kiln,
    pid: &str,
    owner: &kiln_e2e::User,
    watcher_frames: &[Value],
    last_seq: u64,
) {
    let mut back = kiln.ws(pid, Auth::Bearer(&owner.token)).expect("reconnect");
    back.send(json!({ "type": "hello", "last_seq": last_seq }));
    let replayed = back.drain(Duration::from_millis(1500));
    let expected = broadcasts_after(watcher_frames, last_seq);
    assert!(!expected.is_empty());
    // The replay is exactly what was missed, in order, once; after it come only presence
    // events (sockets that closed since, and this reconnect's own arrival).
    assert!(replayed.len() >= expected.len(), "{replayed:?}");
    assert_eq!(&replayed[..expected.len()], &expected[..]);
    let rest = &replayed[expected.len()..];
    assert!(
        !rest.is_empty() && rest.iter().all(|f| f["type"] == "presence"),
        "{rest:?}"
    );
    let seqs: Vec<u64> = replayed
        .iter()
        .map(|f| f["seq"].as_u64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing, no repeats: {seqs:?}"
    );
    assert_eq!(seqs[0], last_seq + 1, "starts right after last_seq");
}

#[test]
fn a_reconnecting_client_gets_exactly_the_missed_events_once() {
    let kiln = shared();
    let (owner, pid) = project(kiln, "replay");
    let (mut watcher, _) = join(kiln, &pid, &owner);
    let (mut writer, _) = join(kiln, &pid, &owner);
    let (mut leaver, _) = join(kiln, &pid, &owner);
    for k in 0..3 {
        edit(&mut writer, &format!("a{k}.txt"), 0, "before");
    }
    let mut got = 0;
    while got < 3 {
        if leaver.recv()["type"] == "file_edited" {
            got += 1;
        }
    }
    let n = leaver.last_seq;
    leaver.close();
    for k in 0..4 {
        edit(&mut writer, &format!("b{k}.txt"), 0, "after");
    }
    edit(&mut writer, "a0.txt", 1, "changed after");
    writer.send(json!({ "type": "delete", "path": "a1.txt", "base_rev": 1 }));
    writer.send(json!({ "type": "rename", "from": "a2.txt", "to": "moved/a2.txt", "base_rev": 1 }));
    let frames = watcher.drain(Duration::from_millis(1500));
    assert!(frames.iter().any(|f| f["type"] == "file_renamed"));
    replay_check(kiln, &pid, &owner, &frames, n);
}

#[test]
fn replay_survives_a_restart_of_workerd() {
    let mut kiln = Kiln::start();
    let (owner, pid) = project(&kiln, "restart");
    let (mut watcher, _) = join(&kiln, &pid, &owner);
    let (mut writer, _) = join(&kiln, &pid, &owner);
    for k in 0..3 {
        edit(&mut writer, &format!("f{k}.txt"), 0, &format!("v{k}"));
    }
    let frames = watcher.drain(Duration::from_millis(1500));
    let n = frames
        .iter()
        .find(|f| f["type"] == "file_edited")
        .and_then(|f| f["seq"].as_u64())
        .unwrap();
    drop(watcher);
    drop(writer);
    kiln = kiln.restart();
    // Nothing lived only in memory: the log, the files and the revs are all back.
    replay_check(&kiln, &pid, &owner, &frames, n);
    let f1 = kiln.get(&format!("/api/projects/{pid}/files/f1.txt"), owner.token());
    assert_eq!((f1.status, f1.text.as_str()), (200, "v1"));
    let (mut again, state) = join(&kiln, &pid, &owner);
    assert_eq!(state["files"].as_array().unwrap().len(), 3);
    edit(&mut again, "f1.txt", 1, "v1 again");
    let ev = again.recv_type("file_edited");
    assert_eq!(ev["rev"], 2);
    assert!(ev["seq"].as_u64().unwrap() > n);
}

#[test]
fn compacted_history_means_resync_then_state() {
    let kiln = Kiln::start_with(&[("KILN_EVENT_LOG_MAX_EVENTS", "20")]);
    let (owner, pid) = project(&kiln, "compact");
    let (mut writer, _) = join(&kiln, &pid, &owner);
    for k in 0..40 {
        edit(&mut writer, &format!("f{k}.txt"), 0, "x");
    }
    let mut got = 0;
    while got < 40 {
        if writer.recv()["type"] == "file_edited" {
            got += 1;
        }
    }
    let head = writer.last_seq;
    let mut late = kiln.ws(&pid, Auth::Bearer(&owner.token)).unwrap();
    late.send(json!({ "type": "hello", "last_seq": 1 }));
    let first = late.recv();
    assert_eq!(first["type"], "resync_required", "{first}");
    let state = late.recv();
    assert_eq!(state["type"], "state");
    assert_eq!(state["head_seq"].as_u64().unwrap(), head);
    assert_eq!(state["files"].as_array().unwrap().len(), 40);
    // A recent last_seq still replays.
    let mut recent = kiln.ws(&pid, Auth::Bearer(&owner.token)).unwrap();
    recent.send(json!({ "type": "hello", "last_seq": head - 2 }));
    let frames = recent.drain(Duration::from_millis(1000));
    assert_eq!(frames[0]["seq"].as_u64().unwrap(), head - 1, "{frames:?}");
}

#[test]
fn malformed_frames_get_an_error_and_the_room_stays_open() {
    let kiln = shared();
    let (owner, pid) = project(kiln, "frames");
    let mut s = kiln.ws(&pid, Auth::Bearer(&owner.token)).unwrap();
    s.send(json!({ "type": "edit", "path": "a", "base_rev": 0, "content": "x" }));
    assert_eq!(s.recv()["code"], "hello_required");
    s.send(json!({ "type": "hello" }));
    s.recv_type("state");
    for bad in [
        json!({}),
        json!({ "type": "launch" }),
        json!({ "type": "edit", "path": "a" }),
        json!({ "type": "edit", "path": "a", "base_rev": "x", "content": "" }),
        json!([1, 2]),
    ] {
        s.send(bad.clone());
        let e = s.recv_type("error");
        assert_eq!(e["code"], "invalid_message", "{bad}");
    }
    s.send_raw(tungstenite::Message::text("not json"));
    assert_eq!(s.recv_type("error")["code"], "invalid_message");
    s.send_raw(tungstenite::Message::binary(vec![1u8, 2, 3]));
    assert_eq!(s.recv_type("error")["code"], "invalid_message");
    edit(&mut s, "still-works.txt", 0, "yes");
    assert_eq!(s.recv_type("file_edited")["path"], "still-works.txt");
}
