//! Personal API tokens, for scripts and CI: what one may do (scopes, an org or a project it is
//! restricted to) and the rules for making one. A token never does more than its scopes allow
//! nor more than its owner's current role does; it is shown once and stored as a sha256.

use serde::{Deserialize, Serialize};

use crate::ids::{OrgId, ProjectId};
use crate::role::Action;

/// Every personal token starts so, so a leaked one is recognisable (and never a session JWT).
pub const PREFIX: &str = "kiln_pat_";
pub const MAX_DAYS: u32 = 365;
const MAX_NAME: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Scope {
    /// Read orgs, projects, files, versions; watch a room.
    Read,
    /// Change files and projects (includes nothing of `generate`).
    Write,
    /// Start and cancel generations.
    Generate,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Generate => "generate",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "generate" => Some(Scope::Generate),
            _ => None,
        }
    }

    /// The scope an action needs.
    pub fn for_action(action: Action) -> Scope {
        match action {
            Action::ReadOrg | Action::ReadProject | Action::ReadUsage => Scope::Read,
            Action::Generate => Scope::Generate,
            Action::CreateProject
            | Action::WriteProject
            | Action::DeleteProject
            | Action::ManageMembers
            | Action::ManageHooks
            | Action::Publish => Scope::Write,
        }
    }
}

/// What a token may reach and do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub scopes: Vec<Scope>,
    pub org: Option<OrgId>,
    pub project: Option<ProjectId>,
}

impl Grant {
    pub fn allows(&self, action: Action) -> bool {
        self.scopes.contains(&Scope::for_action(action))
    }

    /// Whether the token may see this project at all (restricted tokens see nothing else,
    /// and are told "not found", as for any project one is not a member of).
    pub fn reaches_project(&self, org: &OrgId, project: &ProjectId) -> bool {
        self.project.as_ref().is_none_or(|p| p == project)
            && self.org.as_ref().is_none_or(|o| o == org)
    }

    pub fn reaches_org(&self, org: &OrgId) -> bool {
        self.project.is_none() && self.org.as_ref().is_none_or(|o| o == org)
    }
}

/// Scopes as stored: sorted, unique, comma-separated.
pub fn scopes_to_string(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub fn scopes_from_string(s: &str) -> Vec<Scope> {
    let mut v: Vec<Scope> = s.split(',').filter_map(Scope::parse).collect();
    v.sort();
    v.dedup();
    v
}

/// A request for a new token, checked. `Err((field, message))` names what is wrong.
pub fn validate(
    name: &str,
    scopes: &[Scope],
    expires_in_days: Option<u32>,
) -> Result<(String, Vec<Scope>), (&'static str, String)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(("name", format!("must be 1 to {MAX_NAME} characters")));
    }
    if scopes.is_empty() {
        return Err((
            "scopes",
            "name at least one of read, write, generate".into(),
        ));
    }
    if let Some(d) = expires_in_days {
        if d == 0 || d > MAX_DAYS {
            return Err((
                "expires_in_days",
                format!("must be 1 to {MAX_DAYS} days (or left out)"),
            ));
        }
    }
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    Ok((name.to_owned(), scopes))
}

/// The token's text, from 32 random bytes supplied by the caller (core has no RNG).
pub fn format_token(secret: [u8; 32]) -> String {
    let mut s = String::from(PREFIX);
    for b in secret {
        s += &format!("{b:02x}");
    }
    s
}

/// Whether a bearer value is shaped like a personal token (then it is looked up by hash).
pub fn looks_like_token(s: &str) -> bool {
    s.strip_prefix(PREFIX)
        .is_some_and(|r| r.len() == 64 && r.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(n: u8) -> OrgId {
        OrgId::from_random([n; 16])
    }

    fn project(n: u8) -> ProjectId {
        ProjectId::from_random([n; 16])
    }

    #[test]
    fn scopes_map_actions() {
        let read = Grant {
            scopes: vec![Scope::Read],
            org: None,
            project: None,
        };
        assert!(read.allows(Action::ReadProject) && read.allows(Action::ReadOrg));
        for a in [
            Action::WriteProject,
            Action::CreateProject,
            Action::DeleteProject,
            Action::ManageMembers,
            Action::Generate,
        ] {
            assert!(!read.allows(a), "{a:?}");
        }
        let write = Grant {
            scopes: vec![Scope::Read, Scope::Write],
            ..read.clone()
        };
        assert!(write.allows(Action::WriteProject) && !write.allows(Action::Generate));
        let generate = Grant {
            scopes: vec![Scope::Generate],
            ..read
        };
        assert!(generate.allows(Action::Generate) && !generate.allows(Action::ReadProject));
    }

    #[test]
    fn restrictions_narrow_what_a_token_reaches() {
        let g = Grant {
            scopes: vec![Scope::Read],
            org: Some(org(1)),
            project: None,
        };
        assert!(g.reaches_org(&org(1)) && !g.reaches_org(&org(2)));
        assert!(g.reaches_project(&org(1), &project(9)));
        assert!(!g.reaches_project(&org(2), &project(9)));
        let p = Grant {
            project: Some(project(3)),
            ..g
        };
        assert!(p.reaches_project(&org(1), &project(3)));
        assert!(!p.reaches_project(&org(1), &project(4)));
        assert!(!p.reaches_org(&org(1)), "a project token lists no org");
    }

    #[test]
    fn requests_are_validated() {
        assert_eq!(
            validate(
                "  CI ",
                &[Scope::Write, Scope::Read, Scope::Write],
                Some(30)
            ),
            Ok(("CI".into(), vec![Scope::Read, Scope::Write]))
        );
        assert_eq!(validate(" ", &[Scope::Read], None).unwrap_err().0, "name");
        assert_eq!(validate("x", &[], None).unwrap_err().0, "scopes");
        assert_eq!(
            validate("x", &[Scope::Read], Some(0)).unwrap_err().0,
            "expires_in_days"
        );
        assert_eq!(
            validate("x", &[Scope::Read], Some(366)).unwrap_err().0,
            "expires_in_days"
        );
        assert_eq!(
            scopes_from_string(&scopes_to_string(&[Scope::Generate, Scope::Read])),
            vec![Scope::Read, Scope::Generate]
        );
        assert_eq!(scopes_from_string("read,bogus,read"), vec![Scope::Read]);
    }

    #[test]
    fn tokens_have_a_recognisable_shape() {
        let t = format_token([0xab; 32]);
        assert!(t.starts_with("kiln_pat_") && t.len() == 9 + 64);
        assert!(looks_like_token(&t));
        assert!(!looks_like_token("kiln_pat_short"));
        assert!(!looks_like_token("eyJhbGciOiJIUzI1NiJ9.x.y"));
    }
}
