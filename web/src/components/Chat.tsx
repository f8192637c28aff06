import { useEffect, useRef, useState } from 'preact/hooks'
import type { Sequenced } from '../gen'
import type { Room } from '../room'

/** The conversation with the agent: prompts, and its progress as a live timeline. */
export function Chat({ room, writer }: { room: Room; writer: boolean }) {
  const [message, setMessage] = useState('')
  const [note, setNote] = useState<string | null>(null)
  const end = useRef<HTMLDivElement>(null)
  const timeline = room.timeline.value
  useEffect(() => {
    end.current?.scrollIntoView({ block: 'end' })
  }, [timeline.length])

  const send = (e?: Event) => {
    e?.preventDefault()
    const prompt = message.trim()
    if (!prompt) return
    if (room.send({ type: 'generate', prompt, template: null })) {
      setMessage('')
      setNote(room.running.value ? 'Queued: it will be folded into the running generation.' : null)
    } else {
      setNote('Not connected: your message is kept here until the connection is back.')
    }
  }
  return (
    <aside class="chat" aria-label="Chat with the agent">
      <div class="timeline" aria-live="polite">
        {timeline.length === 0 && <p class="muted empty">Describe what to build or change. The agent’s progress shows here.</p>}
        {groups(timeline).map((g) => (
          <Item room={room} group={g} />
        ))}
        <div ref={end} />
      </div>
      <form class="composer" onSubmit={send}>
        <label for="message" class="sr-only">
          Message
        </label>
        <textarea
          id="message"
          aria-label="Message"
          rows={2}
          disabled={!writer}
          placeholder={writer ? 'Ask for a change… (Enter to send, Shift+Enter for a new line)' : 'Your role may watch but not prompt'}
          value={message}
          onInput={(e) => setMessage(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey) send(e)
          }}
        />
        <div class="row">
          <button type="submit" class="primary" disabled={!writer || !message.trim()}>
            Send
          </button>
          {room.running.value && writer && (
            <button type="button" onClick={() => room.send({ type: 'cancel' })}>
              Cancel
            </button>
          )}
          {room.running.value && <span class="muted small step">{room.step.value}…</span>}
        </div>
        {note && <p class="hint">{note}</p>}
      </form>
    </aside>
  )
}

const ENDED = new Set(['done', 'failed', 'cancelled'])

const tokens = (n: number) => n.toLocaleString('en')
/** Dollars, with enough digits to show a cent's fraction; a local model costs nothing. */
const cost = (micros: number) => (micros === 0 ? '$0' : `$${(micros / 1e6).toFixed(micros < 10_000 ? 4 : 2)}`)

type Group = { kind: 'event'; ev: Sequenced } | { kind: 'files'; phase: string; evs: Sequenced[] }

/** Folds a phase's file events into one block; everything else stays one item. */
function groups(timeline: readonly Sequenced[]): Group[] {
  const out: Group[] = []
  for (const ev of timeline) {
    if (ev.type === 'file_start' || ev.type === 'file_end' || (ev.type === 'file_edited' && (ev as any).by === 'agent')) {
      // A call's cost arrives between its streamed files and their storing: still one block.
      let i = out.length - 1
      while (i >= 0 && out[i].kind === 'event' && (out[i] as { ev: Sequenced }).ev.type === 'model_call') i--
      const last = out[i]
      if (last?.kind === 'files') last.evs.push(ev)
      else out.push({ kind: 'files', phase: '', evs: [ev] })
      continue
    }
    if (ev.type === 'file_edited' || ev.type === 'file_deleted' || ev.type === 'file_renamed' || ev.type === 'presence') continue
    // A command's output, as it streamed in pieces, reads as one block.
    const last = out[out.length - 1]
    if (ev.type === 'command_output' && last?.kind === 'event' && last.ev.type === 'command_output' && (last.ev as any).command === (ev as any).command) {
      last.ev = { ...last.ev, output: (last.ev as any).output + (ev as any).output } as Sequenced
      continue
    }
    out.push({ kind: 'event', ev })
  }
  return out
}

function Item({ room, group }: { room: Room; group: Group }) {
  if (group.kind === 'files') return <FileBlock room={room} evs={group.evs} />
  const e = group.ev as Sequenced & Record<string, any>
  switch (e.type) {
    case 'prompt':
      return (
        <div class="msg person">
          <span class="who">{e.by}</span>
          <p>{e.prompt}</p>
          {e.queued && <span class="badge">queued</span>}
        </div>
      )
    case 'state_change':
      return (
        <div class={`step-row ${e.step}`}>
          <span class="badge">{e.step}</span>
          {e.phase != null && e.step !== 'done' && <span class="muted small">phase {e.phase + 1}</span>}
          {e.reason && <p class="error">{e.reason}</p>}
        </div>
      )
    case 'blueprint': {
      const b = e.blueprint
      return (
        <details class="card blueprint" open>
          <summary>
            Plan: <strong>{b.name}</strong>
          </summary>
          <p>{b.summary}</p>
          <p class="small">
            {b.design.style} · {b.design.typography}
          </p>
          <div class="swatches">
            {b.design.palette.map((s: any) => (
              <span class="swatch" style={{ background: s.hex }} title={`${s.name} ${s.hex}`} />
            ))}
          </div>
          <ol>
            {b.phases.map((p: any) => (
              <li>
                <strong>{p.name}</strong> — {p.goal}
                <div class="muted small">{p.files.join(', ')}</div>
              </li>
            ))}
          </ol>
        </details>
      )
    }
    case 'phase_designing':
      return <PhasePlan room={room} ev={e} />
    case 'command_output':
      return (
        <details class="command">
          <summary>
            <code>{e.command}</code>
          </summary>
          <pre>{e.output}</pre>
        </details>
      )
    case 'deps_installed':
      return <div class="step-row small">Installed: {e.commands.join('; ')}</div>
    case 'checks_written':
      return (
        <div class="step-row small">
          Checks: {e.checks.join(' · ')}
          {e.dropped?.length > 0 && <span class="muted"> ({e.dropped.length} dropped)</span>}
        </div>
      )
    case 'check_result':
      return (
        <details class={`check ${e.passed ? 'pass' : 'fail'}`} open={!e.passed}>
          <summary>
            {e.passed ? '✓ Checks passed' : '✗ Checks failed'} (phase {e.phase + 1})
          </summary>
          {e.errors?.length > 0 && <pre>{e.errors.join('\n')}</pre>}
          {(e.checks ?? []).map((c: any) => (
            <div class={c.passed ? 'pass' : 'fail'}>
              {c.passed ? '✓' : '✗'} {c.name}
              {c.error && <span class="muted small"> — {c.error}</span>}
            </div>
          ))}
        </details>
      )
    case 'model_call':
      return (
        <div class={`usage small muted${e.ok ? '' : ' failed'}`} title={e.model}>
          {e.role} ({e.step}
          {e.step === 'implementing' || e.step === 'fixing' ? `, phase ${e.phase + 1}` : ''}): {tokens(e.input_tokens)} in ·{' '}
          {tokens(e.output_tokens)} out · {(e.latency_ms / 1000).toFixed(1)} s · {cost(e.cost_micros)}
          {!e.ok && ' · failed'}
        </div>
      )
    case 'server_started':
      return <div class="step-row small">▶ The preview is up.</div>
    case 'site':
      return (
        <div class="step-row small">
          {e.site.state === 'live' ? (
            <>
              Published v{e.site.version} at{' '}
              <a href={e.site.url} target="_blank" rel="noopener noreferrer">
                {e.site.url}
              </a>
            </>
          ) : e.site.state === 'failed' ? (
            <span class="error">Publishing failed: {(e.site.error ?? '').split('\n')[0]}</span>
          ) : e.site.state === 'unpublished' ? (
            'The site was taken down.'
          ) : (
            `Publishing v${e.site.building_version}…`
          )}
        </div>
      )
    case 'generation_complete':
      return (
        <div class="card done">
          <strong>Version {e.version ?? '—'} ready</strong>
          <div class="muted small">
            {(e.elapsed_ms / 1000).toFixed(0)} s · {e.llm_calls} model calls · {tokens(e.input_tokens)} in ·{' '}
            {tokens(e.output_tokens)} out · {cost(e.cost_micros)}
          </div>
          {e.unresolved?.length > 0 && <pre class="error">{e.unresolved.join('\n')}</pre>}
        </div>
      )
    case 'version_created':
      return (
        <div class="step-row small">
          Version {e.version.number}: {e.version.message}
        </div>
      )
    case 'error':
      return (
        <p class="error" role="alert">
          {e.message}
        </p>
      )
    default:
      return null
  }
}

/** The files a phase writes: waiting, streaming (with a growing line count), done. */
function FileBlock({ room, evs }: { room: Room; evs: Sequenced[] }) {
  const paths: string[] = []
  const done = new Set<string>()
  for (const ev of evs as any[]) {
    if (!paths.includes(ev.path)) paths.push(ev.path)
    if (ev.type === 'file_end' || ev.type === 'file_edited') done.add(ev.path)
  }
  const files = room.files.value
  return (
    <ul class="file-block" aria-label="Files written by the agent">
      {paths.map((p) => {
        const f = files.get(p)
        const streaming = f?.streaming !== undefined
        const lines = streaming ? f!.streaming!.split('\n').length : (f?.content?.split('\n').length ?? 0)
        return (
          <li class={streaming ? 'streaming' : done.has(p) ? 'done' : 'waiting'}>
            <span aria-hidden="true">{streaming ? '✎' : done.has(p) ? '✓' : '…'}</span> <code>{p}</code>{' '}
            <span class="muted small">{lines} lines</span>
          </li>
        )
      })}
    </ul>
  )
}

/** A phase as planned: its files waiting, being written (with lines so far) or done. */
function PhasePlan({ room, ev }: { room: Room; ev: Sequenced & Record<string, any> }) {
  const planned: string[] = room.blueprint.value?.phases[ev.phase]?.files ?? []
  const later = room.timeline.value.filter((t) => t.seq > ev.seq) as any[]
  const end = later.findIndex(
    (t) =>
      t.type === 'phase_designing' ||
      t.type === 'generation_complete' ||
      (t.type === 'state_change' && ENDED.has((t as any).step)),
  )
  // Once the phase is over, a planned file never written is not still coming.
  const over = end >= 0
  const mine = over ? later.slice(0, end) : later
  const state = (path: string) =>
    mine.some((t) => t.type === 'file_end' && t.path === path)
      ? 'done'
      : mine.some((t) => t.type === 'file_start' && t.path === path)
        ? 'streaming'
        : 'waiting'
  const waiting = planned.filter((p) => state(p) === 'waiting')
  return (
    <div class="step-row">
      <strong>
        Phase {ev.phase + 1}: {ev.name}
      </strong>{' '}
      <span class="muted">{ev.goal}</span>
      {waiting.length > 0 && (
        <ul class="file-block" aria-label={over ? 'Planned files not written' : 'Files still to write'}>
          {waiting.map((p) => (
            <li class={over ? 'skipped' : 'waiting'}>
              <span aria-hidden="true">{over ? '–' : '…'}</span> <code>{p}</code>{' '}
              <span class="muted small">{over ? 'not written' : 'waiting'}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  )
}
