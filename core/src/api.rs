//! REST request and response bodies. Request types deny unknown fields, so a typo in a field
//! name is a 400 that names it rather than a silently ignored value.

use crate::diff::FileDiff;
use crate::ids::{OrgId, ProjectId, SessionId, UserId};
use crate::role::Role;
use crate::sandbox::Template;
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AuthResponse {
    pub user: User,
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MeResponse {
    pub user: User,
    pub orgs: Vec<Org>,
}

/// The private claims of a session token; `exp` and `iat` are standard claims next to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    pub sub: UserId,
    pub jti: SessionId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    /// True for the org every user gets at registration.
    pub personal: bool,
    /// The caller's role in this org.
    pub role: Role,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CreateOrg {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Member {
    pub user_id: UserId,
    pub email: String,
    pub role: Role,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AddMember {
    pub email: String,
    pub role: Role,
}

/// An invitation to an org. The inviter sees the same shape whether or not the email has an
/// account; the invitee sees theirs with the org's name and who invited them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Invitation {
    pub id: String,
    pub org_id: OrgId,
    pub org_name: String,
    pub email: String,
    pub role: Role,
    pub invited_by: String,
    pub status: InvitationStatus,
    pub created_at: Millis,
    pub expires_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Declined,
    Revoked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct UpdateMember {
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Project {
    pub id: ProjectId,
    pub org_id: OrgId,
    pub name: String,
    pub description: Option<String>,
    pub created_by: UserId,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// The caller's role in the project's org.
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CreateProject {
    pub name: String,
    /// Defaults to the caller's personal org.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub org: Option<OrgId>,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub description: Option<String>,
}

/// `PATCH /api/projects/:id`: absent fields are left alone; `"description": null` clears it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct UpdateProject {
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub name: Option<String>,
    #[serde(default, with = "double_option")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Option<String>>", optional))]
    pub description: Option<Option<String>>,
}

/// One page of a newest-first list. `next_cursor` is absent on the last page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A whole list: `{"items": […]}` (orgs, members, invitations, versions, files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// One file of a version: `GET /api/projects/:id/versions/:n/files` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct VersionFile {
    pub path: crate::path::ProjectPath,
    pub sha256: String,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub size: u64,
}

/// `POST /api/orgs/:org/members` → 201.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct InvitationSent {
    pub invitation: Invitation,
}

/// `POST /api/invitations/:id/accept` → 200: the invitation and the org just joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct InvitationAccepted {
    pub invitation: Invitation,
    pub org: Org,
}

/// `POST /api/projects/:id/ws-ticket` → 201: a single-use `?ticket=` for the WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WsTicket {
    pub ticket: String,
    /// Seconds.
    pub expires_in: i64,
}

/// `POST /api/projects/:id/preview-link` → 201: a single-use link on the preview host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PreviewLink {
    pub url: String,
    /// Seconds.
    pub expires_in: i64,
}

/// `POST /api/projects/:id/versions`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CreateVersion {
    /// Defaults to "Snapshot".
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub message: Option<String>,
}

/// `GET /api/projects/:id/versions/:a/diff/:b`: the files that differ from `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct VersionDiff {
    pub from: u64,
    pub to: u64,
    pub files: Vec<FileDiff>,
}

/// `POST /api/projects/:id/generate` (the Worker forwards it to the room as it is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct StartGeneration {
    pub prompt: String,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub template: Option<Template>,
}

/// `POST /api/projects/:id/generate` → 202.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct GenerationStarted {
    pub generation_id: String,
}

/// Position in a newest-first list: the last item's `(created_at, id)`. Encoded opaquely
/// by the Worker; parsed back here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: Millis,
    pub id: String,
}

impl Cursor {
    pub fn encode_plain(&self) -> String {
        format!("{}.{}", self.created_at, self.id)
    }

    pub fn decode_plain(s: &str) -> Option<Cursor> {
        let (ts, id) = s.split_once('.')?;
        let created_at = ts.parse().ok()?;
        let ok_id = !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        ok_id.then(|| Cursor {
            created_at,
            id: id.to_owned(),
        })
    }
}

mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Option<String>>, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_project_distinguishes_absent_from_null() {
        let absent: UpdateProject = serde_json::from_str("{}").unwrap();
        assert_eq!(absent.description, None);
        let null: UpdateProject = serde_json::from_str(r#"{"description":null}"#).unwrap();
        assert_eq!(null.description, Some(None));
        let set: UpdateProject = serde_json::from_str(r#"{"description":"x"}"#).unwrap();
        assert_eq!(set.description, Some(Some("x".into())));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<CreateProject>(r#"{"name":"a","nmae":"b"}"#).unwrap_err();
        assert!(err.to_string().contains("nmae"), "{err}");
    }

    #[test]
    fn wrong_types_are_refused() {
        assert!(serde_json::from_str::<Credentials>(r#"{"email":5,"password":"x"}"#).is_err());
        assert!(serde_json::from_str::<AddMember>(r#"{"email":"a@b.c","role":"root"}"#).is_err());
        assert!(serde_json::from_str::<CreateProject>(r#"{"name":"a","org":"o_bad"}"#).is_err());
    }

    #[test]
    fn small_answers_have_their_documented_shape() {
        use serde_json::{json, to_value};
        let link = PreviewLink {
            url: "http://p-1.preview.localhost/".into(),
            expires_in: 120,
        };
        assert_eq!(
            to_value(link).unwrap(),
            json!({"url": "http://p-1.preview.localhost/", "expires_in": 120})
        );
        let ticket = WsTicket {
            ticket: "t_1".into(),
            expires_in: 60,
        };
        assert_eq!(
            to_value(ticket).unwrap(),
            json!({"ticket": "t_1", "expires_in": 60})
        );
        assert_eq!(
            to_value(Items { items: vec![1, 2] }).unwrap(),
            json!({"items": [1, 2]})
        );
        let started = GenerationStarted {
            generation_id: "g_1".into(),
        };
        assert_eq!(to_value(started).unwrap(), json!({"generation_id": "g_1"}));
        let diff = VersionDiff {
            from: 1,
            to: 2,
            files: vec![],
        };
        assert_eq!(
            to_value(diff).unwrap(),
            json!({"from": 1, "to": 2, "files": []})
        );
        let start: StartGeneration = serde_json::from_str(r#"{"prompt":"a todo app"}"#).unwrap();
        assert_eq!(start.template, None);
        assert!(serde_json::from_str::<StartGeneration>(r#"{"prompt":"x","promt":"y"}"#).is_err());
        let version: CreateVersion = serde_json::from_str("{}").unwrap();
        assert_eq!(version.message, None);
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor {
            created_at: 1_700_000_000_123,
            id: "p_0123456789abcdef0123456789abcdef".into(),
        };
        assert_eq!(Cursor::decode_plain(&c.encode_plain()), Some(c));
        for bad in ["", "x.p_1", "12", "12.", "12.p_1' OR '1'='1"] {
            assert_eq!(Cursor::decode_plain(bad), None, "{bad:?}");
        }
    }
}

/// `POST /api/tokens`: a personal token for scripts and CI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CreateToken {
    pub name: String,
    pub scopes: Vec<crate::tokens::Scope>,
    /// Restrict it to one org (its projects) …
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub org: Option<OrgId>,
    /// … or to one project.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub project: Option<ProjectId>,
    /// Days until it stops working (1 to 365); none: until revoked.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub expires_in_days: Option<u32>,
}

/// A personal token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub scopes: Vec<crate::tokens::Scope>,
    pub org_id: Option<OrgId>,
    pub project_id: Option<ProjectId>,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
}

/// `POST /api/tokens` → 201: the token, shown this once, and what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TokenCreated {
    pub token: String,
    #[serde(flatten)]
    pub info: TokenInfo,
}

/// `POST /api/projects/:id/webhooks`: an endpoint that starts generations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CreateWebhook {
    /// The prompt, with payload fields by JSON pointer: `Fix: {{/issue/title}}`.
    pub prompt_template: String,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub kind: Option<crate::webhooks::HookKind>,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub filters: Option<crate::webhooks::HookFilters>,
    /// The template of an app the hook builds from scratch (default: react-vite).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub template: Option<Template>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WebhookInfo {
    pub id: String,
    pub project_id: ProjectId,
    pub kind: crate::webhooks::HookKind,
    pub prompt_template: String,
    pub filters: crate::webhooks::HookFilters,
    pub template: Option<Template>,
    /// Where the sender posts: `POST /hooks/<id>` on Kiln's host.
    pub url: String,
    pub created_at: Millis,
    /// While a rotated-out secret still verifies.
    pub previous_valid_until: Option<Millis>,
}

/// 201 from `POST …/webhooks`: the secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WebhookCreated {
    pub secret: String,
    #[serde(flatten)]
    pub info: WebhookInfo,
}

/// `POST …/webhooks/:hook/rotate`: the new secret; the old one verifies until the date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WebhookSecret {
    pub secret: String,
    pub previous_valid_until: Millis,
}

/// One delivery in a hook's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Delivery {
    pub delivery_id: String,
    pub received_at: Millis,
    pub status: u16,
    pub generation_id: Option<String>,
    pub error: Option<String>,
}

/// 202 from `POST /hooks/:id` (200 for a delivery seen before, or one the filters skip).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct HookAccepted {
    pub delivery_id: String,
    pub generation_id: Option<String>,
    /// The same delivery id came before: nothing new was started.
    pub duplicate: bool,
    /// The hook's filters passed it over.
    pub skipped: bool,
}

/// `GET /api/orgs/:org/credits`: what the org may still spend on priced models, and the
/// ledger's latest entries (newest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Credits {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub balance_micros: u64,
    pub entries: Vec<CreditEntry>,
}

/// One grant or debit, as applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CreditEntry {
    /// `grant` or `debit`.
    pub kind: String,
    /// Positive for a grant, zero or negative for a debit.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub amount_micros: i64,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub generation_id: Option<String>,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub created_at: i64,
}

/// `POST /api/orgs/:org/credits` (the operator's, with `KILN_ADMIN_TOKEN`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct GrantCredits {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub amount_micros: u64,
    pub reason: String,
}

impl GrantCredits {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.amount_micros == 0 || self.amount_micros > crate::credits::MAX_GRANT_MICROS {
            return Err((
                "amount_micros",
                format!(
                    "must be 1 to {} micro-dollars",
                    crate::credits::MAX_GRANT_MICROS
                ),
            ));
        }
        let reason = self.reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Err(("reason", "must be 1 to 200 characters".into()));
        }
        Ok(())
    }
}

/// `POST /api/projects/:id/notifications`: a URL that receives the project's generation
/// events, signed (`Kiln-Signature`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CreateNotifyTarget {
    pub url: String,
    /// Default: both `generation.completed` and `generation.failed`.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub events: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct NotifyTarget {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: Millis,
}

/// 201 from `POST …/notifications`: the signing secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct NotifyTargetCreated {
    pub secret: String,
    #[serde(flatten)]
    pub target: NotifyTarget,
}

/// One attempt in a target's log (`GET …/notifications/:id/attempts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct NotifyAttempt {
    pub event_id: String,
    pub event: String,
    pub attempt: u32,
    /// The receiver's status; `None` when it did not answer.
    pub status: Option<u16>,
    pub error: Option<String>,
    pub at: Millis,
}
