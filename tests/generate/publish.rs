//! Publishing end to end: a generated react-vite app is built with `vite build` in its real
//! sandbox, uploaded to R2 and served on its own host (`<slug>.sites.localhost`), never on
//! Kiln's; a republish switches the whole site at once while a client polls; unpublish
//! takes it down.

use super::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const APP: &str = "import { usePersistentState } from './lib/persist'\n\nexport default function App() {\n  const [count, setCount] = usePersistentState('count', 0)\n  return (\n    <main>\n      <h1>Tally one</h1>\n      <button id=\"plus\" onClick={() => setCount(count + 1)}>+</button> <output id=\"count\">{count}</output>\n    </main>\n  )\n}\n";

/// The site's state, once it is no longer building.
fn until_published(run: &Run) -> Value {
    let path = format!("/api/projects/{}/publish", run.pid);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let site = run.kiln.get(&path, run.owner.token()).expect(200);
        if site["state"] != "building" {
            return site;
        }
        assert!(
            Instant::now() < deadline,
            "still building: {site}\n{}",
            run.kiln.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// One look at the site while it is republished: the page, and each asset it names with its
/// status and whether it is version 2's.
type Poll = (String, Vec<(String, u16, bool)>);

/// The `/assets/…` paths an HTML page loads.
fn assets(html: &str) -> Vec<String> {
    html.split(['"', '\''])
        .filter(|s| s.starts_with("/assets/"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_generated_app_is_published_on_its_own_host_switched_whole_and_taken_down() {
    let run = setup(
        Script::new().turn(
            Turn::text(format!("<file path=\"src/App.tsx\">\n{APP}</file>\n"))
                .matching("ONE file, src/App.tsx"),
        ),
        &[("KILN_MODEL_PROFILE", "small")],
    );
    let (kiln, token, pid) = (&run.kiln, run.owner.token(), run.pid.as_str());
    let mut ws = socket(&run);
    ws.send(json!({ "type": "generate", "prompt": "a tally counter that remembers", "template": "react-vite" }));
    let events = until_done(&run, &mut ws);
    assert_eq!(events.last().unwrap()["type"], "generation_complete");
    let publish = format!("/api/projects/{pid}/publish");

    // Bad input is refused before anything is stored.
    kiln.post(&publish, token, json!({ "slug": "Not A Name" }))
        .expect_error(400, "invalid_field");
    kiln.post(&publish, token, json!({ "version": 99 }))
        .expect_error(400, "invalid_field");
    kiln.post(&publish, token, json!({ "colour": "red" }))
        .expect_error(400, "invalid_field");
    kiln.get(&publish, token).expect_error(404, "not_found");

    // The project's name is its site's name; the build streams to the room.
    let started = kiln.post(&publish, token, json!({})).expect(202);
    assert_eq!(started["state"], "building", "{started}");
    assert_eq!(started["slug"], "tally");
    let host = format!("tally.sites.localhost:{}", kiln.port);
    assert_eq!(started["url"], format!("http://{host}/"));
    let site = until_published(&run);
    assert_eq!(site["state"], "live", "{site}\n{}", kiln.log());
    assert_eq!(site["version"], 1);
    let mut seen = Vec::new();
    while let Some(e) = ws.try_recv(Duration::from_millis(500)) {
        seen.push(e);
    }
    assert!(
        seen.iter()
            .any(|e| e["type"] == "command_output" && e["command"] == "publish"),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| e["type"] == "site" && e["site"]["state"] == "live"),
        "{seen:?}"
    );

    // The site: index.html asked again each time, hashed assets immutable, both typed.
    let get = |path: &str, headers: &[(String, String)]| kiln.on_host(&host, "GET", path, headers);
    let index = get("/", &[]);
    assert_eq!(index.status, 200, "{}", index.text);
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        index.header("cache-control"),
        Some("public, max-age=0, must-revalidate")
    );
    assert!(index.text.contains("<div id=\"root\">"), "{}", index.text);
    let refs = assets(&index.text);
    let js = refs
        .iter()
        .find(|p| p.ends_with(".js"))
        .unwrap_or_else(|| panic!("no script in {}", index.text));
    let script = get(js, &[]);
    assert_eq!(script.status, 200);
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        script.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert!(
        script.text.contains("Tally one"),
        "the app's code is in the bundle"
    );
    let etag = script.header("etag").expect("an etag").to_owned();
    let again = get(js, &[("if-none-match".into(), etag)]);
    assert_eq!(again.status, 304);
    if let Some(css) = refs.iter().find(|p| p.ends_with(".css")) {
        assert_eq!(
            get(css, &[]).header("content-type"),
            Some("text/css; charset=utf-8")
        );
    }
    // Deep links are the app's routes; a missing file is a 404 page.
    let deep = get("/counters/3?x=1", &[]);
    assert_eq!(
        (deep.status, deep.text.as_str()),
        (200, index.text.as_str())
    );
    let missing = get("/missing.png", &[]);
    assert_eq!(missing.status, 404);
    assert!(missing.text.contains("does not exist"), "{}", missing.text);
    assert_eq!(kiln.on_host(&host, "POST", "/", &[]).status, 405);

    // Kiln's own origin never serves the site's bytes, and the site's host is not the API.
    let on_app = kiln.get(js, None);
    assert!(
        !on_app.text.contains("Tally one"),
        "the API host served the site's script"
    );
    let api_on_site = get("/api/health", &[]);
    assert!(!api_on_site.text.contains("\"ok\""), "{}", api_on_site.text);
    assert_eq!(
        kiln.on_host("nobody.sites.localhost", "GET", "/", &[])
            .status,
        404
    );

    // Another project cannot take the name.
    let other = kiln
        .post("/api/projects", token, json!({ "name": "other" }))
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    kiln.post(
        &format!("/api/projects/{other}/publish"),
        token,
        json!({ "slug": "another" }),
    )
    .expect_error(409, "conflict");
    kiln.post(
        &format!("/api/projects/{other}/versions"),
        token,
        json!({ "message": "empty" }),
    )
    .expect(201);
    kiln.post(
        &format!("/api/projects/{other}/publish"),
        token,
        json!({ "slug": "tally" }),
    )
    .expect_error(409, "already_exists");

    // Version 2, republished while a client polls: every answer is one whole site.
    let app_two = APP.replace("Tally one", "Tally two");
    let file = format!("/api/projects/{pid}/files/src/App.tsx");
    let etag = kiln
        .get(&file, token)
        .header("etag")
        .expect("a rev")
        .to_owned();
    let put = kiln.raw(
        "PUT",
        &file,
        &[
            ("authorization".into(), format!("Bearer {}", token.unwrap())),
            ("content-type".into(), "application/octet-stream".into()),
            ("if-match".into(), etag),
        ],
        Some(app_two.as_bytes()),
    );
    assert_eq!(put.status, 200, "{}", put.text);
    kiln.post(
        &format!("/api/projects/{pid}/versions"),
        token,
        json!({ "message": "two" }),
    )
    .expect(201);
    let stop = Arc::new(AtomicBool::new(false));
    let polls: Arc<Mutex<Vec<Poll>>> = Arc::default();
    let poller = {
        let (stop, polls, host, url) =
            (stop.clone(), polls.clone(), host.clone(), kiln.url.clone());
        std::thread::spawn(move || {
            let agent = ureq::AgentBuilder::new().build();
            let fetch = |path: &str| {
                let resp = agent.get(&format!("{url}{path}")).set("host", &host).call();
                match resp {
                    Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
                    Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap_or_default()),
                    Err(e) => panic!("{path}: {e}"),
                }
            };
            while !stop.load(Ordering::SeqCst) {
                let (status, html) = fetch("/");
                assert_eq!(status, 200, "{html}");
                let loaded = assets(&html)
                    .into_iter()
                    .map(|a| {
                        let (s, body) = fetch(&a);
                        let two = body.contains("Tally two");
                        (a, s, two)
                    })
                    .collect();
                polls.lock().unwrap().push((html, loaded));
            }
        })
    };
    kiln.post(&publish, token, json!({ "version": 2 }))
        .expect(202);
    let site = until_published(&run);
    assert_eq!(
        (site["state"].clone(), site["version"].clone()),
        (json!("live"), json!(2))
    );
    std::thread::sleep(Duration::from_millis(800));
    stop.store(true, Ordering::SeqCst);
    poller.join().expect("the poller saw a broken answer");
    let polls = polls.lock().unwrap();
    let pages: std::collections::BTreeSet<&String> = polls.iter().map(|(h, _)| h).collect();
    assert_eq!(pages.len(), 2, "the old page, then the new: {pages:?}");
    let mut saw_new = false;
    for (html, loaded) in polls.iter() {
        // Every asset a page names is there, and a page's scripts are all of one build.
        assert!(loaded.iter().all(|(_, s, _)| *s == 200), "{loaded:?}");
        let scripts: Vec<bool> = loaded
            .iter()
            .filter(|(a, _, _)| a.ends_with(".js"))
            .map(|(_, _, two)| *two)
            .collect();
        let new = scripts.first().copied().unwrap_or(false);
        assert!(scripts.iter().all(|t| *t == new), "{html}: {loaded:?}");
        // Never back to the old site once the new one was seen.
        assert!(!saw_new || new, "the old site came back");
        saw_new |= new;
    }
    assert!(saw_new, "the poller never saw version 2");
    assert!(
        get(js, &[]).status == 200,
        "the old build's assets stay reachable"
    );

    // Unpublished: the host answers 404, and the name stays the project's.
    let down = kiln.delete(&publish, token).expect(200);
    assert_eq!(down["state"], "unpublished");
    assert_eq!(get("/", &[]).status, 404);
    assert_eq!(get(js, &[]).status, 404);
    kiln.post(
        &format!("/api/projects/{other}/publish"),
        token,
        json!({ "slug": "tally" }),
    )
    .expect_error(409, "already_exists");
}
