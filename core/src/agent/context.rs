//! Context selection: which of the project's files a prompt quotes. The phase's own files
//! first (in the plan's order), then every other file that helps the model write the app.

/// The paths to quote, in order, each once: `first` (the files the step is about), then the
/// rest of `tree` that is worth quoting. The shell reads them; unreadable or binary ones are
/// left out there.
pub fn select<'a>(first: impl IntoIterator<Item = &'a str>, tree: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let rest = tree.iter().map(String::as_str).filter(|p| worth_quoting(p));
    let mut add = |path: &str| {
        if !out.iter().any(|p| p == path) {
            out.push(path.to_owned());
        }
    };
    first.into_iter().for_each(&mut add);
    rest.for_each(add);
    out
}

/// Whether a file helps the model write the app: not images, lockfiles, tool configuration or
/// Kiln's own checks, which would only crowd a small model's context.
pub fn worth_quoting(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    !(path.starts_with("public/")
        || path.starts_with(".kiln/")
        || name == "package-lock.json"
        || name.starts_with("tsconfig")
        || name.contains(".config.")
        || name.ends_with(".d.ts")
        // Given and never changed; small models shown it copied it into App.tsx.
        || path == "src/main.tsx")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_files_are_worth_quoting() {
        for (path, quoted) in [
            ("src/App.tsx", true),
            ("index.html", true),
            ("package.json", true),
            ("src/styles.css", true),
            ("public/logo.svg", false),
            (".kiln/checks.json", false),
            ("package-lock.json", false),
            ("tsconfig.node.json", false),
            ("vite.config.ts", false),
            ("src/vite-env.d.ts", false),
            ("src/main.tsx", false),
        ] {
            assert_eq!(worth_quoting(path), quoted, "{path}");
        }
    }

    #[test]
    fn the_steps_files_come_first_then_the_rest_each_once() {
        let tree: Vec<String> = [
            "index.html",
            "package-lock.json",
            "src/App.tsx",
            "src/todo.ts",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            select(["src/todo.ts", "src/App.tsx", "src/todo.ts"], &tree),
            vec!["src/todo.ts", "src/App.tsx", "index.html"]
        );
        // A file the step is about is quoted even if it would not be otherwise.
        assert_eq!(select(["src/main.tsx"], &[]), vec!["src/main.tsx"]);
    }
}
