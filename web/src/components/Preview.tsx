import { useEffect, useRef, useState } from 'preact/hooks'
import type { Room } from '../room'
import type { CaptureMessage, Problems } from '../problems'
import type { DevServerStatus } from '../gen'
import { api, errorText } from '../api'

const WIDTHS = { Desktop: '100%', Tablet: '768px', Phone: '375px' } as const
type Width = keyof typeof WIDTHS

/**
 * The running app, in a frame on its own preview origin (never Kiln's). The frame opens a
 * fresh single-use link; the preview host trades it for its own cookie. While there is no
 * preview, it says why instead of showing a blank frame.
 */
export function Preview({ room, problems, writer }: { room: Room; problems: Problems; writer: boolean }) {
  const [src, setSrc] = useState<string | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [width, setWidth] = useState<Width>('Desktop')
  const frame = useRef<HTMLIFrameElement>(null)
  const [restarting, setRestarting] = useState(false)
  const restart = async () => {
    setRestarting(true)
    setError(null)
    try {
      const s = await api.post<DevServerStatus>(`/api/projects/${room.projectId}/dev-server/restart`)
      if (s.state !== 'ready') setError(`The dev server is ${s.state}:\n${s.log}`)
      await open()
    } catch (e) {
      setError(errorText(e))
    } finally {
      setRestarting(false)
    }
  }
  const url = room.previewUrl.value

  const open = async () => {
    setError(null)
    try {
      const link = await api.post<{ url: string }>(`/api/projects/${room.projectId}/preview-link`)
      setSrc(link.url)
    } catch (e) {
      setError(errorText(e))
    }
  }
  // A new version, or files a person changed reaching the sandbox: show the app as it is now
  // (the static template has no hot reload). Coalesced, so replaying the log after a reload
  // opens one link, not one per past version.
  const changes = room.appChanges.value
  useEffect(() => {
    if (!url) return
    const t = setTimeout(open, 250)
    return () => clearTimeout(t)
  }, [url, changes])
  // What the app's page reports about itself (Kiln's capture script in the preview).
  useEffect(() => {
    const listen = (e: MessageEvent) => {
      if (!src || e.source !== frame.current?.contentWindow) return
      if (e.origin !== new URL(src).origin) return
      const m = e.data as CaptureMessage
      if (m && typeof m === 'object' && m.kiln === 1) problems.fromPreview(m)
    }
    addEventListener('message', listen)
    return () => removeEventListener('message', listen)
  }, [src])

  if (!url) {
    const step = room.step.value
    const lastLog = [...room.timeline.value].reverse().find((e) => e.type === 'command_output') as any
    return (
      <div class="preview-empty" role="status">
        {room.running.value ? (
          <>
            <p>
              <span class="spinner" aria-hidden="true" /> No preview yet: the agent is {step || 'starting'}. The app appears here as soon as its first
              files run.
            </p>
            {lastLog && (
              <details>
                <summary>Latest log: <code>{lastLog.command}</code></summary>
                <pre>{lastLog.output}</pre>
              </details>
            )}
          </>
        ) : step === 'failed' ? (
          <p class="error">The last generation failed before the app could start; see the chat for why.</p>
        ) : (
          <p class="muted">No preview yet. Describe an app in the chat to build one.</p>
        )}
      </div>
    )
  }
  return (
    <div class="preview">
      <div class="row preview-bar">
        <button type="button" onClick={open} title="Reload the preview">
          Reload
        </button>
        <code class="small preview-url" title={url}>
          {problems.path.value}
        </code>
        {writer && (
          <button type="button" onClick={restart} disabled={restarting} title="Restart the app's dev server">
            {restarting ? 'Restarting…' : 'Restart server'}
          </button>
        )}
        <a href={`/preview/${room.projectId}/`} target="_blank" rel="noopener">
          Open in a new tab
        </a>
        <span class="spacer" />
        <div role="group" aria-label="Preview width">
          {(Object.keys(WIDTHS) as Width[]).map((w) => (
            <button type="button" aria-pressed={width === w} onClick={() => setWidth(w)}>
              {w}
            </button>
          ))}
        </div>
      </div>
      {error && <pre class="error" role="alert">{error}</pre>}
      <div class="frame-wrap">
        {src && (
          <iframe
            ref={frame}
            title="Preview"
            src={src}
            style={{ width: WIDTHS[width] }}
            sandbox="allow-scripts allow-same-origin allow-forms allow-modals allow-popups allow-downloads"
          />
        )}
      </div>
    </div>
  )
}
