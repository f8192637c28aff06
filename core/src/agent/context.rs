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

/// The paths a fix quotes: the files its errors name first (the error's own file leads), then
/// the rest worth quoting. Never everything: configs, images, the checks file and the given
/// entry point cost a small model its context and invite it to rewrite them.
pub fn for_fix(errors: &[String], tree: &[String]) -> Vec<String> {
    let named = tree
        .iter()
        .map(String::as_str)
        .filter(|p| worth_quoting(p) && errors.iter().any(|e| e.contains(p)));
    select(named, tree)
}

/// Kiln's scaffolding, which a small model is not asked to write and, shown it, rewrote
/// wholesale (the baseline's fixer rewrote tsconfig.json, vite.config.ts and src/main.tsx):
/// its writes there are refused.
pub fn is_scaffolding(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(
        path,
        "src/main.tsx"
            | "src/lib/persist.ts"
            | "src/vite-env.d.ts"
            | "store.js"
            | "package-lock.json"
    ) || name.starts_with("tsconfig")
        || name.starts_with("vite.config.")
        || name.starts_with("tailwind.config.")
        || name.starts_with("postcss.config.")
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
    fn scaffolding_is_the_templates_tooling_and_helpers() {
        for p in [
            "src/main.tsx",
            "src/lib/persist.ts",
            "tsconfig.json",
            "tsconfig.app.json",
            "vite.config.ts",
            "tailwind.config.js",
            "postcss.config.js",
            "package-lock.json",
            "store.js",
        ] {
            assert!(is_scaffolding(p), "{p}");
        }
        for p in [
            "src/App.tsx",
            "index.html",
            "package.json",
            "src/index.css",
            "main.js",
            "src/components/main.tsx",
        ] {
            assert!(!is_scaffolding(p), "{p}");
        }
    }

    #[test]
    fn a_fix_quotes_the_files_its_errors_name_first_and_never_the_tooling() {
        // The tree of the baseline run's Todo list, whose fixer was shown all of it.
        let tree: Vec<String> = [
            ".kiln/checks.json",
            "index.html",
            "package.json",
            "postcss.config.js",
            "public/header.svg",
            "src/App.tsx",
            "src/components/TodoFilter.tsx",
            "src/components/TodoItem.tsx",
            "src/index.css",
            "src/lib/persist.ts",
            "src/main.tsx",
            "src/types.ts",
            "src/vite-env.d.ts",
            "tailwind.config.js",
            "tsconfig.json",
            "vite.config.ts",
        ]
        .map(String::from)
        .to_vec();
        let errors = vec![
            "src/components/TodoItem.tsx(6,9): error TS2488: Type 'Element' must have…".to_owned(),
        ];
        let quoted = for_fix(&errors, &tree);
        assert_eq!(quoted[0], "src/components/TodoItem.tsx");
        for hidden in [
            ".kiln/checks.json",
            "src/main.tsx",
            "tsconfig.json",
            "public/header.svg",
            "postcss.config.js",
            "src/vite-env.d.ts",
        ] {
            assert!(
                !quoted.iter().any(|p| p == hidden),
                "{hidden} in {quoted:?}"
            );
        }
        assert!(quoted.iter().any(|p| p == "src/App.tsx"));
        // A browser check names no file: the app's files, in tree order.
        let quoted = for_fix(&["Browser check \"adds\" failed".to_owned()], &tree);
        assert_eq!(quoted[0], "index.html");
    }

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
