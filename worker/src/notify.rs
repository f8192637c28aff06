//! The `kiln-notify` queue's consumer: delivers each job (one event to one target) as a
//! signed POST, logs the attempt, and on no 2xx queues the next attempt after
//! `core::notify::backoff_secs`, until `MAX_ATTEMPTS`. Re-queueing explicitly (rather than
//! the queue's own retry) keeps the attempt count and the delay Kiln's.

use kiln_core::api::NotifyAttempt;
use kiln_core::notify::{backoff_secs, check_destination, NotifyJob, MAX_ATTEMPTS};
use kiln_durable_objects::repo::Notifications;
use worker::{
    AbortController, Delay, Env, Fetch, Headers, Message, MessageBatch, MessageBuilder, MessageExt,
    Method, Request, RequestInit, Result,
};

/// How long a receiver may take to answer.
const TIMEOUT_MS: u64 = 10_000;

pub async fn consume(batch: MessageBatch<NotifyJob>, env: Env) -> Result<()> {
    let db = env.d1("DB")?;
    for message in batch.messages()? {
        if let Err(e) = deliver(&env, &db, &message).await {
            // A failure of Kiln's own (D1, the queue): the queue tries the job again.
            worker::console_error!("notification {}: {e}", message.body().event.id);
            message.retry();
            continue;
        }
        message.ack();
    }
    Ok(())
}

async fn deliver(env: &Env, db: &worker::D1Database, message: &Message<NotifyJob>) -> Result<()> {
    let job = message.body();
    let store = Notifications(db);
    // Deleted since it was queued: nothing more goes there.
    let Some(target) = store.get(&job.target_id).await? else {
        return Ok(());
    };
    let allow_private = env
        .var("KILN_NOTIFY_ALLOW_PRIVATE")
        .is_ok_and(|v| v.to_string() == "1");
    let now = worker::Date::now().as_millis() as i64;
    let (status, error) = match check_destination(&target.url, allow_private) {
        Err(why) => (None, Some(why)),
        Ok(()) => post(&target.url, &target.secret, job, now).await,
    };
    store
        .log(
            &target.id,
            &NotifyAttempt {
                event_id: job.event.id.clone(),
                event: job.event.event.clone(),
                attempt: job.attempt,
                status,
                error: error.clone(),
                at: now,
            },
        )
        .await?;
    let delivered = status.is_some_and(|s| (200..300).contains(&s));
    if !delivered && job.attempt < MAX_ATTEMPTS {
        let next = NotifyJob {
            attempt: job.attempt + 1,
            ..job.clone()
        };
        let delay = backoff_secs(next.attempt);
        env.queue("NOTIFY")?
            .send(MessageBuilder::new(next).delay_seconds(delay).build())
            .await?;
    }
    Ok(())
}

/// One signed POST; the status, or why there was none.
async fn post(url: &str, secret: &str, job: &NotifyJob, now: i64) -> (Option<u16>, Option<String>) {
    let body = match serde_json::to_vec(&job.event) {
        Ok(b) => b,
        Err(e) => return (None, Some(e.to_string())),
    };
    let headers = Headers::new();
    let signature = kiln_core::webhooks::sign(secret, now / 1000, &body);
    for (k, v) in [
        ("content-type", "application/json"),
        ("kiln-signature", signature.as_str()),
        ("kiln-delivery", job.event.id.as_str()),
        ("kiln-event", job.event.event.as_str()),
        ("user-agent", "Kiln-Notifications/1"),
    ] {
        if let Err(e) = headers.set(k, v) {
            return (None, Some(e.to_string()));
        }
    }
    let abort = AbortController::default();
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
    let req = match Request::new_with_init(url, &init) {
        Ok(r) => r,
        Err(e) => return (None, Some(e.to_string())),
    };
    let signal = abort.signal();
    let fetch = Fetch::Request(req);
    let call = fetch.send_with_signal(&signal);
    let timeout = Delay::from(std::time::Duration::from_millis(TIMEOUT_MS));
    futures::pin_mut!(call, timeout);
    match futures::future::select(call, timeout).await {
        futures::future::Either::Left((Ok(resp), _)) => {
            let s = resp.status_code();
            let err = (!(200..300).contains(&s)).then(|| format!("the receiver answered {s}"));
            (Some(s), err)
        }
        futures::future::Either::Left((Err(e), _)) => (None, Some(format!("no answer: {e}"))),
        futures::future::Either::Right(_) => {
            abort.abort();
            (
                None,
                Some(format!("no answer within {} s", TIMEOUT_MS / 1000)),
            )
        }
    }
}
