//! Usage from the cost log: an org's and a project's totals and groups for a period equal the
//! sums of their `ai_calls` rows.

use kiln_e2e::{register, shared};
use serde_json::{json, Value};

const DAY: i64 = 86_400_000;
// 2026-12-01T00:00:00Z
const T: i64 = 1_796_083_200_000;

#[test]
fn usage_totals_and_groups_equal_the_cost_log() {
    let kiln = shared();
    let owner = register(kiln, "usage");
    let org = kiln
        .post("/api/orgs", owner.token(), json!({ "name": "Usage Co" }))
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let project = |name: &str| {
        kiln.post(
            "/api/projects",
            owner.token(),
            json!({ "name": name, "org": org }),
        )
        .expect(201)["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (a, b) = (project("a"), project("b"));
    // (project, role, model, input, output, cost, latency, at)
    type Row<'a> = (&'a str, &'a str, &'a str, i64, i64, i64, i64, i64);
    let calls: Vec<Row> = vec![
        (&a, "planner", "big", 1000, 300, 5000, 900, T),
        (&a, "coder", "small", 2000, 800, 1200, 400, T + 3_600_000),
        (&b, "coder", "small", 500, 100, 300, 200, T + DAY),
        (&b, "fixer", "small", 700, 90, 250, 100, T + DAY + 1),
        (&a, "coder", "small", 9999, 9999, 9999, 1, T - 1), // before the period
    ];
    let values: Vec<String> = calls
        .iter()
        .map(|(p, r, m, i, o, c, l, at)| {
            format!("('{p}', 'g1', '{r}', '{m}', {i}, {o}, {c}, {l}, 'ok', {at})")
        })
        .collect();
    kiln.d1(&format!(
        "INSERT INTO ai_calls (project_id, generation_id, role, model, input_tokens, \
         output_tokens, cost_micros, latency_ms, status, created_at) VALUES {}",
        values.join(", ")
    ));
    let get = |path: String| kiln.get(&path, owner.token()).expect(200);
    let q = format!("from={T}&to={}", T + 2 * DAY);
    let by_day = get(format!("/api/orgs/{org}/usage?{q}&group=day"));
    let totals = &by_day["totals"];
    assert_eq!(
        (
            &totals["calls"],
            &totals["input_tokens"],
            &totals["output_tokens"],
            &totals["cost_micros"]
        ),
        (&json!(4), &json!(4200), &json!(1290), &json!(6750)),
        "{by_day}"
    );
    let days: Vec<(&str, u64)> = rows(&by_day)
        .iter()
        .map(|r| (r["key"].as_str().unwrap(), r["calls"].as_u64().unwrap()))
        .collect();
    assert_eq!(days, [("2026-12-01", 2), ("2026-12-02", 2)]);
    for group in ["agent", "model", "project"] {
        let u = get(format!("/api/orgs/{org}/usage?{q}&group={group}"));
        let cost: u64 = rows(&u)
            .iter()
            .map(|r| r["cost_micros"].as_u64().unwrap())
            .sum();
        assert_eq!(cost, 6750, "{group}: {u}");
        assert_eq!(u["totals"], by_day["totals"], "{group}");
    }
    let by_model = get(format!("/api/orgs/{org}/usage?{q}&group=model"));
    assert_eq!(rows(&by_model)[0]["key"], "big");
    assert_eq!(rows(&by_model)[1]["latency_p50_ms"], 200, "{by_model}");
    // One project's usage is its own calls only.
    let pa = get(format!("/api/projects/{a}/usage?{q}&group=agent"));
    assert_eq!(pa["totals"]["calls"], 2, "{pa}");
    assert_eq!(pa["totals"]["cost_micros"], 6200);

    // Clients of the org see no costs; bad questions are 400s.
    let client = register(kiln, "usage-client");
    let org_id = org.clone();
    kiln_e2e::join_org(kiln, &owner, &org_id, &client, "client");
    kiln.get(&format!("/api/orgs/{org}/usage"), client.token())
        .expect_error(403, "forbidden");
    for bad in [
        "group=week".to_owned(),
        format!("from={}&to={T}", T + 1),
        format!("from={}&to={T}", T - 400 * DAY),
        "from=yesterday".to_owned(),
    ] {
        kiln.get(&format!("/api/orgs/{org}/usage?{bad}"), owner.token())
            .expect_error(400, "invalid_parameter");
    }
}

fn rows(u: &Value) -> &Vec<Value> {
    u["rows"].as_array().unwrap()
}
