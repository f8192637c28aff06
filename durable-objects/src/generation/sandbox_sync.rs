//! Keeping the sandbox and the working tree in step: the sandbox (re-)made and filled, the
//! files it makes taken back, installs run.

use super::*;

/// The project's sandbox, as its org's (the proxy caps sandboxes per org).
pub(super) fn sandbox_client(room: &ProjectRoom, project: &str) -> Option<SandboxClient> {
    let org = room.store().meta("org_id").ok().flatten();
    SandboxClient::from_env(room.env(), project, org)
}

pub(super) fn sandbox(
    room: &ProjectRoom,
    project: &str,
) -> std::result::Result<SandboxClient, String> {
    sandbox_client(room, project).ok_or_else(|| {
        "no sandbox-proxy configured (KILN_SANDBOX_URL, KILN_SANDBOX_JWT_SECRET)".to_owned()
    })
}

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

/// Makes the sandbox hold the working tree. Unless `Sync::Always`, the files are only sent
/// when the sandbox had to be created — the proxy restarted on a fresh host, or lost it.
pub(super) async fn sync_sandbox(
    room: &ProjectRoom,
    project: &str,
    template: Template,
    when: Sync,
) -> std::result::Result<(), SandboxError> {
    let always = when == Sync::Always;
    let may_prune = when != Sync::KeepTemplate;
    let Some(sb) = sandbox_client(room, project) else {
        return Err(SandboxError {
            message: "no sandbox-proxy configured".into(),
            status: None,
            lost: false,
        });
    };
    let info = sb.ensure(template).await?;
    if !always && !info.created {
        return Ok(());
    }
    push_tree(&sb, tree_writes(room)?, may_prune).await
}

/// The whole working tree as sandbox writes.
pub(super) fn tree_writes(room: &ProjectRoom) -> Result<Vec<FileWrite>> {
    let mut files = Vec::new();
    for meta in room.store().list()? {
        let bytes = room.store().content(&meta.path)?.unwrap_or_default();
        let (content, enc) = encode(bytes);
        files.push(FileWrite {
            path: meta.path,
            content,
            encoding: if enc.is_utf8() {
                FileEncoding::Utf8
            } else {
                FileEncoding::Base64
            },
        });
    }
    Ok(files)
}

/// Writes the tree into the sandbox, in the batches `sandbox::write_batches` plans (with
/// `may_prune`, the last removes what is gone from the tree).
pub(super) async fn push_tree(
    sb: &SandboxClient,
    files: Vec<FileWrite>,
    may_prune: bool,
) -> std::result::Result<(), SandboxError> {
    for call in write_batches(files, may_prune) {
        sb.write_files(call).await?;
    }
    Ok(())
}

/// A person changed files (an edit, a restore): the running app follows, so the preview
/// shows what the tree holds, and `files_written` tells the browsers when it does. Only
/// between generations (a running one syncs the tree at its own steps, and its sandbox may
/// hold files it has not taken into the tree yet), and only into a sandbox that exists:
/// nothing is created for it. A failure is logged, not the person's problem.
pub async fn follow_people(room: &ProjectRoom, project: &str) -> Result<()> {
    if load(room)?.is_some_and(|g| !g.step.is_terminal()) {
        return Ok(());
    }
    let Some(sb) = sandbox_client(room, project) else {
        return Ok(());
    };
    let files = tree_writes(room)?;
    let paths: Vec<String> = files.iter().map(|f| f.path.to_string()).collect();
    match push_tree(&sb, files, true).await {
        Ok(()) => room.broadcast(ServerEvent::FilesWritten {
            phase: 0,
            files: paths,
        }),
        Err(e) if e.lost => Ok(()),
        Err(e) => {
            worker::console_warn!("syncing {project}'s edits to its sandbox: {e}");
            Ok(())
        }
    }
}

/// `npm install <packages>` in the sandbox, its output streamed as `command_output`; the
/// sandbox's new manifest and lockfile are taken into the project. `Err` inside: npm failed.
pub(super) async fn npm_install(
    room: &ProjectRoom,
    sb: &SandboxClient,
    command: &str,
    install: &NpmInstall,
) -> std::result::Result<std::result::Result<(), String>, SandboxError> {
    let req = ExecRequest {
        cmd: "npm".into(),
        args: install.args(),
        cwd: None,
        timeout_ms: Some(INSTALL_TIMEOUT_MS),
        env: Default::default(),
    };
    let r = sb
        .exec(&req, |out| {
            let _ = room.broadcast(ServerEvent::CommandOutput {
                command: command.to_owned(),
                output: out.to_owned(),
            });
        })
        .await?;
    if !r.ok() {
        return Ok(Err(checks::output_tail(&r.output)));
    }
    adopt_sandbox_files(room, sb, Some(&["package.json", "package-lock.json"])).await?;
    Ok(Ok(()))
}

/// Copies files the sandbox made into the working tree: with `only`, those paths when they
/// differ; without, every file the project does not have yet (the template's). Idempotent,
/// so a re-run step writes nothing twice.
pub(super) async fn adopt_sandbox_files(
    room: &ProjectRoom,
    sb: &SandboxClient,
    only: Option<&[&str]>,
) -> std::result::Result<(), SandboxError> {
    let wanted: Vec<ProjectPath> = match only {
        Some(paths) => paths
            .iter()
            .filter_map(|p| ProjectPath::parse(p).ok())
            .collect(),
        None => {
            let have: std::collections::HashSet<String> = room
                .store()
                .list()?
                .into_iter()
                .map(|f| f.path.to_string())
                .collect();
            sb.list_files()
                .await?
                .into_iter()
                .map(|f| f.path)
                .filter(|p| !have.contains(p.as_str()))
                .collect()
        }
    };
    for path in wanted {
        let bytes = match sb.read_file(&path).await {
            Ok(b) => b,
            Err(e) if e.status == Some(404) && only.is_some() => continue,
            Err(e) => return Err(e),
        };
        if room.store().content(&path)?.as_deref() == Some(&bytes[..]) {
            continue;
        }
        write_agent_file(room, &path, &bytes)?;
    }
    Ok(())
}
