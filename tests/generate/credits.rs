//! Credits end to end: a generation on a priced model holds part of the org's credit when it
//! starts and spends it call by call; with too little left a start is refused (402), and of
//! two racing for one hold one runs; a running one stops before its next call once all is
//! spent, the balance never below zero; the ledger sums to the balance; the operator grants
//! more; an unpriced model needs none.

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
    let c = run
        .kiln
        .get(&format!("/api/orgs/{org}/credits"), run.owner.token())
        .expect(200);
    // Every grant, hold, release and debit, summed, is the balance.
    let sum: i64 = c["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["amount_micros"].as_i64().unwrap())
        .sum();
    assert_eq!(
        sum,
        c["balance_micros"].as_i64().unwrap(),
        "the ledger: {c}"
    );
    c
}

fn kinds(c: &Value) -> Vec<&str> {
    c["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect()
}

#[test]
fn a_priced_model_spends_credit_and_stops_cleanly_when_it_is_spent() {
    // 300 micro-dollars, all of it one generation's hold: enough to start, not enough for the
    // planner's call (315 at gpt-4o-mini's prices for the scripted usage).
    let run = setup(
        Script::new().turn(plan_turn()).turn(code_turn()),
        &[
            ("KILN_LLM_MODEL", "gpt-4o-mini"),
            ("KILN_CREDIT_GRANT_MICROS", "300"),
            ("KILN_CREDIT_HOLD_MICROS", "300"),
            ("KILN_ADMIN_TOKEN", ADMIN),
        ],
    );
    let org = org_of(&run);
    let start = credits(&run, &org);
    assert_eq!(start["balance_micros"], 300, "{start}");
    assert_eq!(kinds(&start), ["grant"]);
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
    // The hold paid 300; the 15 beyond it met an empty balance: that debit is clamped at 0.
    assert_eq!(kinds(&after), ["debit", "hold", "grant"], "{after}");
    assert_eq!(after["entries"][0]["amount_micros"], 0, "clamped: {after}");
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
fn of_two_generations_racing_for_one_hold_one_runs_and_one_gets_402() {
    let run = setup(
        Script::new().turn(plan_turn()).turn(code_turn()),
        &[
            ("KILN_LLM_MODEL", "gpt-4o-mini"),
            ("KILN_CREDIT_GRANT_MICROS", "700000"),
            ("KILN_CREDIT_HOLD_MICROS", "500000"),
        ],
    );
    let org = org_of(&run);
    let other = run
        .kiln
        .post(
            "/api/projects",
            run.owner.token(),
            json!({ "name": "second" }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let go = std::sync::Arc::new(std::sync::Barrier::new(2));
    let starts: Vec<_> = [run.pid.clone(), other.clone()]
        .into_iter()
        .map(|pid| {
            let (url, token, go) = (run.kiln.url.clone(), run.owner.token.clone(), go.clone());
            std::thread::spawn(move || {
                go.wait();
                let r = ureq::post(&format!("{url}/api/projects/{pid}/generate"))
                    .set("authorization", &format!("Bearer {token}"))
                    .send_json(
                        json!({ "prompt": "a tally counter that remembers", "template": "static" }),
                    );
                let status = match r {
                    Ok(r) => r.status(),
                    Err(ureq::Error::Status(s, _)) => s,
                    Err(e) => panic!("{e}"),
                };
                (pid, status)
            })
        })
        .collect();
    let mut results: Vec<(String, u16)> = starts.into_iter().map(|t| t.join().unwrap()).collect();
    results.sort_by_key(|r| r.1);
    assert_eq!(
        results.iter().map(|r| r.1).collect::<Vec<_>>(),
        [202, 402],
        "exactly one holds the credit"
    );
    let winner = &results[0].0;
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let g = run
            .kiln
            .get(
                &format!("/api/projects/{winner}/generation"),
                run.owner.token(),
            )
            .expect(200);
        let step = g["step"]["step"].as_str().unwrap_or("").to_owned();
        if ["done", "failed", "cancelled"].contains(&step.as_str()) {
            assert_eq!(step, "done", "{g}");
            break;
        }
        assert!(Instant::now() < deadline, "the generation did not end: {g}");
        std::thread::sleep(Duration::from_millis(300));
    }
    // Its release is recorded right after its last step is stored.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let c = credits(&run, &org);
        if kinds(&c).first() == Some(&"release") || Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(kinds(&after), ["release", "hold", "grant"], "{after}");
    // What it spent is what the cost log says, and what the usage API says.
    let logged = run.kiln.d1(&format!(
        "SELECT COALESCE(SUM(c.cost_micros), 0) AS cost, COUNT(*) AS calls FROM ai_calls c \
         JOIN projects p ON p.id = c.project_id WHERE p.org_id = '{org}'"
    ));
    let spent = logged[0]["cost"].as_i64().unwrap();
    assert!(spent > 0, "{logged:?}");
    assert_eq!(
        after["balance_micros"].as_i64().unwrap(),
        700_000 - spent,
        "{after}"
    );
    let usage = run
        .kiln
        .get(
            &format!("/api/orgs/{org}/usage?group=agent"),
            run.owner.token(),
        )
        .expect(200);
    assert_eq!(
        usage["totals"]["cost_micros"].as_i64().unwrap(),
        spent,
        "{usage}"
    );
    assert_eq!(usage["totals"]["calls"], logged[0]["calls"], "{usage}");
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
