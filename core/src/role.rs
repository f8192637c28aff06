//! Roles within an org and what each may do. This is the single source of truth for
//! permissions; the Worker's `access` module applies it before any work (invariant 6).

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Role {
    Owner,
    Admin,
    Member,
    /// An agency's customer: may watch and read, never write.
    Client,
}

/// Something a caller wants to do within an org or one of its projects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ReadOrg,
    ReadProject,
    CreateProject,
    WriteProject,
    DeleteProject,
    ManageMembers,
    /// Start or cancel a generation (a member's right; a token needs its `generate` scope).
    Generate,
    /// Make, rotate and remove a project's webhooks.
    ManageHooks,
    /// See what the models cost (usage): members, not an agency's clients.
    ReadUsage,
    /// Put a version on the public web at the project's site, or take it down.
    Publish,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "owner" => Role::Owner,
            "admin" => Role::Admin,
            "member" => Role::Member,
            "client" => Role::Client,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Client => "client",
        }
    }

    pub fn allows(self, action: Action) -> bool {
        use Action::*;
        match action {
            ReadOrg | ReadProject => true,
            CreateProject | WriteProject | Generate | ReadUsage | Publish => self != Role::Client,
            DeleteProject | ManageMembers | ManageHooks => {
                matches!(self, Role::Owner | Role::Admin)
            }
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change to an org's membership list, as requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    Add { role: Role },
    SetRole { from: Role, to: Role },
    Remove { role: Role },
}

/// Why a membership change is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRuleError {
    /// The actor's role does not allow this change.
    Forbidden,
    /// The change would leave the org without an owner.
    LastOwner,
}

/// Decides whether `actor` may make `change` to another member (or, with `to_self`, to
/// themselves). `owners` is the org's current owner count.
///
/// Rules: owners and admins manage members; only an owner grants, changes or removes the
/// owner role; anyone may leave; an org always keeps at least one owner.
pub fn check_member_change(
    actor: Role,
    change: MemberChange,
    to_self: bool,
    owners: usize,
) -> Result<(), MemberRuleError> {
    let touches_owner = match change {
        MemberChange::Add { role } => role == Role::Owner,
        MemberChange::SetRole { from, to } => from == Role::Owner || to == Role::Owner,
        MemberChange::Remove { role } => role == Role::Owner,
    };
    let leaving = to_self && matches!(change, MemberChange::Remove { .. });
    if !leaving {
        if !actor.allows(Action::ManageMembers) {
            return Err(MemberRuleError::Forbidden);
        }
        if touches_owner && actor != Role::Owner {
            return Err(MemberRuleError::Forbidden);
        }
    }
    let loses_an_owner = match change {
        MemberChange::SetRole { from, to } => from == Role::Owner && to != Role::Owner,
        MemberChange::Remove { role } => role == Role::Owner,
        MemberChange::Add { .. } => false,
    };
    if loses_an_owner && owners <= 1 {
        return Err(MemberRuleError::LastOwner);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use MemberChange::*;
    use Role::*;

    #[test]
    fn permissions_by_role() {
        let table = [
            // role, read, create/write, delete/manage
            (Owner, true, true, true),
            (Admin, true, true, true),
            (Member, true, true, false),
            (Client, true, false, false),
        ];
        for (role, read, write, manage) in table {
            assert_eq!(role.allows(Action::ReadProject), read, "{role}");
            assert_eq!(role.allows(Action::ReadOrg), read, "{role}");
            assert_eq!(role.allows(Action::WriteProject), write, "{role}");
            assert_eq!(role.allows(Action::CreateProject), write, "{role}");
            assert_eq!(role.allows(Action::DeleteProject), manage, "{role}");
            assert_eq!(role.allows(Action::ManageMembers), manage, "{role}");
        }
    }

    #[test]
    fn role_strings_round_trip() {
        for r in [Owner, Admin, Member, Client] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(Role::parse("Owner"), None);
    }

    #[test]
    fn member_change_rules() {
        let f = Err(MemberRuleError::Forbidden);
        let last = Err(MemberRuleError::LastOwner);
        type Case = (Role, MemberChange, bool, usize, Result<(), MemberRuleError>);
        let cases: &[Case] = &[
            (Owner, Add { role: Member }, false, 1, Ok(())),
            (Owner, Add { role: Owner }, false, 1, Ok(())),
            (Admin, Add { role: Admin }, false, 1, Ok(())),
            (Admin, Add { role: Owner }, false, 1, f),
            (Member, Add { role: Client }, false, 1, f),
            (Client, Add { role: Client }, false, 1, f),
            (
                Admin,
                SetRole {
                    from: Member,
                    to: Client,
                },
                false,
                1,
                Ok(()),
            ),
            (
                Admin,
                SetRole {
                    from: Owner,
                    to: Member,
                },
                false,
                2,
                f,
            ),
            (
                Owner,
                SetRole {
                    from: Owner,
                    to: Admin,
                },
                false,
                2,
                Ok(()),
            ),
            (
                Owner,
                SetRole {
                    from: Owner,
                    to: Admin,
                },
                true,
                1,
                last,
            ),
            (Owner, Remove { role: Owner }, true, 1, last),
            (Owner, Remove { role: Owner }, false, 2, Ok(())),
            (Admin, Remove { role: Owner }, false, 2, f),
            (Member, Remove { role: Member }, true, 1, Ok(())),
            (Client, Remove { role: Client }, true, 1, Ok(())),
            (Member, Remove { role: Client }, false, 1, f),
            (
                Member,
                SetRole {
                    from: Member,
                    to: Admin,
                },
                true,
                1,
                f,
            ),
        ];
        for &(actor, change, to_self, owners, want) in cases {
            assert_eq!(
                check_member_change(actor, change, to_self, owners),
                want,
                "{actor} {change:?} self={to_self} owners={owners}"
            );
        }
    }
}
