//! Benchmark (prints figures): the model-output parser's throughput on a 1 MB transcript,
//! fed in network-sized and in tiny chunks. Run: `cargo bench -p kiln-core --bench parser`.

use std::time::Instant;

use kiln_core::agent::file_stream::{FileParser, StreamEvent};

fn transcript() -> String {
    let mut t = String::from("Here is the app you asked for.\n\n");
    let mut k = 0;
    while t.len() < 1_000_000 {
        t += &format!("<file path=\"src/components/Widget{k}.tsx\">\n```tsx\n");
        for line in 0..40 {
            t += &format!(
                "  const value{line} = useMemo(() => compute({line}, props.items), [props.items]); // é→\n"
            );
        }
        t += "```\n</file>\n\nNext, a small note about the component above.\n";
        if k % 10 == 0 {
            t += "<command>npm install zustand</command>\n";
        }
        k += 1;
    }
    t
}

fn run(bytes: &[u8], chunk: usize) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut files = 0;
    for _ in 0..5 {
        let start = Instant::now();
        let mut p = FileParser::new();
        let mut n = 0;
        for c in bytes.chunks(chunk) {
            n += p
                .feed(c)
                .iter()
                .filter(|e| matches!(e, StreamEvent::FileEnd { .. }))
                .count();
        }
        p.finish();
        best = best.min(start.elapsed().as_secs_f64());
        files = n;
    }
    (bytes.len() as f64 / best / 1e6, files)
}

fn main() {
    let t = transcript();
    let bytes = t.as_bytes();
    for chunk in [4096, 64, 1] {
        let (mbs, files) = run(bytes, chunk);
        println!(
            "parser: {:.2} MB transcript, {files} files, {chunk}-byte chunks: {mbs:.1} MB/s (best of 5)",
            bytes.len() as f64 / 1e6
        );
    }
}
