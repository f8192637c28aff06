//! The working tree as the pipeline reads and writes it: as the agent, through the room.

use super::*;

/// Every path in the working tree.
pub(super) fn tree_paths(room: &ProjectRoom) -> Result<Vec<String>> {
    Ok(room
        .store()
        .list()?
        .into_iter()
        .map(|f| f.path.to_string())
        .collect())
}

/// The working tree as the tool loop sees it (`core::agent::tools` decides what each call
/// does with it).
pub(super) struct AgentTree<'a>(pub(super) &'a ProjectRoom);

impl ToolTree for AgentTree<'_> {
    type Error = worker::Error;

    fn files(&self) -> Result<Vec<(ProjectPath, u64)>> {
        Ok(self
            .0
            .store()
            .list()?
            .into_iter()
            .map(|f| (f.path, f.size))
            .collect())
    }

    fn read(&self, path: &ProjectPath) -> Result<Option<String>> {
        Ok(self
            .0
            .store()
            .content(path)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    fn write(&mut self, path: &ProjectPath, content: &str) -> std::result::Result<(), String> {
        write_agent_file(self.0, path, content.as_bytes()).map_err(|e| e.to_string())
    }
}

/// Broadcasts parser progress so every browser watches the files stream in.
pub(super) fn live(room: &ProjectRoom, ev: &StreamEvent) -> Result<()> {
    match ev {
        StreamEvent::FileStart { path } => {
            room.broadcast(ServerEvent::FileStart { path: path.clone() })
        }
        StreamEvent::FileChunk { path, text } => room.broadcast(ServerEvent::FileChunk {
            path: path.clone(),
            chunk: text.clone(),
        }),
        StreamEvent::FileEnd { path, content } => room.broadcast(ServerEvent::FileEnd {
            path: path.clone(),
            size: content.len() as u64,
        }),
        _ => Ok(()),
    }
}

/// Writes a file as the agent: the next rev, whatever it is (the agent owns the step).
pub(super) fn write_agent_file(
    room: &ProjectRoom,
    path: &ProjectPath,
    content: &[u8],
) -> Result<()> {
    let slot = room.store().slot(path)?;
    let totals = room.store().totals()?;
    kiln_core::tree::check_fits(slot, content.len() as u64, totals).map_err(|r| r.message())?;
    room.apply_write(AGENT, path, slot.rev + 1, content)?;
    Ok(())
}

/// The files a prompt quotes (`core::agent::context` picks them), with their text; binary
/// files are left out.
pub(super) fn context_files<'a>(
    room: &ProjectRoom,
    first: impl Iterator<Item = &'a str>,
) -> Result<Vec<(String, String)>> {
    let tree = tree_paths(room)?;
    let mut out = Vec::new();
    for path in context::select(first, &tree) {
        let Ok(p) = ProjectPath::parse(&path) else {
            continue;
        };
        if let Some(text) = room
            .store()
            .content(&p)?
            .and_then(|b| String::from_utf8(b).ok())
        {
            out.push((path, text));
        }
    }
    Ok(out)
}

/// Source path → text, and package.json's dependency names.
pub(super) type Code = (
    std::collections::BTreeMap<String, String>,
    std::collections::BTreeSet<String>,
);

/// The project's source files (what the type-check reads) and package.json's dependencies.
pub(super) fn project_code(room: &ProjectRoom) -> Result<Code> {
    let mut files = std::collections::BTreeMap::new();
    let mut deps = std::collections::BTreeSet::new();
    for meta in room.store().list()? {
        let path = meta.path.as_str();
        if path == "package.json" {
            let manifest = room.store().content(&meta.path)?.unwrap_or_default();
            deps = autofix::manifest_dependencies(&manifest);
        } else if autofix::is_code(path) && meta.size <= 256 * 1024 {
            if let Some(text) = room
                .store()
                .content(&meta.path)?
                .and_then(|b| String::from_utf8(b).ok())
            {
                files.insert(path.to_owned(), text);
            }
        }
    }
    Ok((files, deps))
}

pub(super) fn checks_path() -> ProjectPath {
    ProjectPath::parse(CHECKS_PATH).expect("a valid path")
}

/// The project's checks; a file a person broke by hand counts as none (and is rewritten by
/// the next phase that writes checks).
pub(super) fn read_checks(room: &ProjectRoom) -> Result<CheckFile> {
    Ok(room
        .store()
        .content(&checks_path())?
        .and_then(|b| CheckFile::parse(&b).ok())
        .unwrap_or_default())
}
