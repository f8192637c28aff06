//! The check step's work in the sandbox: the template's compile check with its automatic
//! repairs, the preview, and the acceptance checks in Chromium.

use super::*;

/// The template's check: a type-check for react-vite, a syntax check for static JS. Before a
/// failed type-check goes to the fixer, deterministic repairs of common import mistakes
/// (`core::agent::autofix`) are applied and the type-check runs again: seconds instead of a
/// fix round of model time.
pub(super) async fn compile_check(
    room: &ProjectRoom,
    sb: &SandboxClient,
    template: Template,
) -> std::result::Result<Vec<String>, SandboxError> {
    let exec = |cmd: &str, args: Vec<String>| ExecRequest {
        cmd: cmd.into(),
        args,
        cwd: None,
        timeout_ms: Some(CHECK_TIMEOUT_MS),
        env: Default::default(),
    };
    let mut errors = Vec::new();
    match template {
        Template::ReactVite => {
            let tsc = || {
                exec(
                    "npx",
                    vec!["tsc".into(), "--noEmit".into(), "-p".into(), ".".into()],
                )
            };
            let mut pass = 0;
            loop {
                let r = sb.exec(&tsc(), |_| {}).await?;
                if let Some(error) = checks::compile_error(&ran(&r)) {
                    pass += 1;
                    if !r.timed_out
                        && pass <= AUTOFIX_PASSES
                        && autofix(room, sb, &r.output).await?
                    {
                        continue;
                    }
                    errors.push(error);
                    if !r.timed_out {
                        let (files, _) = project_code(room)?;
                        errors.extend(autofix::hints(&r.output, &files));
                    }
                }
                break;
            }
        }
        Template::Static => {
            for f in room.store().list()? {
                if !f.path.as_str().ends_with(".js") {
                    continue;
                }
                let args = vec!["--check".to_owned(), f.path.to_string()];
                let r = sb.exec(&exec("node", args), |_| {}).await?;
                errors.extend(checks::compile_error(&ran(&r)));
            }
        }
    }
    Ok(errors)
}

/// Applies `core::agent::autofix`'s repairs for a failed type-check to the working tree and the
/// sandbox; true when something changed (so the type-check is worth running again).
pub(super) async fn autofix(
    room: &ProjectRoom,
    sb: &SandboxClient,
    tsc_output: &str,
) -> std::result::Result<bool, SandboxError> {
    let (files, deps) = project_code(room)?;
    let repair = autofix::repair(tsc_output, &files, &deps);
    if repair.is_empty() {
        return Ok(false);
    }
    let mut writes = Vec::new();
    for (path, content) in repair.files {
        let Ok(p) = ProjectPath::parse(&path) else {
            continue;
        };
        write_agent_file(room, &p, content.as_bytes())?;
        writes.push(FileWrite {
            path: p,
            content,
            encoding: FileEncoding::Utf8,
        });
    }
    let mut changed = !writes.is_empty();
    if changed {
        sb.write_files(WriteFiles { files: writes }).await?;
    }
    let mut notes = repair.notes;
    if !repair.install.is_empty() {
        match NpmInstall::of(repair.install) {
            Ok(install) => {
                let command = install.command();
                match npm_install(room, sb, &command, &install).await? {
                    Ok(()) => changed = true,
                    Err(why) => notes.push(format!("{command} failed: {why}")),
                }
            }
            Err(refused) => notes.push(refused.to_string()),
        }
    }
    let _ = room.broadcast(ServerEvent::CommandOutput {
        command: "autofix".into(),
        output: notes.join("\n"),
    });
    Ok(changed)
}

/// `KILN_BROWSER_CHECKS=off` skips writing and running acceptance checks.
pub(super) fn browser_checks_enabled(room: &ProjectRoom) -> bool {
    room.env()
        .var("KILN_BROWSER_CHECKS")
        .map(|v| v.to_string() != "off")
        .unwrap_or(true)
}

/// The project's preview, on its own origin (`KILN_PREVIEW_URL`'s domain). Viewers get in
/// through a preview link; opening this bare URL in a browser sends them through Kiln for one.
pub(super) fn preview_url(room: &ProjectRoom, project: &str) -> String {
    let domain = room
        .env()
        .var("KILN_PREVIEW_URL")
        .map(|v| v.to_string())
        .unwrap_or_else(|_| "http://preview.localhost:8787".into());
    kiln_core::origin::preview_url(&domain, project)
}

/// Starts the app's dev server (a no-op when it runs) and, the first time it is up,
/// publishes the preview: people watch the app while the rest is built, checked and fixed.
pub(super) async fn start_preview(
    room: &ProjectRoom,
    project: &str,
    g: &mut Generation,
    sb: &SandboxClient,
) -> std::result::Result<DevServerStatus, SandboxError> {
    let status = sb.dev_server(DevServerAction::Start).await?;
    if status.state == "ready" && g.preview_url.is_none() {
        let url = preview_url(room, project);
        let published = Outcome::PreviewPublished { url: url.clone() };
        g.apply(published.clone());
        // Stored now, not when the step ends, so `GET …/generation` shows it too. Only this
        // fact: the stored state may hold a cancel or queued prompts this step has not seen.
        if let Ok(Some(mut stored)) = load(room) {
            if stored.id == g.id {
                stored.apply(published);
                let _ = save(room, &stored);
            }
        }
        let _ = room.broadcast(ServerEvent::ServerStarted { preview_url: url });
    }
    Ok(status)
}

/// Runs every acceptance check in the sandbox's Chromium against its dev server;
/// `core::agent::checks` reads what the runner says.
pub(super) async fn run_browser_checks(
    room: &ProjectRoom,
    project: &str,
    g: &mut Generation,
    sb: &SandboxClient,
    file: &CheckFile,
) -> std::result::Result<RunVerdict, SandboxError> {
    let status = start_preview(room, project, g, sb).await?;
    if let Some(why) = checks::dev_server_failure(&status.state, &status.log) {
        return Ok(RunVerdict::AppDoesNotRun(why));
    }
    let _ = room.broadcast(ServerEvent::CommandOutput {
        command: "acceptance checks".into(),
        output: format!("running {} checks in Chromium", file.checks.len()),
    });
    let req = ExecRequest {
        cmd: "node".into(),
        args: vec!["/opt/kiln/check.mjs".into(), CHECKS_PATH.into()],
        cwd: None,
        timeout_ms: Some(BROWSER_CHECK_TIMEOUT_MS),
        env: Default::default(),
    };
    let r = sb.exec(&req, |_| {}).await?;
    Ok(checks::interpret_run(&ran(&r), file.checks.len()))
}

/// A sandbox command's result as `core::agent::checks` reads it.
pub(super) fn ran(r: &ExecResult) -> Ran<'_> {
    Ran {
        output: &r.output,
        exit_code: r.exit_code,
        timed_out: r.timed_out,
        oom_killed: r.oom_killed,
    }
}
