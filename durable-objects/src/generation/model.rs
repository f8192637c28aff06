//! Model calls: one request per call, its usage applied to the generation and logged
//! (`repo::AiCalls`, `model_call`); streamed file answers read by `pipeline::FileAnswer`.

use super::*;

/// A call whose answer is used whole (a plan, a tool call); abandoned on cancel.
pub(super) async fn ask(
    room: &ProjectRoom,
    project: &str,
    g: &mut Generation,
    llm: &LlmConfig,
    ask: Ask,
    messages: Vec<ChatMessage>,
) -> Result<std::result::Result<String, Outcome>> {
    let id = g.id.clone();
    call(room, project, g, llm, ask, messages, |_| {
        !cancelled(room, &id)
    })
    .await
}

/// One LLM call with its cost logged and applied to the totals; `Err(outcome)` when it
/// failed (with the server's `Retry-After`, if any).
pub(super) async fn call(
    room: &ProjectRoom,
    project: &str,
    g: &mut Generation,
    llm: &LlmConfig,
    ask: Ask,
    messages: Vec<ChatMessage>,
    on_text: impl FnMut(&str) -> bool,
) -> Result<std::result::Result<String, Outcome>> {
    let role = ask.role();
    let req = ask.request(llm.model(role, g.attempts), messages);
    let result = llm.stream(&req, on_text).await;
    let (usage, latency, error) = match &result {
        Ok(r) => (r.usage, r.latency_ms, None),
        Err(e) => (Default::default(), e.latency_ms, Some(e.reason.as_str())),
    };
    let cost = cost_micros(&req.model, usage);
    g.apply(Outcome::ModelCalled {
        usage,
        cost_micros: cost,
    });
    let db = room.env().d1("DB")?;
    AiCalls(&db)
        .log(&AiCall {
            project,
            generation: &g.id,
            role: role.as_str(),
            model: &req.model,
            usage,
            cost_micros: cost,
            latency_ms: latency,
            error,
            created_at: now(),
        })
        .await?;
    room.broadcast(ServerEvent::ModelCall {
        generation_id: g.id.clone(),
        role: role.as_str().into(),
        step: g.step.name().into(),
        phase: g.phase,
        model: req.model.clone(),
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        cost_micros: cost,
        latency_ms: latency,
        ok: error.is_none(),
    })?;
    match result {
        Ok(r) => Ok(Ok(r.text)),
        Err(CallError {
            reason,
            retryable,
            retry_after_secs,
            ..
        }) => Ok(Err(Outcome::StepFailed {
            reason,
            retryable,
            retry_after_secs,
        })),
    }
}

/// Streams a call whose answer is file blocks (`pipeline::FileAnswer` reads it): every file
/// is broadcast as it is written and stored whole when the answer is over. A stream that
/// fails leaves no half file behind; one that loops is stopped, keeping the files closed
/// before the loop.
pub(super) async fn stream_files(
    room: &ProjectRoom,
    project: &str,
    g: &mut Generation,
    llm: &LlmConfig,
    ask: Ask,
    messages: Vec<ChatMessage>,
) -> Result<std::result::Result<Applied, Outcome>> {
    let mut file_answer = FileAnswer::new();
    let mut failure: Option<String> = None;
    let id = g.id.clone();
    let answer = call(room, project, g, llm, ask, messages, |text| {
        if failure.is_some() || cancelled(room, &id) {
            return false;
        }
        let fed = file_answer.feed(text);
        for ev in &fed.events {
            if let Err(e) = live(room, ev) {
                failure = Some(e.to_string());
            }
        }
        !fed.stop
    })
    .await?;
    if file_answer.looped() && !cancelled(room, &g.id) {
        room.broadcast(ServerEvent::CommandOutput {
            command: ask.role().as_str().into(),
            output: "the model began repeating itself: stopped it there".into(),
        })?;
    } else if let Err(o) = answer {
        return Ok(Err(o));
    }
    if let Some(f) = failure {
        return Ok(Err(Outcome::failed(f, true)));
    }
    match file_answer.finish() {
        Ok(events) => Ok(Ok(pipeline::apply_answer(&mut AgentTree(room), events)?)),
        // An unclosed block: the answer was cut off. Retry the step.
        Err(cut) => Ok(Err(Outcome::failed(cut, true))),
    }
}
