//! Credits end to end: a priced model spends the org's credit call by call; with none left a
//! generation is refused (402) and a running one stops before its next call, the balance
//! never below zero; the operator grants more; an unpriced model needs none.

use super::*;

const ADMIN: &str = "operator-token-for-tests-0123456789abcdef";

fn org_of(run: &Run) -> String {
    let p = run
        .kiln
        .get(&format!("/api/projects/{}", run.pid), run.owner.token())
        .expect(200);
    p["org_id"].as_str().unwrap().to_owned()
}

fn credits(run: &Run, org: &str) -> Value {
    run.kiln
        .get(&format!("/api/orgs/{org}/credits"), run.owner.token())
        .expect(200)
}

#[test]
fn a_priced_model_spends_credit_and_stops_cleanly_when_it_is_spent() {
    // One micro-dollar: enough to start, not enough for the planner's call.
    let run = setup(
        Script::new().turn(plan_turn()).turn(code_turn()),
        &[
            ("KILN_LLM_MODEL", "gpt-4o-mini"),
            ("KILN_CREDIT_GRANT_MICROS", "1"),
            ("KILN_ADMIN_TOKEN", ADMIN),
        ],
    );
    let org = org_of(&run);
    let start = credits(&run, &org);
    assert_eq!(start["balance_micros"], 1, "{start}");
    assert_eq!(start["entries"][0]["kind"], "grant", "{start}");
    let mut ws = socket(&run);
    ws.send(json!({ "type": "generate", "prompt": "a tally counter that remembers", "template": "static" }));
    let events = until_done(&run, &mut ws);
    let end = events.last().unwrap();
    assert_eq!(end["type"], "state_change", "{end}");
    assert_eq!(end["step"], "failed", "{end}");
    assert!(
        end["reason"].as_str().unwrap().contains("credit is spent"),
        "{end}"
    );
    // The planner was asked (and paid for, up to what was left); the coder never was.
    assert_eq!(run.llm.chat_requests().len(), 1);
    let after = credits(&run, &org);
    assert_eq!(after["balance_micros"], 0, "{after}");
    assert_eq!(after["entries"][0]["kind"], "debit", "{after}");
    assert_eq!(
        after["entries"][0]["amount_micros"], -1,
        "clamped at what was left: {after}"
    );
    // With nothing left, a new generation is refused at once, on REST and on the socket.
    let refused = run
        .kiln
        .post(
            &format!("/api/projects/{}/generate", run.pid),
            run.owner.token(),
            json!({ "prompt": "try again" }),
        )
        .expect(402);
    assert_eq!(refused["error"]["code"], "payment_required", "{refused}");
    ws.send(json!({ "type": "generate", "prompt": "and again" }));
    let e = ws.recv_type("error");
    assert_eq!(e["code"], "payment_required", "{e}");
    // Only the operator grants credit: members cannot, a wrong token cannot.
    let path = format!("/api/orgs/{org}/credits");
    let grant = json!({ "amount_micros": 2_000_000, "reason": "top-up" });
    run.kiln
        .post(&path, run.owner.token(), grant.clone())
        .expect(403);
    run.kiln
        .post(&path, Some("not-the-operator"), grant.clone())
        .expect(403);
    let bad = run
        .kiln
        .post(
            &path,
            Some(ADMIN),
            json!({ "amount_micros": 0, "reason": "x" }),
        )
        .expect(400);
    assert_eq!(bad["error"]["code"], "invalid_field", "{bad}");
    let granted = run.kiln.post(&path, Some(ADMIN), grant).expect(200);
    assert_eq!(granted["balance_micros"], 2_000_000, "{granted}");
    assert_eq!(credits(&run, &org)["entries"][0]["reason"], "top-up");
}

#[test]
fn an_unpriced_model_needs_no_credit() {
    let run = setup(
        Script::new().turn(plan_turn()).turn(code_turn()),
        &[("KILN_CREDIT_GRANT_MICROS", "0")],
    );
    let org = org_of(&run);
    assert_eq!(credits(&run, &org)["balance_micros"], 0);
    let events = generate_to_completion(&run);
    let done = events.last().unwrap();
    assert_eq!(done["type"], "generation_complete", "{done}");
    let after = credits(&run, &org);
    assert_eq!(after["balance_micros"], 0, "{after}");
    assert_eq!(
        after["entries"].as_array().unwrap().len(),
        1,
        "no debits: {after}"
    );
}
