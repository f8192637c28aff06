//! Project CRUD, pagination and the room binding.

use kiln_e2e::{register, shared};
use serde_json::{json, Value};
use std::collections::HashSet;

#[test]
fn project_crud_round_trip() {
    let kiln = shared();
    let u = register(kiln, "crud");
    let created = kiln
        .post(
            "/api/projects",
            u.token(),
            json!({ "name": "  Todo app ", "description": "A list\nof things" }),
        )
        .expect(201);
    assert_eq!(created["name"], "Todo app");
    assert_eq!(
        created["org_id"],
        u.personal_org.as_str(),
        "defaults to the personal org"
    );
    assert_eq!(created["created_by"], u.id.as_str());
    let path = format!("/api/projects/{}", created["id"].as_str().unwrap());
    assert_eq!(kiln.get(&path, u.token()).expect(200), created);

    let renamed = kiln
        .patch(&path, u.token(), json!({ "name": "Tasks" }))
        .expect(200);
    assert_eq!(renamed["name"], "Tasks");
    assert_eq!(
        renamed["description"], "A list\nof things",
        "absent fields untouched"
    );
    let cleared = kiln
        .patch(&path, u.token(), json!({ "description": null }))
        .expect(200);
    assert_eq!(cleared["description"], Value::Null);
    assert_eq!(kiln.get(&path, u.token()).expect(200), cleared);

    kiln.delete(&path, u.token()).expect(204);
    kiln.get(&path, u.token()).expect_error(404, "not_found");
    kiln.patch(&path, u.token(), json!({ "name": "zombie" }))
        .expect_error(404, "not_found");
    kiln.delete(&path, u.token()).expect_error(404, "not_found");
    let list = kiln.get("/api/projects", u.token()).expect(200);
    assert!(list["items"].as_array().unwrap().is_empty());
}

#[test]
fn lists_are_paginated_newest_first_without_gaps_or_repeats() {
    let kiln = shared();
    let u = register(kiln, "pages");
    let org = kiln
        .post("/api/orgs", u.token(), json!({ "name": "Paged" }))
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut created = vec![];
    for i in 0..7 {
        let p = kiln
            .post(
                "/api/projects",
                u.token(),
                json!({ "name": format!("p{i}"), "org": org }),
            )
            .expect(201);
        created.push(p["id"].as_str().unwrap().to_owned());
    }
    // One in the personal org, which an org-filtered list must not show.
    kiln.post("/api/projects", u.token(), json!({ "name": "elsewhere" }))
        .expect(201);

    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/api/projects?org={org}&limit=3");
        if let Some(c) = &cursor {
            path += &format!("&cursor={c}");
        }
        let page = kiln.get(&path, u.token()).expect(200);
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 7);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 7, "no repeats");
    let mut newest_first = created.clone();
    newest_first.reverse();
    // Projects created in the same millisecond tie-break by id, so compare as sets per
    // timestamp; across timestamps the order must be newest first.
    let all = kiln
        .get(&format!("/api/projects?org={org}&limit=100"), u.token())
        .expect(200);
    let stamps: Vec<i64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["created_at"].as_i64().unwrap())
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] >= w[1]), "{stamps:?}");
    assert_eq!(
        seen,
        all["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        seen.iter().collect::<HashSet<_>>(),
        newest_first.iter().collect::<HashSet<_>>()
    );

    // Unfiltered: both orgs.
    let everything = kiln.get("/api/projects?limit=100", u.token()).expect(200);
    assert_eq!(everything["items"].as_array().unwrap().len(), 8);
}

#[test]
fn bad_list_parameters_are_400() {
    let kiln = shared();
    let u = register(kiln, "params");
    for q in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "limit=-1",
        "cursor=%%%",
        "cursor=bm9wZQ",
    ] {
        kiln.get(&format!("/api/projects?{q}"), u.token())
            .expect_error(400, "invalid_parameter");
    }
    kiln.get("/api/projects?org=o_nope", u.token())
        .expect_error(404, "not_found");
}

#[test]
fn each_project_has_its_own_room() {
    let kiln = shared();
    let u = register(kiln, "room");
    let a = kiln
        .post("/api/projects", u.token(), json!({ "name": "a" }))
        .expect(201);
    let id = a["id"].as_str().unwrap();
    let state = kiln
        .get(&format!("/api/projects/{id}/state"), u.token())
        .expect(200);
    assert_eq!(state["type"], "state");
    assert_eq!(state["project_id"], id);
    assert_eq!(state["head_seq"], 0);
    let other = register(kiln, "room-outsider");
    kiln.get(&format!("/api/projects/{id}/state"), other.token())
        .expect_error(404, "not_found");
}
