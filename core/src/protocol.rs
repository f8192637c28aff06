//! The WebSocket wire protocol between browsers and a project's room: JSON, one object per
//! frame, tagged by `type`. Every server event carries a `seq` that only grows (invariant 2).

use serde::{Deserialize, Serialize};

/// client → room
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMsg {
    /// Sent on (re)connect: replay everything after `last_seq`.
    Hello {
        #[serde(default)]
        last_seq: u64,
    },
    GetState,
}

/// A room event as sent on the wire: `{"seq": N, "type": "…", …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sequenced {
    pub seq: u64,
    #[serde(flatten)]
    pub event: ServerEvent,
}

/// room → client
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    /// A full snapshot of the room; `head_seq` is the last event it reflects.
    State {
        project_id: String,
        head_seq: u64,
    },
    Error {
        code: String,
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_from_their_wire_form() {
        assert_eq!(
            serde_json::from_str::<ClientMsg>(r#"{"type":"hello","last_seq":42}"#).unwrap(),
            ClientMsg::Hello { last_seq: 42 }
        );
        assert_eq!(
            serde_json::from_str::<ClientMsg>(r#"{"type":"hello"}"#).unwrap(),
            ClientMsg::Hello { last_seq: 0 }
        );
        assert_eq!(
            serde_json::from_str::<ClientMsg>(r#"{"type":"get_state"}"#).unwrap(),
            ClientMsg::GetState
        );
    }

    #[test]
    fn malformed_client_messages_are_errors() {
        for bad in [
            "",
            "{}",
            r#"{"type":"launch_missiles"}"#,
            r#"{"type":"hello","last_seq":-1}"#,
            r#"{"type":"hello","last_seq":"7"}"#,
            r#"{"type":"hello","last_seq":1,"extra":true}"#,
        ] {
            assert!(serde_json::from_str::<ClientMsg>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_events_carry_seq_and_type_at_top_level() {
        let ev = Sequenced {
            seq: 7,
            event: ServerEvent::Error {
                code: "bad_frame".into(),
                message: "x".into(),
            },
        };
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"seq": 7, "type": "error", "code": "bad_frame", "message": "x"})
        );
        assert_eq!(serde_json::from_value::<Sequenced>(v).unwrap(), ev);
    }
}
