import type { Signal } from '@preact/signals'
import { useState } from 'preact/hooks'
import type { Room } from '../room'
import { api, encodePath, errorText } from '../api'

/** The working tree: one treeitem per file, named by its path, grouped by folder. */
export function FileTree({ room, open, writer }: { room: Room; open: Signal<string | null>; writer: boolean }) {
  const [note, setNote] = useState<string | null>(null)
  const files = [...room.files.value.values()].sort((a, b) => a.path.localeCompare(b.path))
  const create = async () => {
    const path = prompt('New file path (e.g. src/components/Card.tsx)')?.trim()
    if (!path) return
    if (!room.send({ type: 'edit', path, base_rev: room.files.value.get(path)?.rev ?? 0, content: '' })) {
      setNote('Not connected')
      return
    }
    open.value = path
  }
  const rename = async (from: string) => {
    const to = prompt(`Rename ${from} to`, from)?.trim()
    const f = room.files.value.get(from)
    if (!to || to === from || !f) return
    room.send({ type: 'rename', from, to, base_rev: f.rev })
    if (open.value === from) open.value = to
  }
  const remove = async (path: string) => {
    const f = room.files.value.get(path)
    if (!f || !confirm(`Delete ${path}?`)) return
    try {
      await api.del(`/api/projects/${room.projectId}/files/${encodePath(path)}`, { 'if-match': String(f.rev) })
      if (open.value === path) open.value = null
    } catch (e) {
      setNote(errorText(e))
    }
  }
  let lastDir = ''
  return (
    <nav class="file-tree" aria-label="Project files">
      <div class="row">
        <strong>Files</strong>
        {writer && (
          <button type="button" class="ghost small" onClick={create}>
            New file
          </button>
        )}
      </div>
      {note && <p class="error small">{note}</p>}
      {files.length === 0 && <p class="muted small">No files yet.</p>}
      <ul role="tree" aria-label="Files">
        {files.map((f) => {
          const dir = f.path.includes('/') ? f.path.slice(0, f.path.lastIndexOf('/')) : ''
          const heading = dir !== lastDir && dir ? <li class="dir" role="none" aria-hidden="true">{dir}/</li> : null
          lastDir = dir
          const depth = dir ? dir.split('/').length : 0
          return (
            <>
              {heading}
              <li
                role="treeitem"
                aria-label={f.path}
                aria-selected={open.value === f.path}
                tabIndex={0}
                class={`file ${f.streaming !== undefined ? 'streaming' : ''}`}
                style={{ paddingLeft: `${0.5 + depth * 0.75}rem` }}
                onClick={() => (open.value = f.path)}
                onKeyDown={(e) => {
                  if (e.key === 'Enter') open.value = f.path
                  if (e.key === 'F2' && writer) rename(f.path)
                  if (e.key === 'Delete' && writer) remove(f.path)
                }}
              >
                {f.path.slice(dir ? dir.length + 1 : 0)}
                {f.streaming !== undefined && <span class="badge small">writing</span>}
                {writer && open.value === f.path && (
                  <span class="file-actions">
                    <button type="button" class="ghost small" onClick={(e) => (e.stopPropagation(), rename(f.path))}>
                      Rename
                    </button>
                    <button type="button" class="ghost small danger" onClick={(e) => (e.stopPropagation(), remove(f.path))}>
                      Delete
                    </button>
                  </span>
                )}
              </li>
            </>
          )
        })}
      </ul>
    </nav>
  )
}
