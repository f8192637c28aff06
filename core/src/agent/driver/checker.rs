//! The check step's work in the sandbox: the template's compile check with its automatic
//! repairs, the preview, and the acceptance checks in Chromium.

use super::sandbox::npm_install;
use super::tree::project_code;
use super::*;
use crate::agent::autofix;
use crate::agent::checks::{self, CheckFile, Ran, RunVerdict, CHECKS_PATH};
use crate::agent::npm::NpmInstall;
use crate::agent::profile::Profile;
use crate::sandbox::{FileEncoding, WriteFiles};

fn room_side(e: HostError) -> SandboxError {
    SandboxError {
        message: e,
        status: None,
        lost: false,
    }
}

fn exec(cmd: &str, args: Vec<String>, timeout_ms: u64) -> ExecRequest {
    ExecRequest {
        cmd: cmd.into(),
        args,
        cwd: None,
        timeout_ms: Some(timeout_ms),
        env: Default::default(),
    }
}

/// The template's check: a type-check for react-vite, a syntax check for static JS. Before a
/// failed type-check goes to the fixer, deterministic repairs of common import mistakes
/// (`autofix`) are applied and the type-check runs again: seconds instead of a fix round of
/// model time.
pub(super) async fn compile_check<H: Host>(
    host: &H,
    template: Template,
) -> Result<Vec<String>, SandboxError> {
    let mut errors = Vec::new();
    match template {
        Template::ReactVite => {
            let args = ["tsc", "--noEmit", "-p", "."].map(String::from).to_vec();
            let tsc = exec("npx", args, CHECK_TIMEOUT_MS);
            let profile = super::profile(host);
            restructure(host, profile).await?;
            let mut pass = 0;
            loop {
                let r = host.exec(&tsc, &mut |_| {}).await?;
                if let Some(error) = checks::compile_error(&ran(&r)) {
                    // What the profile does not block on is shown, not sent to the fixer:
                    // the browser checks judge what the app does.
                    let complaints = if r.timed_out {
                        None
                    } else {
                        let (files, _) = project_code(host).map_err(room_side)?;
                        checks::type_complaints(&r.output, &files, profile)
                    };
                    if let Some(complaints) = complaints {
                        let _ = host.broadcast(ServerEvent::CommandOutput {
                            command: "type-check".into(),
                            output: format!(
                                "{} type complaints that do not break the app, left as they are:\n{}",
                                complaints.len(),
                                complaints.join("\n")
                            ),
                        });
                        break;
                    }
                    pass += 1;
                    if !r.timed_out && pass <= AUTOFIX_PASSES && repair(host, &r.output).await? {
                        continue;
                    }
                    errors.push(error);
                    if !r.timed_out {
                        let (files, _) = project_code(host).map_err(room_side)?;
                        errors.extend(autofix::hints(&r.output, &files));
                    }
                }
                break;
            }
        }
        Template::Static => {
            for (path, _) in host.files().map_err(room_side)? {
                if !path.as_str().ends_with(".js") {
                    continue;
                }
                let args = vec!["--check".to_owned(), path.to_string()];
                let r = host
                    .exec(&exec("node", args, CHECK_TIMEOUT_MS), &mut |_| {})
                    .await?;
                errors.extend(checks::compile_error(&ran(&r)));
            }
        }
    }
    Ok(errors)
}

/// Applies `autofix`'s repairs for a failed type-check to the working tree and the sandbox;
/// true when something changed (so the type-check is worth running again).
async fn repair<H: Host>(host: &H, tsc_output: &str) -> Result<bool, SandboxError> {
    let (files, deps) = project_code(host).map_err(room_side)?;
    let repair = autofix::repair(tsc_output, &files, &deps);
    if repair.is_empty() {
        return Ok(false);
    }
    apply(host, repair).await
}

/// Before the type-check: imports from UI kits the project lacks point at Kiln's stand-in
/// (`without_ui_kits`, the small profile only: a hosted model's kit gets installed), entry
/// code written into App.tsx comes out (`without_entry_code`), and hooks a model called at
/// module scope go into their component (`hooks`): tsc accepts those, and the page would
/// throw on load.
async fn restructure<H: Host>(host: &H, profile: Profile) -> Result<(), SandboxError> {
    let (mut files, deps) = project_code(host).map_err(room_side)?;
    let mut repair = if profile == Profile::Small {
        autofix::without_ui_kits(&files, &deps)
    } else {
        autofix::Repair::default()
    };
    for (path, text) in &repair.files {
        files.insert(path.clone(), text.clone());
    }
    // App.tsx only: wrapping another file's script as `App` would rename its export.
    if let Some(text) = files.get("src/App.tsx") {
        let mut text = text.clone();
        let mut changed = false;
        if let Some((new, note)) = autofix::without_entry_code(&text) {
            repair.notes.push(format!("src/App.tsx: {note}"));
            text = new;
            changed = true;
        }
        if let Some((new, note)) = crate::agent::hooks::move_into_component(&text) {
            repair.notes.push(format!("src/App.tsx: {note}"));
            text = new;
            changed = true;
        }
        if changed {
            repair.files.insert("src/App.tsx".into(), text);
        }
    }
    if !repair.is_empty() {
        apply(host, repair).await?;
    }
    Ok(())
}

/// Writes a repair to the working tree and the sandbox, installs what it names and tells
/// the room; true when something changed.
async fn apply<H: Host>(host: &H, repair: autofix::Repair) -> Result<bool, SandboxError> {
    let mut writes = Vec::new();
    for (path, content) in repair.files {
        let Ok(p) = ProjectPath::parse(&path) else {
            continue;
        };
        host.write(&p, content.as_bytes()).map_err(room_side)?;
        writes.push(FileWrite {
            path: p,
            content,
            encoding: FileEncoding::Utf8,
        });
    }
    let mut changed = !writes.is_empty();
    if changed {
        host.write_files(WriteFiles { files: writes }.into())
            .await?;
    }
    let mut notes = repair.notes;
    if !repair.install.is_empty() {
        match NpmInstall::of(repair.install) {
            Ok(install) => {
                let command = install.command();
                match npm_install(host, &command, &install).await? {
                    Ok(()) => changed = true,
                    Err(why) => notes.push(format!("{command} failed: {why}")),
                }
            }
            Err(refused) => notes.push(refused.to_string()),
        }
    }
    let _ = host.broadcast(ServerEvent::CommandOutput {
        command: "autofix".into(),
        output: notes.join("\n"),
    });
    Ok(changed)
}

/// Starts the app's dev server (a no-op when it runs) and, the first time it is up,
/// publishes the preview: people watch the app while the rest is built, checked and fixed.
pub(super) async fn start_preview<H: Host>(
    host: &H,
    g: &mut Generation,
) -> Result<DevServerStatus, SandboxError> {
    let status = host.dev_server(DevServerAction::Start).await?;
    if status.state == "ready" && g.preview_url.is_none() {
        let url = preview_url(host);
        let published = Outcome::PreviewPublished { url: url.clone() };
        g.apply(published.clone());
        // Stored now, not when the step ends, so `GET …/generation` shows it too. Only this
        // fact: the stored state may hold a cancel or queued prompts this step has not seen.
        if let Ok(Some(mut stored)) = host.stored() {
            if stored.id == g.id {
                stored.apply(published);
                let _ = host.save(&stored);
            }
        }
        let _ = host.broadcast(ServerEvent::ServerStarted { preview_url: url });
    }
    Ok(status)
}

/// Runs the acceptance checks of `file` (the smoke check first, then `.kiln/checks.json`'s)
/// in the sandbox's Chromium against its dev server; `checks` reads what the runner says.
pub(super) async fn run_browser_checks<H: Host>(
    host: &H,
    g: &mut Generation,
    file: &CheckFile,
    words: &[String],
) -> Result<RunVerdict, SandboxError> {
    let status = start_preview(host, g).await?;
    if let Some(why) = checks::dev_server_failure(&status.state, &status.log) {
        return Ok(RunVerdict::AppDoesNotRun(why));
    }
    let _ = host.broadcast(ServerEvent::CommandOutput {
        command: "acceptance checks".into(),
        output: format!("running {} checks in Chromium", file.checks.len()),
    });
    let mut args = ["/opt/kiln/check.mjs", CHECKS_PATH, checks::SMOKE_FLAG]
        .map(String::from)
        .to_vec();
    if !words.is_empty() {
        args.push(format!("{}{}", checks::MENTIONS_FLAG, words.join(",")));
    }
    let r = host
        .exec(&exec("node", args, BROWSER_CHECK_TIMEOUT_MS), &mut |_| {})
        .await?;
    Ok(checks::interpret_run(&ran(&r), file.checks.len()))
}

/// A sandbox command's result as `checks` reads it.
fn ran(r: &ExecResult) -> Ran<'_> {
    Ran {
        output: &r.output,
        exit_code: r.exit_code,
        timed_out: r.timed_out,
        oom_killed: r.oom_killed,
    }
}
