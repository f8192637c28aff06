//! The pipeline's steps: each performs what `Generation::next` names and reports the
//! outcome; `core::agent` decides what the answers and results mean.

use super::*;

/// Performs what `g.next()` asks for and reports the outcome. What it learns on the way
/// (model usage, folded prompts, a published preview) is applied to `g` as it happens.
pub(super) async fn perform(
    room: &ProjectRoom,
    project: &str,
    g: &mut Generation,
) -> Result<Outcome> {
    let Some(llm) = LlmConfig::from_env(room.env()) else {
        return Ok(Outcome::failed(
            "no model configured (KILN_LLM_BASE_URL)",
            false,
        ));
    };
    match g.next() {
        Next::Idle => Ok(Outcome::Cancel),
        Next::CallEditor => edit(room, project, g, &llm).await,
        Next::CallPlanner => plan(room, project, g, &llm).await,
        Next::CallCoder { phase } => implement(room, project, g, &llm, phase).await,
        Next::Install { commands } => install(room, project, g, commands).await,
        Next::CallTester { phase } => write_checks(room, project, g, &llm, phase).await,
        Next::Check { phase } => check(room, project, g, phase).await,
        Next::CallFixer { phase } => fix(room, project, g, &llm, phase).await,
        Next::Serve => serve(room, project, g).await,
        Next::Snapshot => snapshot(room, project, g).await,
    }
}

/// One round of the follow-up tool loop.
async fn edit(
    room: &ProjectRoom,
    project: &str,
    g: &mut Generation,
    llm: &LlmConfig,
) -> Result<Outcome> {
    g.apply(Outcome::ToolLoopOpened {
        files: tree_paths(room)?,
    });
    let messages = g.transcript.clone();
    let answer = match ask(room, project, g, llm, Ask::Edit, messages).await? {
        Ok(t) => t,
        Err(o) => return Ok(o),
    };
    let result = tools::answer(&mut AgentTree(room), &answer)?;
    if g.closes_tool_loop(result.finished) {
        sync_sandbox(room, project, g.template, Sync::Always)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(Outcome::ToolRound {
        answer,
        reply: result.reply,
        command: result.command,
        finished: result.finished,
    })
}

/// The plan (and its one repair).
async fn plan(
    room: &ProjectRoom,
    project: &str,
    g: &mut Generation,
    llm: &LlmConfig,
) -> Result<Outcome> {
    let messages = match room.store().meta("plan_answer")? {
        Some(prev) if !g.plan_errors.is_empty() => {
            prompts::plan_repair(&g.prompt, g.template, &prev, &g.plan_errors)
        }
        _ => prompts::planner(&g.prompt, g.template),
    };
    let text = match ask(room, project, g, llm, Ask::Plan, messages).await? {
        Ok(t) => t,
        Err(o) => return Ok(o),
    };
    room.store().set_meta("plan_answer", &text)?;
    let outcome = pipeline::planned(&text, g.template);
    if let Outcome::Planned(blueprint) = &outcome {
        room.broadcast(ServerEvent::Blueprint {
            blueprint: blueprint.clone(),
        })?;
    }
    Ok(outcome)
}

/// A phase's files, streamed; phase 0 first takes the template's scaffolding.
async fn implement(
    room: &ProjectRoom,
    project: &str,
    g: &mut Generation,
    llm: &LlmConfig,
    phase: usize,
) -> Result<Outcome> {
    let bp = g.blueprint.clone().ok_or("no blueprint")?;
    if phase == 0 {
        // The template's scaffolding becomes part of the project (and of the coder's
        // context): versions and exports hold an app that builds on its own.
        let sb = sandbox(room, project)?;
        sync_sandbox(room, project, g.template, Sync::KeepTemplate)
            .await
            .map_err(|e| e.to_string())?;
        adopt_sandbox_files(room, &sb, None)
            .await
            .map_err(|e| e.to_string())?;
        for img in &bp.images {
            let svg = placeholder_svg(img, &bp.design.palette);
            write_agent_file(room, &img.path, svg.as_bytes())?;
        }
    }
    let ph = &bp.phases[phase];
    room.broadcast(ServerEvent::PhaseDesigning {
        phase,
        name: ph.name.clone(),
        goal: ph.goal.clone(),
    })?;
    let files = context_files(room, ph.files.iter().map(|p| p.as_str()))?;
    g.apply(Outcome::QueueTaken);
    let messages = prompts::coder(&bp, phase, &files, &g.folding);
    match stream_files(room, project, g, llm, Ask::Code, messages).await? {
        Ok(streamed) => {
            room.broadcast(ServerEvent::PhaseDesigned {
                phase,
                files: streamed.written.clone(),
            })?;
            sync_sandbox(room, project, g.template, Sync::Always)
                .await
                .map_err(|e| e.to_string())?;
            room.broadcast(ServerEvent::FilesWritten {
                phase,
                files: streamed.written,
            })?;
            Ok(Outcome::PhaseWritten {
                commands: streamed.commands,
                edit_errors: streamed.edit_errors,
            })
        }
        Err(o) => Ok(o),
    }
}

/// The phase's `npm install`s.
async fn install(
    room: &ProjectRoom,
    project: &str,
    g: &mut Generation,
    commands: Vec<String>,
) -> Result<Outcome> {
    let sandbox = sandbox(room, project)?;
    sync_sandbox(room, project, g.template, Sync::IfNew)
        .await
        .map_err(|e| e.to_string())?;
    for command in &commands {
        let install = match NpmInstall::parse(command) {
            Ok(install) => install,
            Err(refused) => {
                room.broadcast(ServerEvent::CommandOutput {
                    command: command.clone(),
                    output: format!("skipped: {refused}"),
                })?;
                continue;
            }
        };
        if let Err(why) = npm_install(room, &sandbox, command, &install)
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(Outcome::failed(format!("{command} failed: {why}"), false));
        }
    }
    room.broadcast(ServerEvent::DepsInstalled { commands })?;
    Ok(Outcome::Installed)
}

/// The phase's acceptance checks.
async fn write_checks(
    room: &ProjectRoom,
    project: &str,
    g: &mut Generation,
    llm: &LlmConfig,
    phase: usize,
) -> Result<Outcome> {
    if !browser_checks_enabled(room) {
        return Ok(Outcome::TestsWritten);
    }
    // The phase's files and dependencies are in: show the app while its checks are
    // written. Best effort — an app that does not start yet is the check's finding.
    if g.preview_url.is_none()
        && sync_sandbox(room, project, g.template, Sync::IfNew)
            .await
            .is_ok()
    {
        let _ = start_preview(room, project, g, &sandbox(room, project)?).await;
    }
    let bp = g.blueprint.clone().ok_or("no blueprint")?;
    let files = context_files(room, bp.phases[phase].files.iter().map(|p| p.as_str()))?;
    let messages = prompts::tester(&bp, phase, &files);
    let text = match ask(room, project, g, llm, Ask::Test, messages).await? {
        Ok(t) => t,
        Err(o) => return Ok(o),
    };
    let mut file = read_checks(room)?;
    let (names, dropped) = pipeline::tested(&text, phase, &mut file);
    if !names.is_empty() {
        let content = file.to_pretty();
        write_agent_file(room, &checks_path(), content.as_bytes())?;
        sandbox(room, project)?
            .write_files(WriteFiles {
                files: vec![FileWrite {
                    path: checks_path(),
                    content,
                    encoding: FileEncoding::Utf8,
                }],
            })
            .await
            .map_err(|e| e.to_string())?;
    }
    room.broadcast(ServerEvent::ChecksWritten {
        phase,
        checks: names,
        dropped,
    })?;
    Ok(Outcome::TestsWritten)
}

/// The compile check, then the acceptance checks.
async fn check(
    room: &ProjectRoom,
    project: &str,
    g: &mut Generation,
    phase: usize,
) -> Result<Outcome> {
    let sandbox = sandbox(room, project)?;
    sync_sandbox(room, project, g.template, Sync::IfNew)
        .await
        .map_err(|e| e.to_string())?;
    let compile_errors = compile_check(room, &sandbox, g.template)
        .await
        .map_err(|e| e.to_string())?;
    let file = read_checks(room)?;
    let run =
        if compile_errors.is_empty() && browser_checks_enabled(room) && !file.checks.is_empty() {
            let verdict = run_browser_checks(room, project, g, &sandbox, &file)
                .await
                .map_err(|e| e.to_string())?;
            Some((&file, verdict))
        } else {
            None
        };
    let found = pipeline::checked(compile_errors, run);
    if let Some(why) = &found.skipped {
        room.broadcast(ServerEvent::CommandOutput {
            command: "acceptance checks".into(),
            output: format!("skipped: {why}"),
        })?;
    }
    let errors = found.errors;
    room.broadcast(ServerEvent::CheckResult {
        phase,
        passed: errors.is_empty(),
        errors: errors.clone(),
        checks: found.reports,
    })?;
    Ok(Outcome::Checked { errors })
}

/// Repairs for what the check found.
async fn fix(
    room: &ProjectRoom,
    project: &str,
    g: &mut Generation,
    llm: &LlmConfig,
    phase: usize,
) -> Result<Outcome> {
    let bp = g.blueprint.clone().ok_or("no blueprint")?;
    let all = tree_paths(room)?;
    let files = context_files(room, all.iter().map(String::as_str))?;
    let checks_now = read_checks(room)?.to_pretty();
    let change = g
        .is_follow_up()
        .then_some((g.prompt.as_str(), checks_now.as_str()));
    let messages = prompts::fixer(&bp, phase, &g.check_errors, &files, change);
    match stream_files(room, project, g, llm, Ask::Fix, messages).await? {
        Ok(streamed) => {
            sync_sandbox(room, project, g.template, Sync::Always)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Outcome::Fixed {
                edit_errors: streamed.edit_errors,
            })
        }
        Err(o) => Ok(o),
    }
}

/// The dev server, restarted for the finished app.
async fn serve(room: &ProjectRoom, project: &str, g: &mut Generation) -> Result<Outcome> {
    let sandbox = sandbox(room, project)?;
    sync_sandbox(room, project, g.template, Sync::IfNew)
        .await
        .map_err(|e| e.to_string())?;
    let status = sandbox
        .dev_server(DevServerAction::Restart)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(why) = checks::dev_server_failure(&status.state, &status.log) {
        return Ok(Outcome::failed(why, true));
    }
    let url = preview_url(room, project);
    room.broadcast(ServerEvent::ServerStarted {
        preview_url: url.clone(),
    })?;
    Ok(Outcome::Served { url })
}

/// The version the generation made (by `agent`).
async fn snapshot(room: &ProjectRoom, project: &str, g: &mut Generation) -> Result<Outcome> {
    let name = g
        .blueprint
        .as_ref()
        .map_or("app", |b| b.name.as_str())
        .to_owned();
    let v = versions::create(room, project, AGENT, &format!("Generated: {name}")).await?;
    Ok(Outcome::Snapshotted { version: v.number })
}
