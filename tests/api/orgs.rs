//! Orgs, memberships and what each role may do.

use kiln_e2e::{join_org, register, shared, Kiln, User};
use serde_json::{json, Value};

struct Team {
    org: String,
    owner: User,
    admin: User,
    member: User,
    client: User,
    outsider: User,
}

fn team(kiln: &Kiln) -> Team {
    let owner = register(kiln, "owner");
    let org = kiln
        .post("/api/orgs", owner.token(), json!({ "name": "Agency" }))
        .expect(201);
    assert_eq!(org["role"], "owner");
    assert_eq!(org["personal"], false);
    let org = org["id"].as_str().unwrap().to_owned();
    let add = |tag: &str, role: &str| {
        let u = register(kiln, tag);
        join_org(kiln, &owner, &org, &u, role);
        u
    };
    Team {
        admin: add("admin", "admin"),
        member: add("member", "member"),
        client: add("client", "client"),
        outsider: register(kiln, "outsider"),
        org,
        owner,
    }
}

fn members(kiln: &Kiln, t: &Team) -> Vec<(String, String)> {
    let body = kiln
        .get(&format!("/api/orgs/{}/members", t.org), t.owner.token())
        .expect(200);
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user_id"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn role_of(kiln: &Kiln, t: &Team, user: &User) -> Option<String> {
    members(kiln, t)
        .into_iter()
        .find(|(id, _)| *id == user.id)
        .map(|(_, r)| r)
}

#[test]
fn every_role_has_exactly_its_rights_on_projects() {
    let kiln = shared();
    let t = team(kiln);
    let project = kiln
        .post(
            "/api/projects",
            t.owner.token(),
            json!({ "name": "Shared", "org": t.org }),
        )
        .expect(201);
    let path = format!("/api/projects/{}", project["id"].as_str().unwrap());

    // Everyone in the org reads it, with their own role attached.
    for (u, role) in [
        (&t.owner, "owner"),
        (&t.admin, "admin"),
        (&t.member, "member"),
        (&t.client, "client"),
    ] {
        let p = kiln.get(&path, u.token()).expect(200);
        assert_eq!(p["role"], role);
        let listed = kiln
            .get(&format!("/api/projects?org={}", t.org), u.token())
            .expect(200);
        assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    }
    // The outsider cannot tell it exists.
    kiln.get(&path, t.outsider.token())
        .expect_error(404, "not_found");
    kiln.patch(&path, t.outsider.token(), json!({ "name": "x" }))
        .expect_error(404, "not_found");
    kiln.get(&format!("/api/projects?org={}", t.org), t.outsider.token())
        .expect_error(404, "not_found");

    // Clients are read-only.
    let create = json!({ "name": "by client", "org": t.org });
    kiln.post("/api/projects", t.client.token(), create)
        .expect_error(403, "forbidden");
    kiln.patch(
        &path,
        t.client.token(),
        json!({ "name": "client was here" }),
    )
    .expect_error(403, "forbidden");
    kiln.delete(&path, t.client.token())
        .expect_error(403, "forbidden");

    // Members write but do not delete.
    let by_member = kiln
        .post(
            "/api/projects",
            t.member.token(),
            json!({ "name": "by member", "org": t.org }),
        )
        .expect(201);
    assert_eq!(by_member["created_by"], t.member.id.as_str());
    kiln.patch(&path, t.member.token(), json!({ "name": "Renamed" }))
        .expect(200);
    kiln.delete(&path, t.member.token())
        .expect_error(403, "forbidden");

    let after = kiln.get(&path, t.owner.token()).expect(200);
    assert_eq!(after["name"], "Renamed", "only the member's rename applied");

    // Admins delete.
    kiln.delete(&path, t.admin.token()).expect(204);
    kiln.get(&path, t.owner.token())
        .expect_error(404, "not_found");
}

#[test]
fn only_owners_and_admins_manage_members() {
    let kiln = shared();
    let t = team(kiln);
    let newcomer = register(kiln, "newcomer");
    let add = |by: &User, role: &str| {
        kiln.post(
            &format!("/api/orgs/{}/members", t.org),
            by.token(),
            json!({ "email": newcomer.email, "role": role }),
        )
    };
    add(&t.member, "member").expect_error(403, "forbidden");
    add(&t.client, "client").expect_error(403, "forbidden");
    add(&t.outsider, "member").expect_error(404, "not_found");
    add(&t.admin, "owner").expect_error(403, "forbidden");
    assert_eq!(role_of(kiln, &t, &newcomer), None, "nothing was added");

    add(&t.admin, "member").expect(201);
    assert_eq!(
        role_of(kiln, &t, &newcomer),
        None,
        "invited, not yet a member"
    );
    join_org(kiln, &t.admin, &t.org, &newcomer, "member");
    add(&t.admin, "member").expect_error(409, "already_member");

    let member_path = format!("/api/orgs/{}/members/{}", t.org, newcomer.id);
    kiln.patch(&member_path, t.member.token(), json!({ "role": "admin" }))
        .expect_error(403, "forbidden");
    kiln.patch(&member_path, t.admin.token(), json!({ "role": "client" }))
        .expect(200);
    assert_eq!(role_of(kiln, &t, &newcomer).as_deref(), Some("client"));
    kiln.patch(
        &member_path,
        t.admin.token(),
        json!({ "role": "superuser" }),
    )
    .expect_error(400, "invalid_field");

    // Admins cannot touch owners.
    let owner_path = format!("/api/orgs/{}/members/{}", t.org, t.owner.id);
    kiln.patch(&owner_path, t.admin.token(), json!({ "role": "member" }))
        .expect_error(403, "forbidden");
    kiln.delete(&owner_path, t.admin.token())
        .expect_error(403, "forbidden");

    kiln.delete(&member_path, t.member.token())
        .expect_error(403, "forbidden");
    kiln.delete(&member_path, t.admin.token()).expect(204);
    assert_eq!(role_of(kiln, &t, &newcomer), None);

    // Non-members.
    kiln.delete(&member_path, t.owner.token())
        .expect_error(404, "not_found");
}

#[test]
fn the_last_owner_can_be_neither_removed_nor_demoted() {
    let kiln = shared();
    let t = team(kiln);
    let me = format!("/api/orgs/{}/members/{}", t.org, t.owner.id);
    kiln.patch(&me, t.owner.token(), json!({ "role": "admin" }))
        .expect_error(409, "last_owner");
    kiln.delete(&me, t.owner.token())
        .expect_error(409, "last_owner");
    assert_eq!(role_of(kiln, &t, &t.owner).as_deref(), Some("owner"));

    // With a second owner, the first may step down.
    let admin_path = format!("/api/orgs/{}/members/{}", t.org, t.admin.id);
    kiln.patch(&admin_path, t.owner.token(), json!({ "role": "owner" }))
        .expect(200);
    kiln.patch(&me, t.owner.token(), json!({ "role": "member" }))
        .expect(200);
    assert_eq!(role_of(kiln, &t, &t.owner).as_deref(), Some("member"));
    // …and now the former admin is the last owner.
    kiln.delete(&admin_path, t.admin.token())
        .expect_error(409, "last_owner");
}

#[test]
fn members_may_leave_and_orgs_list_only_your_own() {
    let kiln = shared();
    let t = team(kiln);
    let orgs = |u: &User| -> Vec<Value> {
        kiln.get("/api/orgs", u.token()).expect(200)["items"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert_eq!(orgs(&t.client).len(), 2, "personal + agency");
    assert_eq!(orgs(&t.outsider).len(), 1);
    kiln.get(&format!("/api/orgs/{}", t.org), t.client.token())
        .expect(200);
    kiln.get(&format!("/api/orgs/{}", t.org), t.outsider.token())
        .expect_error(404, "not_found");
    kiln.get(&format!("/api/orgs/{}/members", t.org), t.outsider.token())
        .expect_error(404, "not_found");

    kiln.delete(
        &format!("/api/orgs/{}/members/{}", t.org, t.client.id),
        t.client.token(),
    )
    .expect(204);
    assert_eq!(orgs(&t.client).len(), 1);
    kiln.get(&format!("/api/orgs/{}", t.org), t.client.token())
        .expect_error(404, "not_found");
}

#[test]
fn org_names_are_validated() {
    let kiln = shared();
    let u = register(kiln, "orgval");
    for bad in [json!({ "name": "" }), json!({ "name": 3 }), json!({})] {
        kiln.post("/api/orgs", u.token(), bad)
            .expect_error(400, "invalid_field");
    }
    assert_eq!(
        kiln.get("/api/orgs", u.token()).expect(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// An invitation as the inviter sees it, minus what differs between any two invitations.
fn invitation_shape(v: &Value) -> Value {
    let mut inv = v["invitation"].clone();
    for k in ["id", "email", "created_at", "expires_at"] {
        assert!(inv.get(k).is_some(), "{k} in {v}");
        inv.as_object_mut().unwrap().remove(k);
    }
    inv
}

#[test]
fn an_invitee_is_not_a_member_until_they_accept() {
    let kiln = shared();
    let t = team(kiln);
    let invitee = register(kiln, "invitee");
    let inv = kiln
        .post(
            &format!("/api/orgs/{}/members", t.org),
            t.admin.token(),
            json!({ "email": invitee.email.to_uppercase(), "role": "member" }),
        )
        .expect(201);
    let id = inv["invitation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(inv["invitation"]["status"], "pending");
    assert_eq!(role_of(kiln, &t, &invitee), None);
    kiln.get(&format!("/api/orgs/{}", t.org), invitee.token())
        .expect_error(404, "not_found");
    kiln.get(&format!("/api/projects?org={}", t.org), invitee.token())
        .expect_error(404, "not_found");

    // The org sees it open; the invitee sees it addressed to them; nobody else does.
    let open = kiln
        .get(&format!("/api/orgs/{}/invitations", t.org), t.owner.token())
        .expect(200);
    assert!(open["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["id"] == id.as_str()));
    kiln.get(
        &format!("/api/orgs/{}/invitations", t.org),
        t.member.token(),
    )
    .expect_error(403, "forbidden");
    let mine = kiln.get("/api/invitations", invitee.token()).expect(200);
    let items = mine["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{mine}");
    assert_eq!(items[0]["org_name"], "Agency");
    assert_eq!(items[0]["invited_by"], t.admin.email.as_str());
    assert_eq!(
        kiln.get("/api/invitations", t.outsider.token()).expect(200)["items"],
        json!([])
    );
    // Only the person it is addressed to can answer it.
    kiln.post(
        &format!("/api/invitations/{id}/accept"),
        t.outsider.token(),
        json!({}),
    )
    .expect_error(404, "not_found");
    kiln.post(
        &format!("/api/invitations/{id}/decline"),
        t.outsider.token(),
        json!({}),
    )
    .expect_error(404, "not_found");
    assert_eq!(role_of(kiln, &t, &t.outsider), None);

    let accepted = kiln
        .post(
            &format!("/api/invitations/{id}/accept"),
            invitee.token(),
            json!({}),
        )
        .expect(200);
    assert_eq!(accepted["org"]["role"], "member");
    assert_eq!(role_of(kiln, &t, &invitee).as_deref(), Some("member"));
    // Used up.
    kiln.post(
        &format!("/api/invitations/{id}/accept"),
        invitee.token(),
        json!({}),
    )
    .expect_error(404, "not_found");
    assert_eq!(
        kiln.get("/api/invitations", invitee.token()).expect(200)["items"],
        json!([])
    );
}

#[test]
fn a_declined_or_revoked_invitation_never_makes_a_member() {
    let kiln = shared();
    let t = team(kiln);
    let invitee = register(kiln, "decliner");
    let invite = || {
        kiln.post(
            &format!("/api/orgs/{}/members", t.org),
            t.owner.token(),
            json!({ "email": invitee.email, "role": "admin" }),
        )
        .expect(201)["invitation"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let id = invite();
    kiln.post(
        &format!("/api/invitations/{id}/decline"),
        invitee.token(),
        json!({}),
    )
    .expect(204);
    kiln.post(
        &format!("/api/invitations/{id}/accept"),
        invitee.token(),
        json!({}),
    )
    .expect_error(404, "not_found");
    assert_eq!(role_of(kiln, &t, &invitee), None);

    let again = invite();
    assert_ne!(again, id, "a new invitation after a decline");
    kiln.delete(
        &format!("/api/orgs/{}/invitations/{again}", t.org),
        t.member.token(),
    )
    .expect_error(403, "forbidden");
    kiln.delete(
        &format!("/api/orgs/{}/invitations/{again}", t.org),
        t.owner.token(),
    )
    .expect(204);
    kiln.post(
        &format!("/api/invitations/{again}/accept"),
        invitee.token(),
        json!({}),
    )
    .expect_error(404, "not_found");
    assert_eq!(role_of(kiln, &t, &invitee), None);
}

#[test]
fn inviting_tells_nothing_about_whether_an_email_has_an_account() {
    let kiln = shared();
    let t = team(kiln);
    let registered = register(kiln, "known");
    let unknown = kiln_e2e::unique_email("unknown");
    let invite = |email: &str| {
        kiln.post(
            &format!("/api/orgs/{}/members", t.org),
            t.owner.token(),
            json!({ "email": email, "role": "member" }),
        )
    };
    let a = invite(&registered.email);
    let b = invite(&unknown);
    assert_eq!((a.status, b.status), (201, 201));
    assert_eq!(invitation_shape(&a.json()), invitation_shape(&b.json()));
    let headers = |r: &kiln_e2e::Resp| {
        let mut h: Vec<String> = r
            .headers
            .iter()
            .map(|(k, _)| k.to_ascii_lowercase())
            .filter(|k| k != "content-length" && k != "date")
            .collect();
        h.sort();
        h
    };
    assert_eq!(headers(&a), headers(&b));
    // Inviting again renews the same invitation, for either.
    let a2 = invite(&registered.email).expect(201);
    assert_eq!(a2["invitation"]["id"], a.json()["invitation"]["id"]);
    let b2 = invite(&unknown).expect(201);
    assert_eq!(b2["invitation"]["id"], b.json()["invitation"]["id"]);
}

/// The same, in the browser: invite from the org page, accept from the dashboard.
#[test]
fn an_invitation_is_sent_and_accepted_in_the_ui() {
    let kiln = shared();
    let owner = kiln_e2e::unique_email("ui-owner");
    let guest = kiln_e2e::unique_email("ui-guest");
    let report = kiln_e2e::browser_script(
        "members.mjs",
        &json!({
            "app": kiln.url,
            "owner": owner,
            "guest": guest,
            "password": "correct horse battery staple",
        }),
    );
    assert!(report.get("error").is_none(), "{report}");
    assert_eq!(report["errors"], json!([]), "{report}");
    assert!(
        report["guest_orgs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "Agency"),
        "{report}"
    );
    assert_eq!(report["guest_role"], "member", "{report}");
}
