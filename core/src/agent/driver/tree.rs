//! The working tree as the pipeline reads and writes it.

use super::*;
use crate::agent::checks::{CheckFile, CHECKS_PATH};
use crate::agent::file_stream::StreamEvent;
use crate::agent::tools::ToolTree;
use crate::agent::{autofix, context};
use std::collections::{BTreeMap, BTreeSet};

/// Every path in the working tree.
pub(super) fn tree_paths<H: Host>(host: &H) -> HostResult<Vec<String>> {
    Ok(host
        .files()?
        .into_iter()
        .map(|(p, _)| p.to_string())
        .collect())
}

/// The working tree as the model's answers and the tool loop see it (`tools` and `pipeline`
/// decide what each block or call does with it). With `keep_scaffolding` (the small
/// profile), writes to Kiln's scaffolding are refused and reported.
pub(super) struct AgentTree<'a, H> {
    pub(super) host: &'a H,
    pub(super) keep_scaffolding: bool,
}

impl<'a, H: Host> AgentTree<'a, H> {
    pub(super) fn new(host: &'a H) -> Self {
        let keep_scaffolding = super::profile(host) == crate::agent::profile::Profile::Small;
        AgentTree {
            host,
            keep_scaffolding,
        }
    }
}

impl<H: Host> ToolTree for AgentTree<'_, H> {
    type Error = HostError;

    fn files(&self) -> HostResult<Vec<(ProjectPath, u64)>> {
        self.host.files()
    }

    fn read(&self, path: &ProjectPath) -> HostResult<Option<String>> {
        Ok(self
            .host
            .read(path)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    fn write(&mut self, path: &ProjectPath, content: &str) -> Result<(), String> {
        if self.keep_scaffolding && crate::agent::context::is_scaffolding(path.as_str()) {
            return Err("it is Kiln's scaffolding, given and kept as it is".into());
        }
        self.host.write(path, content.as_bytes())
    }
}

/// The event that shows a streamed file's progress to every browser.
pub(super) fn live(ev: &StreamEvent) -> Option<ServerEvent> {
    Some(match ev {
        StreamEvent::FileStart { path } => ServerEvent::FileStart { path: path.clone() },
        StreamEvent::FileChunk { path, text } => ServerEvent::FileChunk {
            path: path.clone(),
            chunk: text.clone(),
        },
        StreamEvent::FileEnd { path, content } => ServerEvent::FileEnd {
            path: path.clone(),
            size: content.len() as u64,
        },
        _ => return None,
    })
}

/// A file's text; `None` when it is missing or not UTF-8.
pub(super) fn text<H: Host>(host: &H, path: &ProjectPath) -> HostResult<Option<String>> {
    Ok(host.read(path)?.and_then(|b| String::from_utf8(b).ok()))
}

/// The files a prompt quotes (`context` picks them), with their text; binary files are
/// left out.
pub(super) fn context_files<'a, H: Host>(
    host: &H,
    first: impl Iterator<Item = &'a str>,
) -> HostResult<Vec<(String, String)>> {
    let tree = tree_paths(host)?;
    let mut out = Vec::new();
    for path in context::select(first, &tree) {
        let Ok(p) = ProjectPath::parse(&path) else {
            continue;
        };
        if let Some(text) = text(host, &p)? {
            out.push((path, text));
        }
    }
    Ok(out)
}

/// The project's source files (what the type-check reads) and package.json's dependencies.
pub(super) fn project_code<H: Host>(
    host: &H,
) -> HostResult<(BTreeMap<String, String>, BTreeSet<String>)> {
    let mut files = BTreeMap::new();
    let mut deps = BTreeSet::new();
    for (path, size) in host.files()? {
        if path.as_str() == "package.json" {
            deps = autofix::manifest_dependencies(&host.read(&path)?.unwrap_or_default());
        } else if autofix::is_code(path.as_str()) && size <= 256 * 1024 {
            if let Some(text) = text(host, &path)? {
                files.insert(path.to_string(), text);
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
pub(super) fn read_checks<H: Host>(host: &H) -> HostResult<CheckFile> {
    Ok(host
        .read(&checks_path())?
        .and_then(|b| CheckFile::parse(&b).ok())
        .unwrap_or_default())
}
