//! The sandbox fleet: three real sandbox-proxy hosts beat to one Kiln; projects spread over
//! them, a host stopped mid-generation has its projects moved and finished elsewhere without
//! a model call repeated, and a draining host gets no new sandbox.

use super::*;

const FLEET_SECRET: &str = "e2e-fleet-secret-0123456789abcdef0123456789";

struct Host {
    id: &'static str,
    url: String,
    group: Group,
    credential: String,
}

fn credential(id: &str) -> String {
    let out = Command::new(kiln_e2e::sandbox::proxy_bin_beside_exe())
        .args(["credential", id])
        .env("KILN_FLEET_SECRET", FLEET_SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn start_host(id: &'static str, instance: &str, octet: u8, edge: &str) -> Host {
    let port = kiln_e2e::free_port();
    let state =
        std::env::temp_dir().join(format!("kiln-e2e-fleet-{instance}-{}", std::process::id()));
    let credential = credential(id);
    let bin = kiln_e2e::sandbox::proxy_bin_beside_exe();
    let group = kiln_e2e::sandbox::spawn_proxy(&kiln_e2e::sandbox::ProxySpec {
        bin: &bin,
        instance,
        octet,
        port,
        state: &state,
        jwt_secret: SANDBOX_SECRET,
        extra: vec![
            ("KILN_SANDBOX_EDGE_URL".into(), edge.into()),
            ("KILN_SANDBOX_HOST_CREDENTIAL".into(), credential.clone()),
            ("KILN_SANDBOX_HEARTBEAT_MS".into(), "300".into()),
        ],
    })
    .unwrap_or_else(|e| panic!("{e}"));
    Host {
        id,
        url: format!("http://127.0.0.1:{port}"),
        group,
        credential,
    }
}

impl Host {
    /// Whether this host holds the project's sandbox.
    fn holds(&self, project: &str) -> bool {
        match ureq::get(&format!("{}/v1/sandboxes/{project}", self.url))
            .set(
                "authorization",
                &format!("Bearer {}", sandbox_token(project)),
            )
            .call()
        {
            Ok(_) => true,
            Err(ureq::Error::Status(404, _)) => false,
            Err(e) => panic!("asking {} about {project}: {e}", self.id),
        }
    }
}

struct Member {
    user: kiln_e2e::User,
    pid: String,
}

fn member(kiln: &Kiln, n: usize) -> Member {
    let user = register(kiln, &format!("fleet{n}"));
    let pid = kiln
        .post(
            "/api/projects",
            user.token(),
            json!({ "name": format!("tally {n}") }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Member { user, pid }
}

fn start_generation(kiln: &Kiln, m: &Member) -> kiln_e2e::ws::Socket {
    let mut ws = kiln.ws(&m.pid, Auth::Bearer(&m.user.token)).unwrap();
    ws.send(json!({ "type": "hello" }));
    ws.recv_type("state");
    generate(&mut ws);
    ws
}

fn until_end(kiln: &Kiln, ws: &mut kiln_e2e::ws::Socket) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        assert!(
            Instant::now() < deadline,
            "no end of generation\n{}",
            kiln.log()
        );
        let Some(e) = ws.try_recv(Duration::from_secs(1)) else {
            continue;
        };
        if e["type"] == "generation_complete"
            || (e["type"] == "state_change" && (e["step"] == "failed" || e["step"] == "cancelled"))
        {
            return e;
        }
    }
}

#[test]
fn projects_spread_over_three_hosts_move_off_a_stopped_one_and_avoid_a_draining_one() {
    let llm = ScriptedLlm::start(
        Script::new().turn(plan_turn().reusable()).turn(
            code_turn()
                .reusable()
                .chunk_size(8)
                .chunk_delay(Duration::from_millis(60)),
        ),
    );
    let base = llm.base_url();
    let kiln = Kiln::start_with(&[
        ("KILN_LLM_BASE_URL", base.as_str()),
        ("KILN_LLM_MODEL", "kiln-scripted"),
        ("KILN_SANDBOX_JWT_SECRET", SANDBOX_SECRET),
        ("KILN_FLEET_SECRET", FLEET_SECRET),
        ("KILN_FLEET_TTL_MS", "2000"),
        ("KILN_BROWSER_CHECKS", "off"),
    ]);
    let mut hosts = vec![
        start_host("h1", "fa", 218, &kiln.url),
        start_host("h2", "fb", 219, &kiln.url),
        start_host("h3", "fc", 220, &kiln.url),
    ];
    // A beat with a forged credential is refused.
    kiln.post(
        "/api/fleet/heartbeat",
        Some("not-a-credential"),
        json!({ "url": "http://127.0.0.1:9", "capacity": 4, "running": 0 }),
    )
    .expect_error(401, "unauthorized");
    kiln.post(
        "/api/fleet/heartbeat",
        Some(&hosts[0].credential),
        json!({ "url": "ftp://x", "capacity": 4, "running": 0 }),
    )
    .expect_error(400, "invalid_field");
    // Every host has beaten at least once.
    std::thread::sleep(Duration::from_millis(1500));

    let members: Vec<Member> = (0..9).map(|n| member(&kiln, n)).collect();
    let mut sockets: Vec<_> = members.iter().map(|m| start_generation(&kiln, m)).collect();
    // The sandbox is placed before the coder is asked: once a file streams, it is somewhere.
    for ws in sockets.iter_mut() {
        ws.recv_type("file_chunk");
    }
    let on = |h: &Host| members.iter().filter(|m| h.holds(&m.pid)).count();
    let spread: Vec<usize> = hosts.iter().map(on).collect();
    assert_eq!(
        spread,
        vec![3, 3, 3],
        "least loaded placement spreads 9 projects evenly"
    );

    // h2 stops while its projects are still streaming.
    let moved: Vec<String> = members
        .iter()
        .filter(|m| hosts[1].holds(&m.pid))
        .map(|m| m.pid.clone())
        .collect();
    hosts[1].group.stop();
    for (m, ws) in members.iter().zip(sockets.iter_mut()) {
        let end = until_end(&kiln, ws);
        assert_eq!(
            end["type"],
            "generation_complete",
            "{}: {end}\n{}",
            m.pid,
            kiln.log()
        );
    }
    for pid in &moved {
        let now: Vec<&str> = [&hosts[0], &hosts[2]]
            .iter()
            .filter(|h| h.holds(pid))
            .map(|h| h.id)
            .collect();
        assert_eq!(
            now.len(),
            1,
            "{pid} lives on exactly one remaining host: {now:?}"
        );
        let h = if now[0] == "h1" { &hosts[0] } else { &hosts[2] };
        let main = ureq::get(&format!("{}/v1/sandboxes/{pid}/files/main.js", h.url))
            .set("authorization", &format!("Bearer {}", sandbox_token(pid)))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        assert_eq!(main, MAIN, "the moved sandbox holds the project's files");
    }
    // No step was lost or repeated: one plan and one coder call per project.
    assert_eq!(llm.calls_to(0), 9, "plans");
    assert_eq!(llm.calls_to(1), 9, "coder calls: none repeated by the move");

    // h1 drains: a new project goes to h3, the one live host that takes new sandboxes.
    let drained = ureq::post(&format!("{}/v1/host/drain", hosts[0].url))
        .set("authorization", &format!("Bearer {}", hosts[0].credential))
        .call()
        .unwrap()
        .into_json::<Value>()
        .unwrap();
    assert_eq!(drained["draining"], true);
    assert_eq!(drained["edge_told"], true);
    let refused = ureq::post(&format!("{}/v1/host/drain", hosts[2].url))
        .set("authorization", &format!("Bearer {}", hosts[0].credential))
        .call();
    assert!(
        matches!(refused, Err(ureq::Error::Status(401, _))),
        "another host's credential"
    );
    let late = member(&kiln, 9);
    let mut ws = start_generation(&kiln, &late);
    let end = until_end(&kiln, &mut ws);
    assert_eq!(end["type"], "generation_complete", "{end}");
    assert!(
        !hosts[0].holds(&late.pid),
        "the draining host got no new sandbox"
    );
    assert!(hosts[2].holds(&late.pid));
    drop(hosts);
}
