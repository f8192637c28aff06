//! The repeat guard: small models loop until `max_tokens`, writing the whole answer again (a
//! file closed a second time with the same content) or a few lines over and over inside one
//! file. The shell feeds it every parser event of a streamed answer and stops the stream when
//! it says so; the files closed before the loop are kept, an unclosed one is dropped (and the
//! check reports it missing).

use super::file_stream::{repeats_at_end, StreamEvent};
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct RepeatGuard {
    /// Path → content of every file closed so far.
    closed: HashMap<String, String>,
    /// The text of the file being written.
    writing: String,
    looped: bool,
}

impl RepeatGuard {
    pub fn new() -> RepeatGuard {
        RepeatGuard::default()
    }

    /// Takes one parser event; true when the answer has begun repeating itself with it. The
    /// event that shows the loop still goes out to clients (a `FileEnd` closes the file the
    /// repeat reopened), but is not kept.
    pub fn observe(&mut self, event: &StreamEvent) -> bool {
        match event {
            StreamEvent::FileStart { .. } => self.writing.clear(),
            StreamEvent::FileChunk { text, .. } => {
                self.writing.push_str(text);
                self.looped = repeats_at_end(&self.writing);
            }
            StreamEvent::FileEnd { path, content } => {
                self.looped = self.closed.get(path.as_str()) == Some(content);
                self.closed.insert(path.to_string(), content.clone());
            }
            _ => {}
        }
        self.looped
    }

    pub fn looped(&self) -> bool {
        self.looped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::file_stream::FileParser;

    fn run(answer: &str) -> (bool, Vec<StreamEvent>) {
        let mut parser = FileParser::new();
        let mut guard = RepeatGuard::new();
        let mut kept = Vec::new();
        for piece in answer.as_bytes().chunks(7) {
            for ev in parser.feed(piece) {
                if guard.observe(&ev) {
                    return (true, kept);
                }
                kept.push(ev);
            }
        }
        kept.extend(parser.finish());
        (false, kept)
    }

    fn ends(events: &[StreamEvent]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::FileEnd { path, .. } => Some(path.to_string()),
                _ => None,
            })
            .collect()
    }

    const A: &str = "<file path=\"a.js\">\nconst a = 1\n</file>\n";
    const B: &str = "<file path=\"b.js\">\nconst b = 2\n</file>\n";

    #[test]
    fn the_whole_answer_written_again_stops_at_the_first_repeated_file() {
        let (looped, kept) = run(&format!("{A}{B}{A}{B}"));
        assert!(looped);
        assert_eq!(ends(&kept), vec!["a.js", "b.js"]);
    }

    #[test]
    fn lines_over_and_over_inside_a_file_stop_it_and_drop_that_file() {
        let imports = "import { Alpha } from 'x'\n".repeat(6);
        let (looped, kept) = run(&format!("{A}<file path=\"c.js\">\n{imports}"));
        assert!(looped);
        assert_eq!(ends(&kept), vec!["a.js"], "the unclosed file is not kept");
    }

    #[test]
    fn a_file_rewritten_with_other_content_is_no_loop() {
        let a2 = "<file path=\"a.js\">\nconst a = 2\n</file>\n";
        let (looped, kept) = run(&format!("{A}{B}{a2}"));
        assert!(!looped);
        assert_eq!(ends(&kept), vec!["a.js", "b.js", "a.js"]);
    }
}
