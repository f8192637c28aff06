import { useEffect, useState } from 'preact/hooks'
import type {
  Delivery,
  HookKind,
  NotifyAttempt,
  NotifyTarget,
  NotifyTargetCreated,
  Project,
  WebhookCreated,
  WebhookInfo,
  WebhookSecret,
} from '../gen'
import { api, errorText } from '../api'
import { ErrorLine, Listed, SecretOnce, Table } from './Listing'
import { go } from '../router'

const when = (ms: number | null | undefined) => (ms ? new Date(ms).toLocaleString() : '—')

/** A project's webhooks: signed POSTs from other systems that start generations. */
export function Webhooks({ projectId }: { projectId: string }) {
  const [project, setProject] = useState<Project | null>(null)
  const [hooks, setHooks] = useState<WebhookInfo[] | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [secret, setSecret] = useState<{ hook: string; secret: string } | null>(null)
  const [template, setTemplate] = useState('Add this feature: {{/title}}\n\n{{/body}}')
  const [kind, setKind] = useState<HookKind>('kiln')
  const [event, setEvent] = useState('')
  const [open, setOpen] = useState<string | null>(null)
  const base = `/api/projects/${projectId}/webhooks`
  const fail = (e: unknown) => setError(errorText(e))
  const load = () => api.get<{ items: WebhookInfo[] }>(base).then((r) => setHooks(r.items), fail)
  useEffect(() => {
    api.get<Project>(`/api/projects/${projectId}`).then(setProject, fail)
    load()
  }, [projectId])

  const create = async (e: Event) => {
    e.preventDefault()
    setError(null)
    try {
      const body: Record<string, unknown> = { prompt_template: template, kind }
      if (event.trim()) body.filters = { event: event.trim() }
      const made = await api.post<WebhookCreated>(base, body)
      setSecret({ hook: made.id, secret: made.secret })
      await load()
    } catch (err) {
      fail(err)
    }
  }
  const rotate = async (h: WebhookInfo) => {
    try {
      const s = await api.post<WebhookSecret>(`${base}/${h.id}/rotate`, {})
      setSecret({ hook: h.id, secret: s.secret })
      await load()
    } catch (err) {
      fail(err)
    }
  }
  const remove = async (h: WebhookInfo) => {
    if (!confirm('Remove this webhook? Deliveries to it will be refused.')) return
    try {
      await api.del(`${base}/${h.id}`)
      await load()
    } catch (err) {
      fail(err)
    }
  }

  return (
    <main class="dashboard">
      <div class="row">
        <h1>Webhooks{project ? ` — ${project.name}` : ''}</h1>
        <span class="spacer" />
        <a href={`/projects/${projectId}`} onClick={(e) => (e.preventDefault(), go(`/projects/${projectId}`))}>
          Back to the project
        </a>
      </div>
      <ErrorLine error={error} />
      <section class="card" aria-labelledby="hook-new">
        <h2 id="hook-new">New webhook</h2>
        <p class="muted small">
          Another system POSTs JSON to the webhook's URL, signed with its secret; Kiln turns it into a prompt (fields by JSON pointer, like{' '}
          <code>{'{{/issue/title}}'}</code>) and starts a generation.
        </p>
        <form onSubmit={create} class="token-form">
          <label>
            Prompt template
            <textarea rows={3} value={template} onInput={(e) => setTemplate(e.currentTarget.value)} />
          </label>
          <label>
            Sender
            <select value={kind} onChange={(e) => setKind(e.currentTarget.value as HookKind)}>
              <option value="kiln">Kiln signature (Kiln-Signature, Kiln-Delivery)</option>
              <option value="github">GitHub (X-Hub-Signature-256, X-GitHub-Delivery)</option>
            </select>
          </label>
          <label>
            Only this event (optional)
            <input value={event} placeholder={kind === 'github' ? 'issues' : 'deploy'} onInput={(e) => setEvent(e.currentTarget.value)} />
          </label>
          <button type="submit" class="primary" disabled={!template.trim()}>
            Create webhook
          </button>
        </form>
        {secret && (
          <SecretOnce label="Webhook secret" secret={secret.secret}>
            The webhook's secret: copy it now — it is not shown again.
          </SecretOnce>
        )}
      </section>
      <section aria-labelledby="hooks-title">
        <h2 id="hooks-title">This project's webhooks</h2>
        <Listed items={hooks} loading="Loading webhooks…" empty="No webhooks yet.">
          {(hooks) => (
            <ul class="projects">
              {hooks.map((h) => (
                <li class="project hook">
                  <div class="hook-main">
                    <code class="small">{h.url}</code>
                    <div class="muted small">
                      {h.kind} · made {when(h.created_at)}
                      {h.filters.event && ` · only “${h.filters.event}”`}
                      {h.previous_valid_until && h.previous_valid_until > Date.now() && ` · the previous secret works until ${when(h.previous_valid_until)}`}
                    </div>
                    <pre class="small">{h.prompt_template}</pre>
                  </div>
                  <button type="button" class="small" onClick={() => setOpen(open === h.id ? null : h.id)} aria-expanded={open === h.id}>
                    Deliveries
                  </button>
                  <button type="button" class="small" onClick={() => rotate(h)}>
                    Rotate secret
                  </button>
                  <button type="button" class="ghost small danger" onClick={() => remove(h)} aria-label="Remove webhook">
                    Remove
                  </button>
                  {open === h.id && <HookLog base={`${base}/${h.id}`} />}
                </li>
              ))}
            </ul>
          )}
        </Listed>
      </section>
      <Notifications projectId={projectId} />
    </main>
  )
}

/** Where Kiln posts this project's generation results: signed like webhooks, retried. */
function Notifications({ projectId }: { projectId: string }) {
  const base = `/api/projects/${projectId}/notifications`
  const [targets, setTargets] = useState<NotifyTarget[] | null>(null)
  const [url, setUrl] = useState('')
  const [failedToo, setFailedToo] = useState(true)
  const [made, setMade] = useState<NotifyTargetCreated | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [open, setOpen] = useState<string | null>(null)
  const fail = (e: unknown) => setError(errorText(e))
  const load = () => api.get<{ items: NotifyTarget[] }>(base).then((r) => setTargets(r.items), fail)
  useEffect(() => {
    load()
  }, [base])
  const create = async (e: Event) => {
    e.preventDefault()
    setError(null)
    try {
      const events = failedToo ? ['generation.completed', 'generation.failed'] : ['generation.completed']
      setMade(await api.post<NotifyTargetCreated>(base, { url: url.trim(), events }))
      setUrl('')
      await load()
    } catch (err) {
      fail(err)
    }
  }
  const remove = async (t: NotifyTarget) => {
    if (!confirm('Stop sending notifications to this URL?')) return
    try {
      await api.del(`${base}/${t.id}`)
      await load()
    } catch (err) {
      fail(err)
    }
  }
  return (
    <section class="card" aria-labelledby="notify-title">
      <h2 id="notify-title">Notifications</h2>
      <p class="muted small">
        When a generation completes (or fails), Kiln POSTs it here as JSON with its version and preview URL, signed with the target's secret
        (<code>Kiln-Signature</code>), and tries again with growing waits until the URL answers 2xx.
      </p>
      <form onSubmit={create} class="token-form">
        <label>
          URL (public)
          <input type="url" value={url} placeholder="https://ci.example.com/kiln" onInput={(e) => setUrl(e.currentTarget.value)} required />
        </label>
        <label class="inline">
          <input type="checkbox" checked={failedToo} onChange={() => setFailedToo(!failedToo)} /> failed generations too
        </label>
        <button type="submit" disabled={!url.trim()}>
          Add notification URL
        </button>
      </form>
      <ErrorLine error={error} />
      {made && (
        <SecretOnce label="Notification secret" secret={made.secret}>
          Its signing secret: copy it now — it is not shown again.
        </SecretOnce>
      )}
      <Listed items={targets} loading="Loading notification URLs…" empty="No notification URLs yet.">
        {(targets) => (
          <ul class="projects">
            {targets.map((t) => (
              <li class="project hook">
                <div class="hook-main">
                  <code class="small">{t.url}</code>
                  <div class="muted small">
                    {t.events.join(', ')} · added {when(t.created_at)}
                  </div>
                </div>
                <button type="button" class="small" onClick={() => setOpen(open === t.id ? null : t.id)} aria-expanded={open === t.id}>
                  Attempts
                </button>
                <button type="button" class="ghost small danger" onClick={() => remove(t)} aria-label="Remove notification URL">
                  Remove
                </button>
                {open === t.id && <Attempts url={`${base}/${t.id}/attempts`} />}
              </li>
            ))}
          </ul>
        )}
      </Listed>
    </section>
  )
}

function Attempts({ url }: { url: string }) {
  const [items, setItems] = useState<NotifyAttempt[] | null>(null)
  useEffect(() => {
    api.get<{ items: NotifyAttempt[] }>(url).then((r) => setItems(r.items))
  }, [url])
  return (
    <Listed items={items} loading="Loading attempts…" empty="Nothing sent yet.">
      {(items) => (
        <Table
          head={['When', 'Event', 'Attempt', 'Answer']}
          rows={items}
          row={(a) => (
            <tr>
              <td>{when(a.at)}</td>
              <td>{a.event}</td>
              <td>{a.attempt}</td>
              <td>
                {a.status ?? 'none'}
                {a.error ? ` — ${a.error}` : ''}
              </td>
            </tr>
          )}
        />
      )}
    </Listed>
  )
}

/** A hook's delivery log, and a test delivery of a payload one writes here. */
function HookLog({ base }: { base: string }) {
  const [items, setItems] = useState<Delivery[] | null>(null)
  const [payload, setPayload] = useState('{"title": "a dark mode", "body": "switchable from the header"}')
  const [note, setNote] = useState<string | null>(null)
  const load = () => api.get<{ items: Delivery[] }>(`${base}/deliveries`).then((r) => setItems(r.items))
  useEffect(() => {
    load()
  }, [base])
  const test = async (e: Event) => {
    e.preventDefault()
    setNote(null)
    let parsed: unknown
    try {
      parsed = JSON.parse(payload)
    } catch {
      setNote('The payload is not JSON.')
      return
    }
    if (!confirm('Send it? A test delivery starts a real generation.')) return
    try {
      const r = await api.post<{ generation_id: string | null; skipped: boolean }>(`${base}/test`, { payload: parsed })
      setNote(r.skipped ? 'The filters passed it over.' : `Started generation ${r.generation_id}.`)
    } catch (err) {
      setNote(errorText(err))
    }
    await load()
  }
  return (
    <div class="hook-log">
      <form onSubmit={test} class="token-form">
        <label>
          Test payload
          <textarea rows={2} value={payload} onInput={(e) => setPayload(e.currentTarget.value)} />
        </label>
        <button type="submit">Send a test delivery</button>
        {note && <p role="status">{note}</p>}
      </form>
      <Listed items={items} loading="Loading deliveries…" empty="No deliveries yet.">
        {(items) => (
          <Table
            head={['When', 'Delivery', 'Status', 'Generation', 'Error']}
            rows={items}
            row={(d) => (
              <tr>
                <td>{when(d.received_at)}</td>
                <td>
                  <code class="small">{d.delivery_id}</code>
                </td>
                <td>{d.status}</td>
                <td>{d.generation_id ?? '—'}</td>
                <td>{d.error ?? ''}</td>
              </tr>
            )}
          />
        )}
      </Listed>
    </div>
  )
}
