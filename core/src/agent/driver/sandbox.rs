//! Keeping the sandbox and the working tree in step: the sandbox (re-)made and filled, the
//! files it makes taken back, installs run.

use super::*;
use crate::agent::checks;
use crate::agent::npm::NpmInstall;
use crate::sandbox::write_batches;

/// When the working tree is written into the sandbox.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Sync {
    /// Only into a sandbox that was just made (new, or re-created after a lost host).
    IfNew,
    /// Every time (files changed).
    Always,
    /// Into a new sandbox without pruning, so the template's scaffolding stays there for
    /// phase 0 to take into the tree.
    KeepTemplate,
}

fn room_side(e: HostError) -> SandboxError {
    SandboxError {
        message: e,
        status: None,
        lost: false,
    }
}

/// Makes the sandbox hold the working tree. Unless `Sync::Always`, the files are only sent
/// when the sandbox had to be created — the proxy restarted on a fresh host, or lost it.
pub(super) async fn sync_sandbox<H: Host>(
    host: &H,
    template: Template,
    when: Sync,
) -> Result<(), SandboxError> {
    if !host.has_sandbox() {
        return Err(room_side(
            "no sandbox-proxy configured (KILN_SANDBOX_URL, KILN_SANDBOX_JWT_SECRET)".into(),
        ));
    }
    let created = host.ensure_sandbox(template).await?;
    let behind = host
        .memo(BEHIND)
        .map_err(room_side)?
        .is_some_and(|v| v == "1");
    if when != Sync::Always && !created && !behind {
        return Ok(());
    }
    push_tree(
        host,
        host.tree_writes().map_err(room_side)?,
        when != Sync::KeepTemplate,
    )
    .await?;
    if behind {
        host.set_memo(BEHIND, "").map_err(room_side)?;
    }
    if created && when != Sync::KeepTemplate {
        reinstall(host).await?;
    }
    Ok(())
}

/// Memo: the tree holds an answer the sandbox has not been sent (it could not be reached).
const BEHIND: &str = "sandbox_behind";

/// After a model's answer is in the tree, the sandbox follows. A sandbox that cannot be
/// reached then (its host lost or moving) must not cost the answer: a failed step would be
/// tried again and ask the model again. The next step's sync sends the tree instead.
pub(super) async fn sync_after_answer<H: Host>(
    host: &H,
    template: Template,
) -> Result<(), HostError> {
    if let Err(e) = sync_sandbox(host, template, Sync::Always).await {
        host.set_memo(BEHIND, "1")?;
        host.broadcast(ServerEvent::CommandOutput {
            command: "sandbox".into(),
            output: format!("{e}; the files follow at the next step"),
        })?;
    }
    Ok(())
}

/// A sandbox made again for a tree that already has dependencies (a new host after a lost
/// or draining one) gets them installed, as the lost one had them.
async fn reinstall<H: Host>(host: &H) -> Result<(), SandboxError> {
    let Some(manifest) = host
        .read(&ProjectPath::parse("package.json").map_err(|e| room_side(e.to_string()))?)
        .map_err(room_side)?
    else {
        return Ok(());
    };
    let has_deps = serde_json::from_slice::<serde_json::Value>(&manifest)
        .ok()
        .is_some_and(|v| {
            ["dependencies", "devDependencies"]
                .iter()
                .any(|k| v[k].as_object().is_some_and(|o| !o.is_empty()))
        });
    if !has_deps {
        return Ok(());
    }
    let args = vec!["install".into(), "--no-audit".into(), "--no-fund".into()];
    let r = run_npm(host, "npm install", args).await?;
    if !r.ok() {
        return Err(room_side(format!(
            "npm install in the re-made sandbox failed: {}",
            checks::output_tail(&r.output)
        )));
    }
    Ok(())
}

/// `npm <args>` in the sandbox, its output streamed to the browsers as `command`'s.
async fn run_npm<H: Host>(
    host: &H,
    command: &str,
    args: Vec<String>,
) -> Result<ExecResult, SandboxError> {
    let req = ExecRequest {
        cmd: "npm".into(),
        args,
        cwd: None,
        timeout_ms: Some(INSTALL_TIMEOUT_MS),
        env: Default::default(),
    };
    host.exec(&req, &mut |out| {
        let _ = host.broadcast(ServerEvent::CommandOutput {
            command: command.to_owned(),
            output: out.to_owned(),
        });
    })
    .await
}

/// Writes the tree into the sandbox, in the batches `sandbox::write_batches` plans (with
/// `may_prune`, the last removes what is gone from the tree).
async fn push_tree<H: Host>(
    host: &H,
    files: Vec<FileWrite>,
    may_prune: bool,
) -> Result<(), SandboxError> {
    for call in write_batches(files, may_prune) {
        host.write_files(call).await?;
    }
    Ok(())
}

/// A person changed files (an edit, a restore): the running app follows, so the preview
/// shows what the tree holds, and `files_written` tells the browsers when it does. Only
/// between generations (a running one syncs the tree at its own steps, and its sandbox may
/// hold files it has not taken into the tree yet), and only into a sandbox that exists:
/// nothing is created for it. `Err` is for the host to log, not the person's problem.
pub async fn follow_people<H: Host>(host: &H) -> Result<(), SandboxError> {
    let running = host
        .stored()
        .map_err(room_side)?
        .is_some_and(|g| !g.step.is_terminal());
    if running || !host.has_sandbox() {
        return Ok(());
    }
    let files = host.tree_writes().map_err(room_side)?;
    let paths: Vec<String> = files.iter().map(|f| f.path.to_string()).collect();
    match push_tree(host, files, true).await {
        Ok(()) => host
            .broadcast(ServerEvent::FilesWritten {
                phase: 0,
                files: paths,
            })
            .map_err(room_side),
        // No sandbox (never made, or reaped with its host): nothing to follow.
        Err(e) if e.lost => Ok(()),
        Err(e) => Err(e),
    }
}

/// `npm install <packages>` in the sandbox, its output streamed as `command_output`; the
/// sandbox's new manifest and lockfile are taken into the project. `Err` inside: npm failed.
pub(super) async fn npm_install<H: Host>(
    host: &H,
    command: &str,
    install: &NpmInstall,
) -> Result<Result<(), String>, SandboxError> {
    let r = run_npm(host, command, install.args()).await?;
    if !r.ok() {
        return Ok(Err(checks::output_tail(&r.output)));
    }
    adopt_sandbox_files(host, Some(&["package.json", "package-lock.json"])).await?;
    Ok(Ok(()))
}

/// Copies files the sandbox made into the working tree: with `only`, those paths when they
/// differ; without, every file the project does not have yet (the template's). Idempotent,
/// so a re-run step writes nothing twice.
pub(super) async fn adopt_sandbox_files<H: Host>(
    host: &H,
    only: Option<&[&str]>,
) -> Result<(), SandboxError> {
    let wanted: Vec<ProjectPath> = match only {
        Some(paths) => paths
            .iter()
            .filter_map(|p| ProjectPath::parse(p).ok())
            .collect(),
        None => {
            let have: std::collections::HashSet<ProjectPath> = host
                .files()
                .map_err(room_side)?
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            host.sandbox_files()
                .await?
                .into_iter()
                .filter(|p| !have.contains(p))
                .collect()
        }
    };
    for path in wanted {
        let bytes = match host.sandbox_read(&path).await {
            Ok(b) => b,
            Err(e) if e.status == Some(404) && only.is_some() => continue,
            Err(e) => return Err(e),
        };
        if host.read(&path).map_err(room_side)?.as_deref() == Some(&bytes[..]) {
            continue;
        }
        host.write(&path, &bytes).map_err(room_side)?;
    }
    Ok(())
}
