import type { Room } from '../room'
import { type Problems, fixPrompt } from '../problems'

/** Problems of the app (runtime errors, build and check failures) and the sandbox's log. */
export function Console({ room, problems, writer }: { room: Room; problems: Problems; writer: boolean }) {
  const items = problems.all.value
  const logs = room.timeline.value.filter((e) => e.type === 'command_output').slice(-30) as any[]
  const fix = (list: typeof items) => {
    if (list.length && room.send({ type: 'generate', prompt: fixPrompt(list), template: null })) problems.dismissAll()
  }
  return (
    <section class="console" aria-label="Console and problems">
      <div class="row console-bar">
        <strong>Problems</strong> <span class="badge">{items.length}</span>
        <span class="spacer" />
        {writer && items.length > 1 && (
          <button type="button" class="primary small" onClick={() => fix(items)}>
            Fix all
          </button>
        )}
        {items.length > 0 && (
          <button type="button" class="ghost small" onClick={() => problems.dismissAll()}>
            Clear
          </button>
        )}
      </div>
      {items.length === 0 ? (
        <p class="muted small pad">No problems. Errors the running app throws, and build or check failures, show up here.</p>
      ) : (
        <ul class="problems">
          {items.map((p) => (
            <li class={`problem ${p.kind}`}>
              <div class="row">
                <span class="badge">{p.kind}</span>
                <span class="problem-message">{p.message}</span>
                <span class="spacer" />
                {writer && (
                  <button type="button" class="small" onClick={() => fix([p])}>
                    Fix with AI
                  </button>
                )}
              </div>
              {p.detail && <pre>{p.detail}</pre>}
            </li>
          ))}
        </ul>
      )}
      <details class="logs" open={logs.length > 0 && room.running.value}>
        <summary>Sandbox log ({logs.length})</summary>
        {logs.map((l) => (
          <div>
            <code>$ {l.command}</code>
            <pre>{l.output}</pre>
          </div>
        ))}
      </details>
    </section>
  )
}
