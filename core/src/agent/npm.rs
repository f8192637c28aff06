//! `npm install` requests from the model (a `<command>` block, the tool loop's `exec`) parsed
//! into the only command Kiln runs for it: `npm install <packages>`, with package specs that
//! cannot be flags, scripts or shell.

/// npm's own cap on a package name.
const MAX_SPEC_LEN: usize = 214;

/// A validated `npm install a b@1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpmInstall {
    packages: Vec<String>,
}

/// Why a command is not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAllowed;

impl std::fmt::Display for NotAllowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("only `npm install <packages>` is run")
    }
}

impl NpmInstall {
    /// `npm install a b@1` (or `npm i`, `npm add`) → `[a, b@1]`; anything else (flags,
    /// scripts, other programs, no package) is refused.
    pub fn parse(command: &str) -> Result<NpmInstall, NotAllowed> {
        let mut words = command.split_whitespace();
        if words.next() != Some("npm") || !matches!(words.next(), Some("install" | "i" | "add")) {
            return Err(NotAllowed);
        }
        let packages: Vec<String> = words.map(str::to_owned).collect();
        let valid = |p: &String| {
            !p.starts_with('-')
                && p.len() <= MAX_SPEC_LEN
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "@/._-^~".contains(c))
        };
        if packages.is_empty() || !packages.iter().all(valid) {
            return Err(NotAllowed);
        }
        Ok(NpmInstall { packages })
    }

    /// Packages named by the deterministic repairs (already known names).
    pub fn of(packages: Vec<String>) -> Result<NpmInstall, NotAllowed> {
        NpmInstall::parse(&format!("npm install {}", packages.join(" ")))
    }

    pub fn packages(&self) -> &[String] {
        &self.packages
    }

    /// The arguments to `npm` (no audit or funding requests: they only cost time).
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "install".to_owned(),
            "--no-audit".into(),
            "--no-fund".into(),
        ];
        args.extend(self.packages.iter().cloned());
        args
    }

    /// How the command is shown to people.
    pub fn command(&self) -> String {
        format!("npm install {}", self.packages.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_requests_parse_into_their_packages() {
        for (command, packages) in [
            ("npm install zustand", vec!["zustand"]),
            (
                "npm i  react-router-dom@6 @types/node",
                vec!["react-router-dom@6", "@types/node"],
            ),
            (
                "npm add lodash.debounce@^4.0.8",
                vec!["lodash.debounce@^4.0.8"],
            ),
        ] {
            let parsed = NpmInstall::parse(command).unwrap();
            assert_eq!(parsed.packages(), packages, "{command}");
        }
        let parsed = NpmInstall::parse("npm install a").unwrap();
        assert_eq!(
            parsed.args(),
            vec!["install", "--no-audit", "--no-fund", "a"]
        );
        assert_eq!(parsed.command(), "npm install a");
    }

    #[test]
    fn anything_but_a_plain_install_is_refused() {
        let long = format!("npm install {}", "a".repeat(MAX_SPEC_LEN + 1));
        for command in [
            "",
            "npm",
            "npm install",
            "npm run build",
            "npx vite",
            "yarn add zustand",
            "npm install --save-dev zustand",
            "npm install zustand; rm -rf /",
            "npm install $(whoami)",
            "npm install git+ssh://x",
            "npm install a`b`",
            long.as_str(),
        ] {
            assert_eq!(NpmInstall::parse(command), Err(NotAllowed), "{command}");
        }
        assert_eq!(NpmInstall::of(vec![]), Err(NotAllowed));
    }
}
