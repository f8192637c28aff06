//! A webhook delivery builds an app end to end: the scripted model, the real sandbox, a
//! version at the end; every watching client sees it start, by the webhook.

use super::*;
use kiln_core::webhooks::sign;

#[test]
fn a_signed_webhook_delivery_builds_a_running_versioned_app() {
    let run = setup(Script::new().turn(plan_turn()).turn(code_turn()), &[]);
    let made = run
        .kiln
        .post(
            &format!("/api/projects/{}/webhooks", run.pid),
            run.owner.token(),
            json!({ "prompt_template": "a tally counter that {{/wish}}", "template": "static" }),
        )
        .expect(201);
    let (hook, secret) = (
        made["id"].as_str().unwrap(),
        made["secret"].as_str().unwrap(),
    );
    let mut ws = socket(&run);
    let body = br#"{"wish":"remembers"}"#;
    let t = Utc::now().timestamp();
    let accepted = run
        .kiln
        .raw(
            "POST",
            &format!("/hooks/{hook}"),
            &[
                ("kiln-signature".into(), sign(secret, t, body)),
                ("kiln-delivery".into(), "deploy-1".into()),
            ],
            Some(body),
        )
        .expect(202);
    let events = until_done(&run, &mut ws);
    let prompt = events.iter().find(|e| e["type"] == "prompt").unwrap();
    assert_eq!(prompt["prompt"], "a tally counter that remembers");
    assert_eq!(prompt["by"], format!("webhook {hook}"));
    assert_eq!(prompt["generation_id"], accepted["generation_id"]);
    let done = events.last().unwrap();
    assert_eq!(done["type"], "generation_complete", "{done}");
    assert_eq!(done["version"], 1);
    let log = run
        .kiln
        .get(
            &format!("/api/projects/{}/webhooks/{hook}/deliveries", run.pid),
            run.owner.token(),
        )
        .expect(200);
    assert_eq!(log["items"][0]["generation_id"], accepted["generation_id"]);
}
