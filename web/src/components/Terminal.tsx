import { useEffect, useRef, useState } from 'preact/hooks'
import type { Room } from '../room'

/**
 * A shell in the project's sandbox (xterm.js on the sandbox's pty, through Kiln's origin).
 * Loaded only when opened: xterm is most of its weight.
 */
export function Terminal({ room }: { room: Room }) {
  const host = useRef<HTMLDivElement>(null)
  const [state, setState] = useState<'connecting' | 'open' | 'closed'>('connecting')
  const [note, setNote] = useState('')
  const [attempt, setAttempt] = useState(0)

  useEffect(() => {
    let disposed = false
    let cleanup = () => {}
    ;(async () => {
      const [{ Terminal: XTerm }, { FitAddon }] = await Promise.all([import('@xterm/xterm'), import('@xterm/addon-fit')])
      await import('@xterm/xterm/css/xterm.css')
      if (disposed || !host.current) return
      const term = new XTerm({ convertEol: true, fontSize: 13, cursorBlink: true, scrollback: 5000 })
      const fit = new FitAddon()
      term.loadAddon(fit)
      term.open(host.current)
      fit.fit()
      const proto = location.protocol === 'https:' ? 'wss:' : 'ws:'
      const ws = new WebSocket(`${proto}//${location.host}/api/projects/${room.projectId}/terminal`)
      ws.binaryType = 'arraybuffer'
      const resize = () => {
        fit.fit()
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ resize: { cols: term.cols, rows: term.rows } }))
      }
      ws.onopen = () => {
        setState('open')
        setNote('')
        resize()
        term.focus()
      }
      ws.onmessage = (m) => term.write(typeof m.data === 'string' ? m.data : new Uint8Array(m.data as ArrayBuffer))
      ws.onclose = (e) => {
        setState('closed')
        setNote(e.code === 1000 ? 'The shell ended.' : 'The terminal is not available: the sandbox may not exist yet (build the app first).')
      }
      const input = term.onData((d) => ws.readyState === WebSocket.OPEN && ws.send(new TextEncoder().encode(d)))
      const observer = new ResizeObserver(resize)
      observer.observe(host.current)
      cleanup = () => {
        observer.disconnect()
        input.dispose()
        ws.close()
        term.dispose()
      }
    })().catch((e) => {
      setState('closed')
      setNote(String(e))
    })
    return () => {
      disposed = true
      cleanup()
    }
  }, [room, attempt])

  return (
    <section class="terminal" aria-label="Terminal">
      <div class="row terminal-bar">
        <strong>Terminal</strong>
        <span class="muted small" role="status">
          {state === 'connecting' ? 'Connecting…' : state === 'open' ? 'Connected to the sandbox' : note}
        </span>
        <span class="spacer" />
        {state === 'closed' && (
          <button type="button" class="small" onClick={() => setAttempt(attempt + 1)}>
            Reconnect
          </button>
        )}
      </div>
      <div class="term-host" ref={host} />
    </section>
  )
}
