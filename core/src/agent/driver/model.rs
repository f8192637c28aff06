//! Model calls: one request per call, its usage applied to the generation and logged (the
//! host's cost log, a `model_call` event); streamed file answers read by
//! `pipeline::FileAnswer`.

use super::tree::AgentTree;
use super::*;
use crate::agent::file_stream::StreamEvent;
use crate::agent::llm::{cost_micros, ChatMessage};
use crate::agent::pipeline::{self, Applied, FileAnswer};
use crate::agent::roles::Ask;

/// A call whose answer is used whole (a plan, a tool call); abandoned on cancel.
pub(super) async fn ask<H: Host>(
    host: &H,
    g: &mut Generation,
    ask: Ask,
    messages: Vec<ChatMessage>,
) -> HostResult<Result<String, Outcome>> {
    let id = g.id.clone();
    call(host, g, ask, messages, &mut |_| !host.cancelled(&id)).await
}

/// One model call with its cost logged and applied to the totals; `Err(outcome)` when it
/// failed (with the server's `Retry-After`, if any).
async fn call<H: Host>(
    host: &H,
    g: &mut Generation,
    ask: Ask,
    messages: Vec<ChatMessage>,
    on_text: &mut dyn FnMut(&str) -> bool,
) -> HostResult<Result<String, Outcome>> {
    let role = ask.role();
    let model = host
        .model(role, g.attempts)
        .ok_or("no model configured (KILN_LLM_BASE_URL)")?;
    // A priced model's call is paid for from the org's credit: with none left the
    // generation stops here, before the call, and for good.
    if crate::credits::needs_credit(&model) {
        if let Some(0) = host.credit_left().await? {
            return Ok(Err(Outcome::failed(
                crate::credits::spent_message(0),
                false,
            )));
        }
    }
    // A fix round after a fix round: the first answer did not do it, and a small model asked
    // the same again at the same temperature copied its file back unchanged (recorded,
    // 2231c80: three rounds, three copies). Each later round runs warmer.
    let warmth = g.attempts + if ask == Ask::Fix { g.fix_round } else { 0 };
    let mut req = ask.request(model, messages, warmth);
    let small = super::profile(host) == crate::agent::profile::Profile::Small;
    if small {
        req.max_tokens = req
            .max_tokens
            .min(crate::agent::profile::SMALL_ANSWER_TOKENS);
    }
    let result = host.stream(&req, on_text).await;
    let (usage, latency, error) = match &result {
        Ok(r) => (r.usage, r.latency_ms, None),
        Err(e) => (Usage::default(), e.latency_ms, Some(e.reason.as_str())),
    };
    let cost = cost_micros(&req.model, usage);
    g.apply(Outcome::ModelCalled {
        usage,
        cost_micros: cost,
    });
    host.log_call(&CallRecord {
        generation: &g.id,
        role,
        model: &req.model,
        usage,
        cost_micros: cost,
        latency_ms: latency,
        error,
    })
    .await?;
    host.broadcast(ServerEvent::ModelCall {
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
    Ok(match result {
        Ok(r) => Ok(r.text),
        Err(e) => Err(Outcome::StepFailed {
            reason: e.reason,
            retryable: e.retryable,
            retry_after_secs: e.retry_after_secs,
        }),
    })
}

/// Streams a call whose answer is file blocks (`pipeline::FileAnswer` reads it): every file
/// is broadcast as it is written and stored whole when the answer is over. A stream that
/// fails leaves no half file behind; one that loops is stopped, keeping the files closed
/// before the loop.
pub(super) async fn stream_files<H: Host>(
    host: &H,
    g: &mut Generation,
    ask: Ask,
    messages: Vec<ChatMessage>,
) -> HostResult<Result<Applied, Outcome>> {
    let mut file_answer = if super::profile(host) == crate::agent::profile::Profile::Small {
        FileAnswer::ending_with_the_app()
    } else {
        FileAnswer::new()
    };
    let mut failure: Option<String> = None;
    let id = g.id.clone();
    let react = g.template == Template::ReactVite;
    let answer = call(host, g, ask, messages, &mut |text| {
        if failure.is_some() || host.cancelled(&id) {
            return false;
        }
        let fed = file_answer.feed(text);
        for ev in &fed.events {
            // A script that will be written under another path (`jsx_path`) is not ended
            // under this one: browsers drop it as abandoned and see the real file written.
            if let StreamEvent::FileEnd { path, content } = ev {
                if react && pipeline::jsx_path(path, content).is_some() {
                    continue;
                }
            }
            if let Some(event) = super::tree::live(ev) {
                if let Err(e) = host.broadcast(event) {
                    failure = Some(e);
                }
            }
        }
        !fed.stop
    })
    .await?;
    if file_answer.looped() && !host.cancelled(&g.id) {
        host.broadcast(ServerEvent::CommandOutput {
            command: ask.role().as_str().into(),
            output: "the model began repeating itself: stopped it there".into(),
        })?;
    } else if file_answer.ended_at().is_some() && !host.cancelled(&g.id) {
        // Stopped by Kiln once the app was written: the call did what was asked.
    } else if let Err(o) = answer {
        return Ok(Err(o));
    }
    if let Some(f) = failure {
        return Ok(Err(Outcome::failed(f, true)));
    }
    match file_answer.finish() {
        Ok(mut events) => {
            if react {
                for ev in events.iter_mut() {
                    if let StreamEvent::FileEnd { path, content } = ev {
                        if let Some(new) = pipeline::jsx_path(path, content) {
                            host.broadcast(ServerEvent::CommandOutput {
                                command: "autofix".into(),
                                output: format!(
                                    "{path} holds JSX: written as {new}, which Vite can transform"
                                ),
                            })?;
                            *path = new;
                        }
                    }
                }
            }
            Ok(Ok(pipeline::apply_answer(
                &mut AgentTree::new(host),
                events,
            )?))
        }
        // An unclosed block: the answer was cut off. Retry the step.
        Err(cut) => Ok(Err(Outcome::failed(cut, true))),
    }
}
