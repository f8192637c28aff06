//! A generated app is untrusted: it is served only on its project's own preview origin, it
//! cannot reach Kiln's API with the viewer's session, it cannot set Kiln's cookies or widen
//! itself (service worker scope, clearing the origin's data), and two projects' previews
//! share no storage. The app here is written to try all of that.

use super::*;

const PROBE_PLAN: &str = r##"{"name":"Probe","summary":"An app that tries to reach beyond its preview.","template":"react-vite",
"design":{"style":"plain","palette":[{"name":"bg","hex":"#ffffff"},{"name":"ink","hex":"#111111"}],"typography":"system-ui","sections":["probe"]},
"images":[],
"phases":[{"name":"Probe","goal":"Report what the page can reach","files":["vite.config.js","src/App.tsx"],"acceptance":[]}]}"##;

/// Vite picks `vite.config.js` before the template's `vite.config.ts`. Its dev server sends
/// every header a preview must never pass on, and one cookie of the app's own.
const HOSTILE_CONFIG: &str = r#"import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

const hostile = {
  name: 'hostile-headers',
  configureServer(server) {
    server.middlewares.use((req, res, next) => {
      res.setHeader('Set-Cookie', ['kiln_session=stolen; Path=/', '__Host-kiln_preview=forged; Path=/; Secure', 'theme=dark; Path=/'])
      res.setHeader('Service-Worker-Allowed', '/')
      res.setHeader('Clear-Site-Data', '"*"')
      next()
    })
  },
}

export default defineConfig({
  plugins: [react(), hostile],
  base: process.env.KILN_BASE ?? '/',
  cacheDir: '.vite',
  server: { host: '0.0.0.0', port: Number(process.env.PORT ?? 5173), strictPort: true, allowedHosts: true },
})
"#;

/// Asks Kiln's API for the viewer, same-host and at the API's own origin.
const PROBE_APP: &str = r#"import { useEffect, useState } from 'react'

async function probe(url: string): Promise<string> {
  try {
    const r = await fetch(url, { credentials: 'include' })
    const body = await r.text()
    return `${r.status} ${body.slice(0, 300)}`
  } catch (e) {
    return `blocked ${String(e)}`
  }
}

export default function App() {
  const [same, setSame] = useState('pending')
  const [api, setApi] = useState('pending')
  useEffect(() => {
    probe('/api/me').then(setSame)
    probe(`http://127.0.0.1:${location.port}/api/me`).then(setApi)
  }, [])
  return (
    <main>
      <h1>Probe</h1>
      <p id="same">{same}</p>
      <p id="api">{api}</p>
    </main>
  )
}
"#;

fn probe_script() -> Script {
    let coder = format!(
        "<file path=\"vite.config.js\">\n{HOSTILE_CONFIG}</file>\n<file path=\"src/App.tsx\">\n{PROBE_APP}</file>\n"
    );
    Script::new()
        .turn(
            Turn::text(PROBE_PLAN)
                .matching("planner of an app builder")
                .reusable(),
        )
        .turn(Turn::text(coder).matching("Phase 1 of 1").reusable())
}

fn generate_probe(run: &Run, project: &str) {
    let mut ws = run
        .kiln
        .ws(project, Auth::Bearer(&run.owner.token))
        .unwrap();
    ws.send(json!({ "type": "hello" }));
    ws.recv_type("state");
    ws.send(json!({ "type": "generate", "prompt": "probe the preview", "template": "react-vite" }));
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        assert!(
            Instant::now() < deadline,
            "no end of generation\n{}",
            run.kiln.log()
        );
        let Some(e) = ws.try_recv(Duration::from_secs(1)) else {
            continue;
        };
        if e["type"] == "generation_complete" {
            return;
        }
        assert!(
            !(e["type"] == "state_change" && (e["step"] == "failed" || e["step"] == "cancelled")),
            "{e}"
        );
    }
}

#[test]
fn a_preview_lives_on_its_own_origin_and_reaches_nothing_of_kilns() {
    let run = setup(probe_script(), &[]);
    let (kiln, owner) = (&run.kiln, &run.owner);
    let a = run.pid.clone();
    let b = kiln
        .post("/api/projects", owner.token(), json!({ "name": "second" }))
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    generate_probe(&run, &a);
    generate_probe(&run, &b);
    let (host_a, host_b) = (kiln.preview_host(&a), kiln.preview_host(&b));
    let session = vec![("cookie".to_owned(), format!("kiln_session={}", owner.token))];

    // The API's host serves no preview bytes, under the old path or any other.
    kiln.raw(
        "GET",
        &format!("/v1/sandboxes/{a}/preview/"),
        &session,
        None,
    )
    .expect_error(404, "not_found");
    let to_link = kiln.raw("GET", &format!("/preview/{a}/"), &session, None);
    assert_eq!(to_link.status, 302);
    assert!(to_link.text.is_empty());

    // The preview host knows nothing of Kiln's session, by cookie or by bearer token.
    kiln.on_host(&host_a, "GET", "/", &session)
        .expect_error(401, "unauthorized");
    kiln.on_host(&host_a, "GET", "/api/me", &session)
        .expect_error(401, "unauthorized");
    let bearer = vec![(
        "authorization".to_owned(),
        format!("Bearer {}", owner.token),
    )];
    kiln.on_host(&host_a, "GET", "/api/me", &bearer)
        .expect_error(401, "unauthorized");
    // A bare visit in a browser is sent through Kiln for a link.
    let nav = vec![("sec-fetch-mode".to_owned(), "navigate".to_owned())];
    let bounce = kiln.on_host(&host_a, "GET", "/", &nav);
    assert_eq!(bounce.status, 302);
    assert_eq!(
        bounce.header("location"),
        Some(format!("{}/preview/{a}/", kiln.url).as_str())
    );

    // A link is single-use and good for its own project only.
    let link = kiln
        .post(
            &format!("/api/projects/{a}/preview-link"),
            owner.token(),
            json!({}),
        )
        .expect(201);
    let (_, path) = kiln_e2e::split_url(link["url"].as_str().unwrap());
    kiln.on_host(&host_b, "GET", &path, &[])
        .expect_error(401, "unauthorized");
    let first = kiln.on_host(&host_a, "GET", &path, &[]);
    assert_eq!(first.status, 302, "{}", first.text);
    let set = first.header("set-cookie").unwrap();
    for attr in [
        "__Host-kiln_preview=",
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=None",
    ] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    assert!(!set.contains("Domain"), "host-only: {set}");
    kiln.on_host(&host_a, "GET", &path, &[])
        .expect_error(401, "unauthorized");
    let grant_a = vec![(
        "cookie".to_owned(),
        set.split(';').next().unwrap().to_owned(),
    )];
    // A's grant opens A, not B.
    kiln.on_host(&host_b, "GET", "/", &grant_a)
        .expect_error(401, "unauthorized");

    // With the grant the app is served — minus what reaches beyond it — and only Kiln's
    // UI may frame it.
    let page = kiln.on_host(&host_a, "GET", "/", &grant_a);
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("id=\"root\""), "{}", page.text);
    assert!(
        page.header("service-worker-allowed").is_none(),
        "{:?}",
        page.headers
    );
    assert!(
        page.header("clear-site-data").is_none(),
        "{:?}",
        page.headers
    );
    let cookies: Vec<&str> = page
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(cookies, ["theme=dark; Path=/"], "the app's own cookie only");
    let csp: Vec<&str> = page
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-security-policy"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert!(
        csp.contains(
            &format!(
                "frame-ancestors http://127.0.0.1:{p} http://localhost:{p}",
                p = kiln.port
            )
            .as_str()
        ),
        "{csp:?}"
    );
    // Asking the preview host for the API reaches the app (its index page), never Kiln.
    let me = kiln.on_host(
        &host_a,
        "GET",
        "/api/me",
        &[grant_a[0].clone(), session[0].clone()],
    );
    assert!(
        !me.text.contains(&owner.email) && !me.text.contains(&owner.id),
        "{}",
        me.text
    );
    // Revoking the session ends the preview at once.
    let other = kiln
        .post(
            "/api/auth/login",
            None,
            json!({ "email": owner.email, "password": owner.password }),
        )
        .expect(200)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let grant = vec![("cookie".to_owned(), kiln.open_preview(&a, &other))];
    assert_eq!(kiln.on_host(&host_a, "GET", "/", &grant).status, 200);
    kiln.post("/api/auth/logout", Some(&other), json!({}))
        .expect(204);
    kiln.on_host(&host_a, "GET", "/", &grant)
        .expect_error(401, "unauthorized");

    // In a real browser: the app's scripts get no user data from either origin, see none of
    // Kiln's cookies, and the two previews do not share localStorage.
    let shot = std::env::temp_dir().join(format!("kiln-isolation-{}.png", std::process::id()));
    let cfg = json!({
        "app": kiln.url,
        "email": owner.email,
        "password": owner.password,
        "projects": [a, b],
        "foreign": format!("http://elsewhere.localhost:{}", kiln.port),
        "shot": shot,
    });
    let report = kiln_e2e::browser_script("isolation.mjs", &cfg);
    assert!(report.get("error").is_none(), "{report}");
    assert_eq!(report["login"], 200, "{report}");
    for (project, host) in [(&a, &host_a), (&b, &host_b)] {
        let seen = &report["projects"][project.as_str()];
        assert!(
            seen["url"]
                .as_str()
                .unwrap()
                .starts_with(&format!("http://{host}/")),
            "{seen}"
        );
        for probe in ["same", "api"] {
            let text = seen[probe].as_str().unwrap();
            assert!(
                !text.contains(&owner.email) && !text.contains(&owner.id),
                "{probe} reached the user: {text}"
            );
        }
        assert!(
            seen["api"].as_str().unwrap().starts_with("blocked"),
            "Kiln's API answered another origin's script: {seen}"
        );
        let cookies = seen["cookies"].as_str().unwrap();
        assert!(!cookies.contains("kiln"), "{cookies}");
        assert!(cookies.contains("theme=dark"), "{cookies}");
        assert_eq!(
            seen["marker"],
            Value::Null,
            "storage leaked into {project}: {seen}"
        );
    }
    assert_eq!(report["first_again"], a.as_str(), "{report}");
    assert_eq!(
        report["hmr_connected"], true,
        "HMR through the preview host: {report}"
    );
    // Kiln's origin may frame a preview (the grant cookie works in a third-party frame);
    // another site may not.
    let by_kiln = &report["framed_by_kiln"];
    assert_eq!(by_kiln["loaded"], true, "{by_kiln}");
    assert!(
        by_kiln["text"].as_str().unwrap().contains("Probe"),
        "{by_kiln}"
    );
    let by_other = &report["framed_by_other"];
    assert_eq!(by_other["loaded"], false, "{by_other}");
    assert!(
        by_other["trail"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap().contains("frame-ancestors")),
        "refused for frame-ancestors, not something else: {by_other}"
    );
}
