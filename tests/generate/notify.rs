//! Outgoing notifications end to end: a generation that completes is posted, signed, to the
//! project's target; a receiver that fails first gets the same delivery again after the
//! backoff; every attempt is in the target's log.

use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// A request the receiver got: its headers (names lower case) and body.
type Received = (Vec<(String, String)>, Vec<u8>);

/// A receiver on loopback: answers each POST with the next status of `statuses` (then 200)
/// and keeps what it was sent.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

fn receiver(statuses: Vec<u16>) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        let mut statuses = statuses.into_iter();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            reader.read_line(&mut line).ok();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.trim_end().split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
            let len = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            reader.read_exact(&mut body).ok();
            seen.lock().unwrap().push((headers, body));
            let status = statuses.next().unwrap_or(200);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    Receiver { url, got }
}

#[test]
fn a_completed_generation_is_posted_signed_and_retried_until_the_receiver_takes_it() {
    let rx = receiver(vec![500, 500]);
    let run = setup(
        Script::new().turn(plan_turn()).turn(code_turn()),
        &[("KILN_NOTIFY_ALLOW_PRIVATE", "1")],
    );
    let path = format!("/api/projects/{}/notifications", run.pid);
    let made = run
        .kiln
        .post(
            &path,
            run.owner.token(),
            json!({ "url": rx.url, "events": ["generation.completed"] }),
        )
        .expect(201);
    let (target, secret) = (
        made["id"].as_str().unwrap().to_owned(),
        made["secret"].as_str().unwrap().to_owned(),
    );
    let events = generate_to_completion(&run);
    assert_eq!(events.last().unwrap()["type"], "generation_complete");
    // Two attempts meet a 500; the third comes after the backoff (10 s, then 20 s).
    let deadline = Instant::now() + Duration::from_secs(90);
    while rx.got.lock().unwrap().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the delivery was not tried three times"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let got = rx.got.lock().unwrap().clone();
    let header = |h: &Vec<(String, String)>, name: &str| {
        h.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    for (headers, body) in &got {
        let sig = header(headers, "kiln-signature");
        let now = Utc::now().timestamp();
        assert_eq!(
            kiln_core::webhooks::verify(Some(&sig), body, &[&secret], now),
            Ok(()),
            "{sig}"
        );
        assert_eq!(header(headers, "kiln-event"), "generation.completed");
    }
    for retry in &got[1..] {
        assert_eq!(
            header(&got[0].0, "kiln-delivery"),
            header(&retry.0, "kiln-delivery"),
            "a retry is the same delivery"
        );
    }
    let body: Value = serde_json::from_slice(&got[2].1).unwrap();
    assert_eq!(body["event"], "generation.completed", "{body}");
    assert_eq!(body["project_id"], run.pid.as_str(), "{body}");
    assert_eq!(body["version"], 1, "{body}");
    assert!(
        body["preview_url"].as_str().unwrap().contains(".preview."),
        "{body}"
    );
    let log = run
        .kiln
        .get(&format!("{path}/{target}/attempts"), run.owner.token())
        .expect(200);
    let attempts: Vec<(u64, u64)> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["attempt"].as_u64().unwrap(),
                a["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(attempts, [(3, 200), (2, 500), (1, 500)], "{log}");
}
