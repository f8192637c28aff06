//! The steps: each performs what `Generation::next` names and reports the outcome; the
//! rest of `core::agent` decides what the answers and results mean.

use super::checker::{compile_check, run_browser_checks, start_preview};
use super::model::{ask, stream_files};
use super::sandbox::{adopt_sandbox_files, npm_install, sync_after_answer, sync_sandbox, Sync};
use super::tree::{checks_path, context_files, read_checks, tree_paths, AgentTree};
use super::*;
use crate::agent::blueprint::placeholder_svg;
use crate::agent::checks;
use crate::agent::context;
use crate::agent::examples;
use crate::agent::machine::Next;
use crate::agent::npm::NpmInstall;
use crate::agent::pipeline;
use crate::agent::prompts;
use crate::agent::roles::Ask;
use crate::agent::tools;
use crate::sandbox::{FileEncoding, WriteFiles};

/// Performs what `g.next()` asks for and reports the outcome. What it learns on the way
/// (model usage, folded prompts, a published preview) is applied to `g` as it happens.
pub(super) async fn perform<H: Host>(host: &H, g: &mut Generation) -> HostResult<Outcome> {
    if host.model(Role::Planner, 0).is_none() {
        return Ok(Outcome::failed(
            "no model configured (KILN_LLM_BASE_URL)",
            false,
        ));
    }
    match g.next() {
        Next::Idle => Ok(Outcome::Cancel),
        Next::CallEditor => edit(host, g).await,
        Next::CallPlanner => plan(host, g).await,
        Next::CallCoder { phase } => implement(host, g, phase).await,
        Next::Install { commands } => install(host, g, commands).await,
        Next::CallTester { phase } => write_checks(host, g, phase).await,
        Next::Check { phase } => check(host, g, phase).await,
        Next::CallFixer { phase } => fix(host, g, phase).await,
        Next::Serve => serve(host, g).await,
        Next::Snapshot => snapshot(host, g).await,
    }
}

/// One round of the follow-up tool loop.
async fn edit<H: Host>(host: &H, g: &mut Generation) -> HostResult<Outcome> {
    g.apply(Outcome::ToolLoopOpened {
        files: tree_paths(host)?,
    });
    let messages = g.transcript.clone();
    let answer = match ask(host, g, Ask::Edit, messages).await? {
        Ok(t) => t,
        Err(o) => return Ok(o),
    };
    let result = tools::answer(&mut AgentTree::new(host), &answer)?;
    if g.closes_tool_loop(result.finished) {
        sync_after_answer(host, g.template).await?;
    }
    Ok(Outcome::ToolRound {
        answer,
        reply: result.reply,
        command: result.command,
        finished: result.finished,
    })
}

/// The plan (and its one repair); the small profile's is made from the request.
async fn plan<H: Host>(host: &H, g: &mut Generation) -> HostResult<Outcome> {
    if profile(host) == crate::agent::profile::Profile::Small {
        let blueprint = crate::agent::blueprint::Blueprint::from_request(&g.prompt, g.template);
        host.broadcast(ServerEvent::Blueprint {
            blueprint: blueprint.clone(),
        })?;
        return Ok(Outcome::Planned(blueprint));
    }
    let messages = match host.memo("plan_answer")? {
        Some(prev) if !g.plan_errors.is_empty() => {
            prompts::plan_repair(&g.prompt, g.template, profile(host), &prev, &g.plan_errors)
        }
        _ => prompts::planner(&g.prompt, g.template, profile(host)),
    };
    let text = match ask(host, g, Ask::Plan, messages).await? {
        Ok(t) => t,
        Err(o) => return Ok(o),
    };
    host.set_memo("plan_answer", &text)?;
    let outcome = pipeline::planned(&text, g.template, profile(host));
    if let Outcome::Planned(blueprint) = &outcome {
        host.broadcast(ServerEvent::Blueprint {
            blueprint: blueprint.clone(),
        })?;
    }
    Ok(outcome)
}

/// A phase's files, streamed; phase 0 first takes the template's scaffolding.
async fn implement<H: Host>(host: &H, g: &mut Generation, phase: usize) -> HostResult<Outcome> {
    let bp = g.blueprint.clone().ok_or("no blueprint")?;
    if phase == 0 {
        // The template's scaffolding becomes part of the project (and of the coder's
        // context): versions and exports hold an app that builds on its own.
        sync_sandbox(host, g.template, Sync::KeepTemplate)
            .await
            .map_err(sb)?;
        adopt_sandbox_files(host, None).await.map_err(sb)?;
        for img in &bp.images {
            let svg = placeholder_svg(img, &bp.design.palette);
            host.write(&img.path, svg.as_bytes())?;
        }
    }
    let ph = &bp.phases[phase];
    host.broadcast(ServerEvent::PhaseDesigning {
        phase,
        name: ph.name.clone(),
        goal: ph.goal.clone(),
    })?;
    let files = context_files(host, ph.files.iter().map(|p| p.as_str()))?;
    g.apply(Outcome::QueueTaken);
    let example = examples::for_coder(&bp, profile(host), g.attempts);
    let messages = prompts::coder(&bp, profile(host), phase, &files, &g.folding, example);
    let before = files_now(host, &ph.files)?;
    match stream_files(host, g, Ask::Code, messages).await? {
        // An answer cut by the repeat guard inside its first file writes nothing; going on
        // would check (and pass) the template. Asked again, warmer.
        Ok(streamed) if streamed.written.is_empty() && !ph.files.is_empty() => Ok(Outcome::failed(
            "the coder's answer held no whole file",
            true,
        )),
        // A small model shown an example sometimes writes the example back: that is not the
        // app asked for. The phase's files go back to what they were, and it is asked again
        // without the example.
        Ok(_) if example.is_some_and(|ex| copied_example(host, ex, &before)) => {
            // (The small profile's one file, src/App.tsx, is the template's until then.)
            put_back(host, &before)?;
            Ok(Outcome::failed(
                "the coder wrote the example app back instead of the one asked for",
                true,
            ))
        }
        Ok(streamed) => {
            host.broadcast(ServerEvent::PhaseDesigned {
                phase,
                files: streamed.written.clone(),
            })?;
            sync_after_answer(host, g.template).await?;
            host.broadcast(ServerEvent::FilesWritten {
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

/// Whether a phase file now holds `ex` (what it held before the answer is `before`).
/// A phase's files as they are now, to put back if an answer must not stand.
fn files_now<H: Host>(
    host: &H,
    paths: &[ProjectPath],
) -> HostResult<Vec<(ProjectPath, Option<Vec<u8>>)>> {
    paths
        .iter()
        .map(|p| Ok((p.clone(), host.read(p)?)))
        .collect()
}

fn put_back<H: Host>(host: &H, before: &[(ProjectPath, Option<Vec<u8>>)]) -> HostResult<()> {
    for (path, old) in before {
        if let Some(bytes) = old {
            host.write(path, bytes)?;
        }
    }
    Ok(())
}

fn copied_example<H: Host>(
    host: &H,
    ex: &examples::Example,
    before: &[(ProjectPath, Option<Vec<u8>>)],
) -> bool {
    before.iter().any(|(path, _)| {
        host.read(path)
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
            .is_some_and(|text| ex.is_copy(&text))
    })
}

/// The phase's `npm install`s.
async fn install<H: Host>(
    host: &H,
    g: &mut Generation,
    commands: Vec<String>,
) -> HostResult<Outcome> {
    sync_sandbox(host, g.template, Sync::IfNew)
        .await
        .map_err(sb)?;
    for command in &commands {
        let install = match NpmInstall::parse(command) {
            Ok(install) => install,
            Err(refused) => {
                host.broadcast(ServerEvent::CommandOutput {
                    command: command.clone(),
                    output: format!("skipped: {refused}"),
                })?;
                continue;
            }
        };
        if let Err(why) = npm_install(host, command, &install).await.map_err(sb)? {
            return Ok(Outcome::failed(format!("{command} failed: {why}"), false));
        }
    }
    host.broadcast(ServerEvent::DepsInstalled { commands })?;
    Ok(Outcome::Installed)
}

/// The phase's acceptance checks.
async fn write_checks<H: Host>(host: &H, g: &mut Generation, phase: usize) -> HostResult<Outcome> {
    if !browser_checks_enabled(host) {
        return Ok(Outcome::TestsWritten);
    }
    // The phase's files and dependencies are in: show the app while its checks are
    // written. Best effort — an app that does not start yet is the check's finding.
    if g.preview_url.is_none() && sync_sandbox(host, g.template, Sync::IfNew).await.is_ok() {
        let _ = start_preview(host, g).await;
    }
    // A small model's checks are often wrong (selectors it did not write, states it did not
    // build), and a wrong check sends a working app to the fixer: the small profile is judged
    // by Kiln's own smoke checks and the type gate only.
    // Instead, Kiln writes the checks the request's own words call for (`probes`): an Enter
    // that adds nothing or a filter that shows the wrong entries fails there, not only in
    // the person's hands.
    if profile(host) == crate::agent::profile::Profile::Small {
        let probes = if g.is_follow_up() {
            vec![]
        } else {
            crate::agent::probes::for_request(&g.prompt)
        };
        if probes.is_empty() {
            return Ok(Outcome::TestsWritten);
        }
        let names = probes.iter().map(|c| c.name.clone()).collect();
        let mut file = read_checks(host)?;
        file.set_phase(
            phase,
            probes
                .into_iter()
                .map(|c| checks::Check { phase, ..c })
                .collect(),
        );
        return store_checks(host, file, phase, names, vec![]).await;
    }
    let bp = g.blueprint.clone().ok_or("no blueprint")?;
    let files = context_files(host, bp.phases[phase].files.iter().map(|p| p.as_str()))?;
    let messages = prompts::tester(&bp, phase, &files);
    let text = match ask(host, g, Ask::Test, messages).await? {
        Ok(t) => t,
        Err(o) => return Ok(o),
    };
    let mut file = read_checks(host)?;
    let (names, dropped) = pipeline::tested(&text, phase, &mut file);
    store_checks(host, file, phase, names, dropped).await
}

/// The check file with `phase`'s new checks, stored and in the sandbox, and announced.
async fn store_checks<H: Host>(
    host: &H,
    file: checks::CheckFile,
    phase: usize,
    names: Vec<String>,
    dropped: Vec<String>,
) -> HostResult<Outcome> {
    if !names.is_empty() {
        let content = file.to_pretty();
        host.write(&checks_path(), content.as_bytes())?;
        host.write_files(
            WriteFiles {
                files: vec![FileWrite {
                    path: checks_path(),
                    content,
                    encoding: FileEncoding::Utf8,
                }],
            }
            .into(),
        )
        .await
        .map_err(sb)?;
    }
    host.broadcast(ServerEvent::ChecksWritten {
        phase,
        checks: names,
        dropped,
    })?;
    Ok(Outcome::TestsWritten)
}

/// The fix rounds a phase of `g` may have (`Profile::fix_rounds`).
fn fix_rounds<H: Host>(host: &H, g: &Generation) -> u32 {
    profile(host).fix_rounds(!g.is_follow_up())
}

/// The compile check, then the acceptance checks.
async fn check<H: Host>(host: &H, g: &mut Generation, phase: usize) -> HostResult<Outcome> {
    sync_sandbox(host, g.template, Sync::IfNew)
        .await
        .map_err(sb)?;
    let compile_errors = compile_check(host, g.template).await.map_err(sb)?;
    // Kiln's smoke check first, then the tester's: an app that builds is always opened.
    let words = mentioned_words(host, g);
    let file = checks::with_smoke(&read_checks(host)?, &words);
    let run = if compile_errors.is_empty() && browser_checks_enabled(host) {
        let verdict = run_browser_checks(host, g, &file, &words)
            .await
            .map_err(sb)?;
        Some((&file, verdict))
    } else {
        None
    };
    let found = pipeline::checked(compile_errors, run);
    if let Some(why) = &found.skipped {
        host.broadcast(ServerEvent::CommandOutput {
            command: "acceptance checks".into(),
            output: format!("skipped: {why}"),
        })?;
    }
    let badness = found.badness();
    let errors = found.errors;
    host.broadcast(ServerEvent::CheckResult {
        phase,
        passed: errors.is_empty(),
        errors: errors.clone(),
        checks: found.reports,
    })?;
    let errors = keep_the_best_try(host, g, phase, errors, badness).await?;
    Ok(Outcome::Checked {
        errors,
        fix_rounds: fix_rounds(host, g),
    })
}

/// What the small profile's new app is checked for beyond the smoke checks: the items of
/// the request's lists (`coverage`). A large model's tester writes real checks instead.
fn mentioned_words<H: Host>(host: &H, g: &Generation) -> Vec<String> {
    let small = profile(host) == crate::agent::profile::Profile::Small;
    if small && !g.is_follow_up() {
        crate::agent::coverage::named_words(&g.prompt)
    } else {
        vec![]
    }
}

/// One try of a phase: its files and what its check found.
#[derive(serde::Serialize, serde::Deserialize)]
struct Try {
    errors: Vec<String>,
    files: Vec<(String, String)>,
    /// `CheckFindings::badness`; a try stored before it was counted reads by its errors.
    #[serde(default)]
    badness: Option<u32>,
}

impl Try {
    fn badness(&self) -> u32 {
        self.badness.unwrap_or(self.errors.len() as u32)
    }
}

/// A small model's fix round as often makes an app worse as better (run 4 threw away first
/// answers that were close): of a new app's tries, the one nearest to working is kept
/// (`CheckFindings::badness`).
/// Each check records its try when it is the best so far; after the last fix round, a worse
/// app is replaced by the best one.
async fn keep_the_best_try<H: Host>(
    host: &H,
    g: &Generation,
    phase: usize,
    errors: Vec<String>,
    badness: u32,
) -> HostResult<Vec<String>> {
    let small = profile(host) == crate::agent::profile::Profile::Small;
    let Some(bp) = g.blueprint.as_ref().filter(|_| small && !g.is_follow_up()) else {
        return Ok(errors);
    };
    let key = format!("best_try:{}:{phase}", g.id);
    let best: Option<Try> = host.memo(&key)?.and_then(|s| serde_json::from_str(&s).ok());
    let own: Vec<&str> = bp.phases[phase].files.iter().map(|p| p.as_str()).collect();
    let extras = extra_code(host, &bp.phases[phase].files)?;
    match best {
        Some(b) if b.badness() <= badness => {
            let last = g.fix_round >= fix_rounds(host, g);
            if !last || b.badness() == badness {
                return Ok(errors);
            }
            for extra in extras
                .iter()
                .filter(|e| !b.files.iter().any(|(p, _)| p == e.as_str()))
            {
                host.delete(extra)?;
            }
            for (path, content) in &b.files {
                let p = ProjectPath::parse(path).map_err(|e| e.to_string())?;
                host.write(&p, content.as_bytes())?;
            }
            sync_sandbox(host, g.template, Sync::Always)
                .await
                .map_err(sb)?;
            host.broadcast(ServerEvent::CommandOutput {
                command: "autofix".into(),
                output: format!(
                    "kept the earlier try of {} ({}) over the last ({})",
                    own.join(", "),
                    pipeline::how_bad(b.badness()),
                    pipeline::how_bad(badness)
                ),
            })?;
            Ok(b.errors)
        }
        _ => {
            let mut files = Vec::new();
            let paths = own
                .iter()
                .filter_map(|p| ProjectPath::parse(p).ok())
                .chain(extras);
            for p in paths {
                let path = p.as_str();
                if let Some(bytes) = host.read(&p)? {
                    files.push((
                        path.to_owned(),
                        String::from_utf8_lossy(&bytes).into_owned(),
                    ));
                }
            }
            let t = Try {
                errors: errors.clone(),
                files,
                badness: Some(badness),
            };
            host.set_memo(&key, &serde_json::to_string(&t).map_err(|e| e.to_string())?)?;
            Ok(errors)
        }
    }
}

/// Code a new app's earlier answers wrote beyond its phase's files and Kiln's scaffolding
/// (a small model's `src/lib/chart.ts` or `src/components/*.tsx`, though told to write one
/// file): what a fresh try starts without.
fn extra_code<H: Host>(host: &H, own: &[ProjectPath]) -> HostResult<Vec<ProjectPath>> {
    Ok(host
        .files()?
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| {
            let s = p.as_str();
            crate::agent::autofix::is_code(s)
                && !context::is_scaffolding(s)
                && !s.starts_with(".kiln/")
                && s != "src/App.tsx"
                && !own.contains(p)
        })
        .collect())
}

/// Repairs for what the check found.
async fn fix<H: Host>(host: &H, g: &mut Generation, phase: usize) -> HostResult<Outcome> {
    let bp = g.blueprint.clone().ok_or("no blueprint")?;
    let tree = tree_paths(host)?;
    let small = profile(host) == crate::agent::profile::Profile::Small;
    let last_round = g.fix_round + 1 >= fix_rounds(host, g);
    let fresh = small && !g.is_follow_up();
    let mut example = None;
    let messages = if fresh {
        // A new app on a small model: a fresh try, the worked example first as in its first
        // answer, told what the last try did wrong, without the broken file in view (shown
        // it, a small model writes it back; its edits of it changed nothing that mattered in
        // runs 5 and 6). `keep_the_best_try` keeps whichever try does best.
        let own = &bp.phases[phase].files;
        // What earlier tries wrote beyond the phase's files goes too: a stale file stays in
        // tsc's view whether the new try imports it or not (recorded, a6c4162: the expense
        // tracker's broken `src/lib/chart.ts` failed all three fresh tries of App.tsx).
        // The best try keeps its own (`keep_the_best_try`).
        for extra in extra_code(host, own)? {
            host.delete(&extra)?;
        }
        // Of the rest, the code it may use (the persistence helper): index.html and
        // package.json only cost prefill.
        let files: Vec<(String, String)> = context_files(host, std::iter::empty())?
            .into_iter()
            .filter(|(p, _)| {
                crate::agent::autofix::is_code(p) && !own.iter().any(|o| o.as_str() == p)
            })
            .collect();
        example = examples::for_coder(&bp, profile(host), 0);
        prompts::rewrite(&bp, profile(host), phase, &g.check_errors, &files, example)
    } else if small && !last_round {
        // A follow-up's lines that are wrong, changed in place (see `prompts::edit_fix`).
        let quoted = context::for_fix(&g.check_errors, &tree);
        let files = context_files(host, quoted.iter().map(String::as_str))?;
        prompts::edit_fix(&bp, profile(host), phase, &g.check_errors, &files)
    } else {
        let quoted = context::for_fix(&g.check_errors, &tree);
        let files = context_files(host, quoted.iter().map(String::as_str))?;
        let checks_now = read_checks(host)?.to_pretty();
        let change = g
            .is_follow_up()
            .then_some((g.prompt.as_str(), checks_now.as_str()));
        prompts::fixer(&bp, profile(host), phase, &g.check_errors, &files, change)
    };
    let before = files_now(host, &bp.phases[phase].files)?;
    match stream_files(host, g, Ask::Fix, messages).await? {
        // The example written back is not a try at the app: the files stay as they were
        // and the round is spent.
        Ok(streamed) if example.is_some_and(|ex| copied_example(host, ex, &before)) => {
            put_back(host, &before)?;
            Ok(Outcome::Fixed {
                edit_errors: streamed.edit_errors,
            })
        }
        Ok(streamed) => {
            sync_after_answer(host, g.template).await?;
            Ok(Outcome::Fixed {
                edit_errors: streamed.edit_errors,
            })
        }
        Err(o) => Ok(o),
    }
}

/// The dev server, restarted for the finished app.
async fn serve<H: Host>(host: &H, g: &mut Generation) -> HostResult<Outcome> {
    sync_sandbox(host, g.template, Sync::IfNew)
        .await
        .map_err(sb)?;
    let status = host
        .dev_server(DevServerAction::Restart)
        .await
        .map_err(sb)?;
    if let Some(why) = checks::dev_server_failure(&status.state, &status.log) {
        return Ok(Outcome::failed(why, true));
    }
    let url = preview_url(host);
    host.broadcast(ServerEvent::ServerStarted {
        preview_url: url.clone(),
    })?;
    Ok(Outcome::Served { url })
}

/// The version the generation made (by `agent`).
async fn snapshot<H: Host>(host: &H, g: &mut Generation) -> HostResult<Outcome> {
    let name = g.blueprint.as_ref().map_or("app", |b| b.name.as_str());
    let version = host.snapshot(&format!("Generated: {name}")).await?;
    Ok(Outcome::Snapshotted { version })
}
