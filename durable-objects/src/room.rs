use kiln_core::protocol::ServerEvent;
use serde::Deserialize;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

#[durable_object]
pub struct ProjectRoom {
    state: State,
    #[allow(dead_code)]
    env: Env,
}

#[derive(Deserialize)]
struct HeadRow {
    head: i64,
}

impl DurableObject for ProjectRoom {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        // The event log; issue 3 fills it. Created eagerly so every room has the same schema.
        let _ = sql.exec(
            "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)",
            None,
        );
        ProjectRoom { state, env }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let path = req.path();
        let mut parts = path.trim_start_matches('/').splitn(2, '/');
        let project_id = parts.next().unwrap_or_default().to_owned();
        match (parts.next(), req.method()) {
            (Some("state"), worker::Method::Get) => {
                let head = self.head_seq()?;
                Response::from_json(&ServerEvent::State {
                    project_id,
                    head_seq: head,
                })
            }
            _ => Response::error("no such room route", 404),
        }
    }
}

impl ProjectRoom {
    fn head_seq(&self) -> Result<u64> {
        let rows: Vec<HeadRow> = self
            .state
            .storage()
            .sql()
            .exec("SELECT COALESCE(MAX(seq), 0) AS head FROM events", None)?
            .to_array()?;
        Ok(rows.first().map_or(0, |r| r.head.max(0) as u64))
    }
}
