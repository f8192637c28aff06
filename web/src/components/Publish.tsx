import { useEffect, useState } from 'preact/hooks'
import type { Site, VersionInfo } from '../gen'
import type { Room } from '../room'
import { api, ApiError, errorText } from '../api'

/** The project's published site: its URL and live version, and (for writers) publishing a
 * version under a name, or taking the site down. The build's output streams to the console
 * like any command; the site's state arrives on the socket (`site` events). */
export function Publish({ room, writer }: { room: Room; writer: boolean }) {
  const site = room.site.value
  const [open, setOpen] = useState(false)
  const [versions, setVersions] = useState<VersionInfo[]>([])
  const [version, setVersion] = useState<number | null>(null)
  const [slug, setSlug] = useState('')
  const [note, setNote] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)

  useEffect(() => {
    api.get<Site>(`/api/projects/${room.projectId}/publish`).then(
      (s) => (room.site.value = s),
      (e) => {
        if (!(e instanceof ApiError && e.status === 404)) setNote(errorText(e))
      },
    )
  }, [room])
  useEffect(() => {
    if (!open) return
    api.get<{ items: VersionInfo[] }>(`/api/projects/${room.projectId}/versions`).then(
      (r) => {
        setVersions(r.items)
        setVersion((v) => v ?? r.items[0]?.number ?? null)
      },
      (e) => setNote(errorText(e)),
    )
    setSlug((s) => s || site?.slug || '')
  }, [open, room.versions.value.length])

  const publish = async (e: Event) => {
    e.preventDefault()
    setBusy(true)
    setNote(null)
    try {
      const body: { version?: number; slug?: string } = {}
      if (version !== null) body.version = version
      if (slug.trim()) body.slug = slug.trim()
      room.site.value = await api.post<Site>(`/api/projects/${room.projectId}/publish`, body)
    } catch (e) {
      setNote(errorText(e))
    } finally {
      setBusy(false)
    }
  }
  const unpublish = async () => {
    if (!confirm('Take the site down? Its address answers "not found" until you publish again.')) return
    setBusy(true)
    try {
      room.site.value = await api.del<Site>(`/api/projects/${room.projectId}/publish`)
    } catch (e) {
      setNote(errorText(e))
    } finally {
      setBusy(false)
    }
  }

  const live = site && site.version !== null && site.state !== 'unpublished'
  const status = !site
    ? 'Not published'
    : site.state === 'building'
      ? `Publishing v${site.building_version}…`
      : site.state === 'failed'
        ? 'The last publish failed'
        : site.state === 'unpublished'
          ? 'Taken down'
          : `v${site.version} is live`
  return (
    <div class="publish">
      {live && (
        <a class="small site-link" href={site.url} target="_blank" rel="noopener noreferrer" title={`v${site.version} is live at ${site.url}`}>
          {site.url.replace(/^https?:\/\//, '').replace(/\/$/, '')} ↗
        </a>
      )}
      <button type="button" class="small" aria-expanded={open} aria-controls="publish-panel" onClick={() => setOpen(!open)}>
        {site?.state === 'building' ? 'Publishing…' : 'Publish'}
      </button>
      {open && (
        <section id="publish-panel" class="publish-panel" aria-label="Publish">
          <p class="small" role="status">
            <strong>{status}</strong>
            {site?.state === 'failed' && site.error && <span class="error small"> — {site.error.split('\n')[0]}</span>}
          </p>
          {writer ? (
            <form onSubmit={publish} class="stack">
              <label>
                Site name
                <input
                  value={slug}
                  onInput={(e) => setSlug(e.currentTarget.value.toLowerCase())}
                  placeholder="from the project's name"
                  pattern="[a-z0-9](?:[a-z0-9\-]{1,38})[a-z0-9]"
                  title="3 to 40 lowercase letters, digits and '-'"
                  maxLength={40}
                />
              </label>
              <label>
                Version
                <select value={version ?? ''} onChange={(e) => setVersion(Number(e.currentTarget.value))} disabled={versions.length === 0}>
                  {versions.length === 0 && <option value="">no version yet</option>}
                  {versions.map((v) => (
                    <option value={v.number}>
                      v{v.number} — {v.message}
                      {site?.version === v.number && live ? ' (live)' : ''}
                    </option>
                  ))}
                </select>
              </label>
              <div class="row">
                <button type="submit" class="primary small" disabled={busy || versions.length === 0 || site?.state === 'building'}>
                  {live ? 'Publish this version' : 'Publish'}
                </button>
                {live && (
                  <button type="button" class="small danger" disabled={busy} onClick={unpublish}>
                    Unpublish
                  </button>
                )}
              </div>
              <p class="muted small">The site is public: anyone with its address can open it. The build's output shows in the Console.</p>
            </form>
          ) : (
            <p class="muted small">Only members who can edit publish.</p>
          )}
          {note && (
            <p class="error small" role="alert">
              {note}
            </p>
          )}
        </section>
      )}
    </div>
  )
}
