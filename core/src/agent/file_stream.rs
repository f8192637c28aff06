//! The incremental parser of model output. The model writes files, commands and edits as
//! tagged blocks among free prose:
//!
//! ```text
//! Here is the app.
//! <file path="src/App.tsx">
//! export default function App() { … }
//! </file>
//! <command>npm install zustand</command>
//! <edit path="src/main.tsx">
//! <<<<<<< SEARCH
//! old lines
//! =======
//! new lines
//! >>>>>>> REPLACE
//! </edit>
//! ```
//!
//! `FileParser::feed` takes bytes in any chunking and emits events as soon as they are known:
//! a `FileChunk` per completed line of a file, so every browser watches the file appear. Each
//! byte is looked at once: the parser keeps only the bytes that may still turn out to be part
//! of a tag (a few dozen) and the current line. The same transcript gives the same events
//! however it is split. Code fences around a file's content are dropped; prose and fences
//! outside blocks are ignored; a block still open at the end of the stream is an `Error`,
//! never a silently dropped or half file.

use crate::path::ProjectPath;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    FileStart {
        path: ProjectPath,
    },
    /// One line of the file, with its newline (the last line may lack one).
    FileChunk {
        path: ProjectPath,
        text: String,
    },
    /// The file is complete; `content` is every chunk joined.
    FileEnd {
        path: ProjectPath,
        content: String,
    },
    /// A shell command the model wants run (e.g. installing a dependency).
    Command {
        command: String,
    },
    /// Replace `search` (exactly once) with `replace` in an existing file.
    Edit {
        path: ProjectPath,
        search: String,
        replace: String,
    },
    /// A malformed or unfinished block. Nothing of it was written.
    Error {
        message: String,
    },
}

const FILE_OPEN: &[u8] = b"<file";
const FILE_CLOSE: &[u8] = b"</file>";
const COMMAND_OPEN: &[u8] = b"<command>";
const COMMAND_CLOSE: &[u8] = b"</command>";
const EDIT_OPEN: &[u8] = b"<edit";
const EDIT_CLOSE: &[u8] = b"</edit>";
/// Longest header `<file path="…">` we accept (512-byte path plus the tag).
const MAX_HEADER: usize = 600;
/// Largest command or edit block.
const MAX_BLOCK: usize = 1024 * 1024;

#[derive(Debug)]
enum Mode {
    /// Prose between blocks.
    Outside,
    /// After `<file` or `<edit`, reading the attributes up to `>`.
    Header {
        edit: bool,
    },
    File(FileState),
    Command,
    Edit {
        path: Option<ProjectPath>,
    },
}

#[derive(Debug)]
struct FileState {
    path: ProjectPath,
    /// The current, unfinished line.
    line: Vec<u8>,
    /// The last complete line, held back in case it is a closing code fence.
    held: Option<String>,
    /// Lines completed so far, up to 2: the newline after the tag and an opening code
    /// fence right after it are not content.
    lines: u8,
    content: String,
}

pub struct FileParser {
    mode: Mode,
    /// Bytes of the current mode not yet consumed: a possible tag prefix, a header, or the
    /// body of a command/edit block.
    buf: Vec<u8>,
    events: Vec<StreamEvent>,
}

impl Default for FileParser {
    fn default() -> Self {
        Self::new()
    }
}

impl FileParser {
    pub fn new() -> FileParser {
        FileParser {
            mode: Mode::Outside,
            buf: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Consumes the next bytes of the stream; returns the events they completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<StreamEvent> {
        for &b in bytes {
            self.byte(b);
        }
        std::mem::take(&mut self.events)
    }

    /// The stream ended: anything still open is an error.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        let open = match std::mem::replace(&mut self.mode, Mode::Outside) {
            Mode::Outside => None,
            Mode::Header { .. } => Some("a block header was cut off".to_owned()),
            Mode::File(f) => Some(format!("file {} was not closed with </file>", f.path)),
            Mode::Command => Some("a <command> was not closed".to_owned()),
            Mode::Edit { path } => Some(format!(
                "edit of {} was not closed with </edit>",
                path.map_or_else(|| "?".to_owned(), |p| p.to_string())
            )),
        };
        if let Some(message) = open {
            self.events.push(StreamEvent::Error { message });
        }
        self.buf.clear();
        std::mem::take(&mut self.events)
    }

    fn byte(&mut self, b: u8) {
        match &mut self.mode {
            Mode::Outside => self.outside(b),
            Mode::Header { edit } => {
                let edit = *edit;
                self.header(b, edit)
            }
            Mode::File(_) => self.file(b),
            Mode::Command => self.block(b, COMMAND_CLOSE),
            Mode::Edit { .. } => self.block(b, EDIT_CLOSE),
        }
    }

    /// Outside blocks only a possible tag prefix is kept.
    fn outside(&mut self, b: u8) {
        self.buf.push(b);
        loop {
            if self.buf.as_slice() == COMMAND_OPEN {
                self.buf.clear();
                self.mode = Mode::Command;
                return;
            }
            let file = self.buf.as_slice() == FILE_OPEN;
            if file || self.buf.as_slice() == EDIT_OPEN {
                self.buf.clear();
                self.mode = Mode::Header { edit: !file };
                return;
            }
            let prefix = [FILE_OPEN, COMMAND_OPEN, EDIT_OPEN]
                .iter()
                .any(|t| t.starts_with(&self.buf));
            if prefix {
                return;
            }
            // Not a tag: drop the first byte and retry with the rest (it may start a tag).
            self.buf.remove(0);
            if self.buf.is_empty() {
                return;
            }
        }
    }

    fn header(&mut self, b: u8, edit: bool) {
        if b != b'>' {
            self.buf.push(b);
            if self.buf.len() > MAX_HEADER {
                self.fail("a block header is too long");
            }
            return;
        }
        let header = String::from_utf8_lossy(&self.buf).into_owned();
        self.buf.clear();
        // `<filed>` or `<editor>` in prose: not our tag after all.
        if !header.is_empty() && !header.starts_with(char::is_whitespace) {
            self.mode = Mode::Outside;
            return;
        }
        let path = match attribute(&header, "path") {
            None => return self.fail("a block has no path=\"…\""),
            Some(raw) => match ProjectPath::parse(&raw) {
                Ok(p) => p,
                Err(e) => return self.fail(&format!("invalid path {raw:?}: {e}")),
            },
        };
        if edit {
            self.mode = Mode::Edit { path: Some(path) };
        } else {
            self.events
                .push(StreamEvent::FileStart { path: path.clone() });
            self.mode = Mode::File(FileState {
                path,
                line: Vec::new(),
                held: None,
                lines: 0,
                content: String::new(),
            });
        }
    }

    fn file(&mut self, b: u8) {
        let Mode::File(f) = &mut self.mode else {
            return;
        };
        f.line.push(b);
        if f.line.ends_with(FILE_CLOSE) {
            let keep = f.line.len() - FILE_CLOSE.len();
            f.line.truncate(keep);
            return self.close_file();
        }
        if b != b'\n' {
            return;
        }
        let line = String::from_utf8_lossy(&f.line).into_owned();
        f.line.clear();
        if f.lines < 2 {
            let blank_after_tag = f.lines == 0 && line.trim().is_empty();
            let opening_fence = f.held.is_none() && line.trim_start().starts_with("```");
            f.lines = if blank_after_tag { 1 } else { 2 };
            if blank_after_tag || opening_fence {
                return;
            }
        }
        if let Some(prev) = f.held.replace(line) {
            let path = f.path.clone();
            f.content.push_str(&prev);
            self.events
                .push(StreamEvent::FileChunk { path, text: prev });
        }
    }

    fn close_file(&mut self) {
        let Mode::File(mut f) = std::mem::replace(&mut self.mode, Mode::Outside) else {
            return;
        };
        let tail = String::from_utf8_lossy(&f.line).into_owned();
        let mut rest = Vec::new();
        if let Some(held) = f.held.take() {
            let closing_fence = held.trim() == "```" && tail.trim().is_empty();
            if !closing_fence {
                rest.push(held);
            }
        }
        // A tail before `</file>` on the same line ("}</file>") is content; whitespace-only
        // indentation before the tag is not.
        let fence_only_tail = tail.trim() == "```";
        if !tail.trim().is_empty() && !fence_only_tail {
            rest.push(tail);
        }
        for text in rest {
            f.content.push_str(&text);
            self.events.push(StreamEvent::FileChunk {
                path: f.path.clone(),
                text,
            });
        }
        self.events.push(StreamEvent::FileEnd {
            path: f.path,
            content: f.content,
        });
    }

    /// Commands and edits are small: buffered whole, then parsed at their closing tag.
    fn block(&mut self, b: u8, close: &[u8]) {
        self.buf.push(b);
        if self.buf.len() > MAX_BLOCK {
            return self.fail("a block is too large");
        }
        if !self.buf.ends_with(close) {
            return;
        }
        let body_len = self.buf.len() - close.len();
        let body = String::from_utf8_lossy(&self.buf[..body_len]).into_owned();
        self.buf.clear();
        match std::mem::replace(&mut self.mode, Mode::Outside) {
            Mode::Command => {
                let command = body.trim().to_owned();
                if !command.is_empty() {
                    self.events.push(StreamEvent::Command { command });
                }
            }
            Mode::Edit { path: Some(path) } => match search_replace(&body) {
                Ok(pairs) => {
                    for (search, replace) in pairs {
                        self.events.push(StreamEvent::Edit {
                            path: path.clone(),
                            search,
                            replace,
                        });
                    }
                }
                Err(message) => self.events.push(StreamEvent::Error {
                    message: format!("edit of {path}: {message}"),
                }),
            },
            _ => {}
        }
    }

    /// Reports a malformed block and skips it: the parser resumes with the prose after it.
    fn fail(&mut self, message: &str) {
        self.events.push(StreamEvent::Error {
            message: message.to_owned(),
        });
        self.buf.clear();
        self.mode = Mode::Outside;
    }
}

/// `name="value"` (or single quotes) from a tag's attributes.
fn attribute(header: &str, name: &str) -> Option<String> {
    let start = header.find(&format!("{name}="))? + name.len() + 1;
    let rest = &header[start..];
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let end = rest[1..].find(quote)?;
    Some(rest[1..1 + end].to_owned())
}

/// The SEARCH/REPLACE pairs of an edit block.
fn search_replace(body: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut lines = body.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        if !line.trim_start().starts_with("<<<<<<<") {
            continue;
        }
        let (mut search, mut replace) = (String::new(), String::new());
        let mut in_replace = false;
        let mut closed = false;
        for line in lines.by_ref() {
            let t = line.trim();
            if !in_replace && t.starts_with("=======") {
                in_replace = true;
            } else if in_replace && t.starts_with(">>>>>>>") {
                closed = true;
                break;
            } else if in_replace {
                replace.push_str(line);
            } else {
                search.push_str(line);
            }
        }
        if !closed {
            return Err("a SEARCH/REPLACE block is not closed with >>>>>>> REPLACE".into());
        }
        if search.is_empty() {
            return Err("an empty SEARCH section".into());
        }
        pairs.push((search, replace));
    }
    if pairs.is_empty() {
        return Err("no <<<<<<< SEARCH … ======= … >>>>>>> REPLACE block".into());
    }
    Ok(pairs)
}

/// Applies one search/replace to `content`. The search text must occur exactly once; if it
/// does not occur verbatim, a match that differs only in leading/trailing whitespace per line
/// is accepted (small models re-indent).
pub fn apply_edit(content: &str, search: &str, replace: &str) -> Result<String, String> {
    match content.matches(search).count() {
        1 => return Ok(content.replacen(search, replace, 1)),
        n if n > 1 => return Err(format!("the SEARCH text occurs {n} times; make it unique")),
        _ => {}
    }
    let want: Vec<&str> = search.lines().map(str::trim).collect();
    let lines: Vec<&str> = content.split_inclusive('\n').collect();
    let mut found = None;
    for start in 0..lines.len() {
        if start + want.len() > lines.len() {
            break;
        }
        let same = lines[start..start + want.len()]
            .iter()
            .zip(&want)
            .all(|(l, w)| l.trim() == *w);
        if same {
            if found.is_some() {
                return Err("the SEARCH text occurs more than once; make it unique".into());
            }
            found = Some(start);
        }
    }
    let start = found.ok_or("the SEARCH text is not in the file")?;
    let mut out: String = lines[..start].concat();
    out.push_str(replace);
    if !replace.is_empty() && !replace.ends_with('\n') && start + want.len() < lines.len() {
        out.push('\n');
    }
    out.push_str(&lines[start + want.len()..].concat());
    Ok(out)
}

/// Whether a file being written ends in the same block of lines over and over: a small model
/// in a loop (e.g. the same imports until max_tokens). A block of 1–16 lines counts four times
/// over, a longer one (17–48 lines) three times. Blocks under 16 characters (`}`, `</div>`:
/// closing nested elements) do not count.
pub fn repeats_at_end(text: &str) -> bool {
    const SHORT: usize = 16;
    const LONG: usize = 48;
    let mut lines: Vec<&str> = text.lines().rev().take(LONG * 3).map(str::trim).collect();
    lines.reverse();
    // Short blocks: a JSX element with its attributes is ~10 lines (the baseline's Kanban
    // coder nested the same 9-line <div> ever deeper until the cap). Long ones: run 10's unit
    // converter declared the same 25 lines of constants again and again for 3,000 tokens.
    (1..=LONG).any(|period| {
        let times = if period <= SHORT { 4 } else { 3 };
        if lines.len() < period * times {
            return false;
        }
        let tail = &lines[lines.len() - period * times..];
        let block = &tail[..period];
        block.iter().map(|l| l.len()).sum::<usize>() >= 16
            && (period <= SHORT || distinct(block) >= 8)
            && tail.chunks(period).all(|c| c == block)
    })
}

fn distinct(block: &[&str]) -> usize {
    let mut seen: Vec<&str> = block.iter().copied().filter(|l| !l.is_empty()).collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_element_nested_in_itself_over_and_over_is_a_loop() {
        // Recorded (bench run 8ca5ac1, the Kanban board): the same element, one level deeper
        // each time; trimmed, the lines are equal.
        let mut text = String::from("return (\n");
        for depth in 0..5 {
            let pad = " ".repeat(2 * depth);
            text += &format!(
                "{pad}<div\n{pad}  className={{`w-full h-full flex items-center p-4 ${{\n{pad}    isDragging ? 'bg-blue-100' : ''\n{pad}  }}`}}\n{pad}  draggable\n{pad}  onDragStart={{handleDragStart}}\n{pad}  onDragOver={{handleDragOver}}\n{pad}  onDrop={{handleDragEnd}}\n{pad}>\n"
            );
        }
        assert!(repeats_at_end(&text));
    }

    #[test]
    fn a_block_repeated_four_times_at_the_end_is_a_loop() {
        let imports = "import { A } from 'x'\nimport { B } from 'x'\n";
        assert!(repeats_at_end(&format!(
            "const a = 1\n{}",
            imports.repeat(4)
        )));
        assert!(!repeats_at_end(&format!(
            "const a = 1\n{}",
            imports.repeat(3)
        )));
        assert!(repeats_at_end(&"  <li>the same item</li>\n".repeat(4)));
        assert!(!repeats_at_end(&"      </div>\n".repeat(8)));
        assert!(!repeats_at_end("}\n}\n}\n}\n}\n"));
        assert!(!repeats_at_end("\n\n\n\n\n\n"));
        assert!(!repeats_at_end("a\nb\nc\nd\ne\nf\ng\nh\n"));
        // A repetition earlier in the file, then other code, is not a loop.
        assert!(!repeats_at_end(&format!(
            "{}const b = 2\n",
            "x()\n".repeat(5)
        )));
    }

    #[test]
    fn a_long_block_written_three_times_is_a_loop() {
        // Recorded (bench run a6c4162, the unit converter): 25 lines of constants declared
        // again and again until the 3,000-token cap.
        let block: String = [
            "PRECISION = 2",
            "STEP = 0.01",
            "MIN = 0",
            "MAX = 1000",
            "DEFAULT = 0",
        ]
        .iter()
        .map(|k| {
            ["LENGTH", "WEIGHT", "TEMP_C", "TEMP_F"]
                .iter()
                .map(|u| format!("const {u}_{k}\n"))
                .collect::<String>()
                + "\n"
        })
        .collect();
        let head = "import { useState } from 'react'\n\nconst UNITS = ['m', 'km']\n";
        assert!(repeats_at_end(&format!("{head}{}", block.repeat(3))));
        assert!(!repeats_at_end(&format!("{head}{}", block.repeat(2))));
    }

    fn p(s: &str) -> ProjectPath {
        ProjectPath::parse(s).unwrap()
    }

    fn parse_all(chunks: &[&[u8]]) -> Vec<StreamEvent> {
        let mut parser = FileParser::new();
        let mut out = vec![];
        for c in chunks {
            out.extend(parser.feed(c));
        }
        out.extend(parser.finish());
        out
    }

    const TRANSCRIPT: &str = "Sure! Here is your app.\n\n\
        <file path=\"index.html\">\n<!doctype html>\n<h1>Hi</h1>\n</file>\n\
        Some prose with a <b>tag</b> and x < y.\n\
        <file path=\"src/app.js\">\n```js\nconst a = 1;\nconsole.log(a);\n```\n</file>\n\
        <command>npm install zustand</command>\n\
        <edit path=\"src/app.js\">\n<<<<<<< SEARCH\nconst a = 1;\n=======\nconst a = 2;\n>>>>>>> REPLACE\n</edit>\n\
        Done.\n";

    fn expected() -> Vec<StreamEvent> {
        use StreamEvent::*;
        vec![
            FileStart {
                path: p("index.html"),
            },
            FileChunk {
                path: p("index.html"),
                text: "<!doctype html>\n".into(),
            },
            FileChunk {
                path: p("index.html"),
                text: "<h1>Hi</h1>\n".into(),
            },
            FileEnd {
                path: p("index.html"),
                content: "<!doctype html>\n<h1>Hi</h1>\n".into(),
            },
            FileStart {
                path: p("src/app.js"),
            },
            FileChunk {
                path: p("src/app.js"),
                text: "const a = 1;\n".into(),
            },
            FileChunk {
                path: p("src/app.js"),
                text: "console.log(a);\n".into(),
            },
            FileEnd {
                path: p("src/app.js"),
                content: "const a = 1;\nconsole.log(a);\n".into(),
            },
            Command {
                command: "npm install zustand".into(),
            },
            Edit {
                path: p("src/app.js"),
                search: "const a = 1;\n".into(),
                replace: "const a = 2;\n".into(),
            },
        ]
    }

    #[test]
    fn a_whole_transcript_parses_into_files_commands_and_edits() {
        assert_eq!(parse_all(&[TRANSCRIPT.as_bytes()]), expected());
    }

    /// Property: every split of the transcript into two or three chunks, and many random
    /// splits into small chunks, give exactly the same events.
    #[test]
    fn any_split_gives_the_same_events() {
        let bytes = TRANSCRIPT.as_bytes();
        let want = expected();
        for i in 0..=bytes.len() {
            assert_eq!(parse_all(&[&bytes[..i], &bytes[i..]]), want, "split at {i}");
        }
        for i in (0..=bytes.len()).step_by(7) {
            for j in i..=bytes.len() {
                let got = parse_all(&[&bytes[..i], &bytes[i..j], &bytes[j..]]);
                assert_eq!(got, want, "split at {i}, {j}");
            }
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..500 {
            let mut chunks = vec![];
            let mut at = 0;
            while at < bytes.len() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let n = 1 + (seed % 9) as usize;
                let end = (at + n).min(bytes.len());
                chunks.push(&bytes[at..end]);
                at = end;
            }
            assert_eq!(parse_all(&chunks), want);
        }
        // One byte at a time.
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(parse_all(&singles), want);
    }

    #[test]
    fn multibyte_characters_split_across_chunks_survive() {
        let t = "<file path=\"a.txt\">\nhéllo → 世界\n</file>";
        let b = t.as_bytes();
        for i in 0..=b.len() {
            let events = parse_all(&[&b[..i], &b[i..]]);
            assert_eq!(
                events.last(),
                Some(&StreamEvent::FileEnd {
                    path: p("a.txt"),
                    content: "héllo → 世界\n".into()
                }),
                "split at {i}"
            );
        }
    }

    #[test]
    fn an_unclosed_file_is_an_error_not_a_file() {
        let events = parse_all(&[b"<file path=\"a.js\">\nconst x = 1;\nconst y"]);
        assert!(!events
            .iter()
            .any(|e| matches!(e, StreamEvent::FileEnd { .. })));
        assert!(
            matches!(events.last(), Some(StreamEvent::Error { message }) if message.contains("a.js"))
        );
        let events = parse_all(&[b"<command>npm i"]);
        assert!(matches!(events.last(), Some(StreamEvent::Error { .. })));
    }

    #[test]
    fn bad_paths_are_errors_and_parsing_continues() {
        let events = parse_all(&[
            b"<file path=\"../etc/passwd\">\nx\n</file>\n<file path=\"ok.txt\">\ny\n</file>",
        ]);
        assert!(
            matches!(&events[0], StreamEvent::Error { message } if message.contains("invalid path"))
        );
        assert!(events.contains(&StreamEvent::FileEnd {
            path: p("ok.txt"),
            content: "y\n".into()
        }));
        assert!(!events.iter().any(
            |e| matches!(e, StreamEvent::FileStart { path } if path.as_str().contains("passwd"))
        ));
        let events = parse_all(&[b"<file name=\"x\">\nx\n</file>"]);
        assert!(matches!(&events[0], StreamEvent::Error { .. }));
    }

    #[test]
    fn tags_in_prose_that_are_not_ours_are_ignored() {
        let events = parse_all(&[b"use <filed> and <editor> and <commands> freely; a < b"]);
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn content_on_the_closing_line_is_kept() {
        let events = parse_all(&[b"<file path='a.css'>body{}</file>"]);
        assert_eq!(
            events.last(),
            Some(&StreamEvent::FileEnd {
                path: p("a.css"),
                content: "body{}".into()
            })
        );
    }

    #[test]
    fn edits_need_well_formed_blocks() {
        let events = parse_all(&[b"<edit path=\"a\">\nno markers\n</edit>"]);
        assert!(matches!(&events[0], StreamEvent::Error { .. }));
        let two = "<edit path=\"a\">\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n<<<<<<< SEARCH\nc\n=======\n>>>>>>> REPLACE\n</edit>";
        let events = parse_all(&[two.as_bytes()]);
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[1],
            StreamEvent::Edit {
                path: p("a"),
                search: "c\n".into(),
                replace: String::new()
            }
        );
    }

    #[test]
    fn apply_edit_replaces_exactly_one_occurrence() {
        let src = "a\n  b\nc\n";
        assert_eq!(apply_edit(src, "  b\n", "  B\n").unwrap(), "a\n  B\nc\n");
        // Re-indented search text still matches by trimmed lines.
        assert_eq!(apply_edit(src, "b\n  c\n", "x\n").unwrap(), "a\nx\n");
        assert!(apply_edit("x\nx\n", "x\n", "y\n").is_err());
        assert!(apply_edit(src, "zzz", "y").is_err());
    }
}
