import { useEffect, useState } from 'preact/hooks'
import type { VersionFile, VersionInfo } from '../gen'
import type { Room } from '../room'
import { api, encodePath, errorText } from '../api'
import { Diff } from './Diff'

/** The project's versions, newest first: restore one (a new version), or download it. */
export function Versions({ room, writer }: { room: Room; writer: boolean }) {
  const [items, setItems] = useState<VersionInfo[] | null>(null)
  const [note, setNote] = useState<string | null>(null)
  const [compare, setCompare] = useState<{ from: number; to: number } | null>(null)
  const [browse, setBrowse] = useState<number | null>(null)
  const live = room.versions.value
  useEffect(() => {
    api.get<{ items: VersionInfo[] }>(`/api/projects/${room.projectId}/versions`).then(
      (r) => setItems(r.items),
      (e) => setNote(errorText(e)),
    )
  }, [live.length])
  const restore = async (n: number) => {
    if (!confirm(`Restore version ${n}? It becomes a new version; nothing is lost.`)) return
    try {
      await api.post(`/api/projects/${room.projectId}/versions/${n}/restore`)
    } catch (e) {
      setNote(errorText(e))
    }
  }
  if (!items) return <p class="muted" aria-busy="true">{note ?? 'Loading versions…'}</p>
  if (items.length === 0) return <p class="muted empty">No versions yet. The agent makes one when a generation finishes.</p>
  return (
    <section aria-label="Versions">
      {note && <p class="error" role="alert">{note}</p>}
      <ol class="versions">
        {items.map((v) => (
          <li class="version">
            <strong>v{v.number}</strong> <span>{v.message}</span>
            <span class="muted small">
              {v.author === 'agent' ? 'by the agent' : `by ${v.author}`} · {new Date(v.created_at).toLocaleString()} · {v.file_count} files
            </span>
            <span class="spacer" />
            {writer && (
              <button type="button" class="small" onClick={() => restore(v.number)}>
                Restore
              </button>
            )}
            <button type="button" class="small" aria-pressed={browse === v.number} onClick={() => setBrowse(browse === v.number ? null : v.number)}>
              Files
            </button>
            {v.number > 1 && (
              <button type="button" class="small" onClick={() => setCompare({ from: v.number - 1, to: v.number })}>
                Changes
              </button>
            )}
            <a class="button small" href={`/api/projects/${room.projectId}/export.zip?version=${v.number}`} download>
              Download ZIP
            </a>
          </li>
        ))}
      </ol>
      {items.length > 1 && (
        <form class="row compare" onSubmit={(e) => e.preventDefault()}>
          <label class="inline">
            Compare
            <select value={compare?.from ?? ''} onChange={(e) => setCompare({ from: Number(e.currentTarget.value), to: compare?.to ?? items[0].number })}>
              <option value="" disabled>
                from…
              </option>
              {items.map((v) => <option value={v.number}>v{v.number}</option>)}
            </select>
          </label>
          <label class="inline">
            with
            <select value={compare?.to ?? ''} onChange={(e) => setCompare({ from: compare?.from ?? items[items.length - 1].number, to: Number(e.currentTarget.value) })}>
              <option value="" disabled>
                to…
              </option>
              {items.map((v) => <option value={v.number}>v{v.number}</option>)}
            </select>
          </label>
        </form>
      )}
      {browse !== null && <VersionFiles project={room.projectId} number={browse} />}
      {compare && <Diff project={room.projectId} from={compare.from} to={compare.to} />}
    </section>
  )
}

/** A version's files, read-only: versions never change. */
function VersionFiles({ project, number }: { project: string; number: number }) {
  const [files, setFiles] = useState<VersionFile[] | null>(null)
  const [open, setOpen] = useState<string | null>(null)
  const [text, setText] = useState<string>('')
  useEffect(() => {
    setFiles(null)
    setOpen(null)
    api.get<{ items: VersionFile[] }>(`/api/projects/${project}/versions/${number}/files`).then((r) => setFiles(r.items), () => setFiles([]))
  }, [project, number])
  useEffect(() => {
    if (!open) return
    fetch(`/api/projects/${project}/versions/${number}/files/${encodePath(open)}`, { credentials: 'same-origin' })
      .then((r) => r.text())
      .then(setText, () => setText('(could not be read)'))
  }, [open])
  if (!files) return <p class="muted pad" aria-busy="true">Loading v{number}…</p>
  return (
    <section class="version-files" aria-label={`Files of version ${number}`}>
      <ul role="tree" aria-label={`Version ${number} files`}>
        {files.map((f) => (
          <li role="treeitem" aria-label={f.path} aria-selected={open === f.path} tabIndex={0} class="file" onClick={() => setOpen(f.path)} onKeyDown={(e) => e.key === 'Enter' && setOpen(f.path)}>
            {f.path} <span class="muted small">{f.size} B</span>
          </li>
        ))}
      </ul>
      {open && (
        <div>
          <div class="row">
            <code>{open}</code> <span class="badge">v{number}, read-only</span>
          </div>
          <pre class="version-file">{text}</pre>
        </div>
      )}
    </section>
  )
}
