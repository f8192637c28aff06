import { useEffect, useState } from 'preact/hooks'
import { signal } from '@preact/signals'
import type { Invitation, Org, Page, Project } from '../gen'
import { api, errorText } from '../api'
import { me, loadMe } from '../session'
import { go } from '../router'
import { EXAMPLES, nameFromPrompt } from '../examples'

const selectedOrg = signal<string | null>(null)

export function Dashboard() {
  const orgs = me.value?.orgs ?? []
  const org = orgs.find((o) => o.id === selectedOrg.value) ?? orgs.find((o) => o.personal) ?? orgs[0]
  return (
    <main class="dashboard">
      <Invitations />
      <NewProject org={org} />
      <section aria-labelledby="projects-title">
        <div class="row">
          <h2 id="projects-title">Projects</h2>
          <label class="inline">
            Org{' '}
            <select value={org?.id} onChange={(e) => (selectedOrg.value = e.currentTarget.value)}>
              {orgs.map((o) => (
                <option value={o.id}>{o.personal ? 'Personal' : o.name}</option>
              ))}
            </select>
          </label>
          {org && !org.personal && (org.role === 'owner' || org.role === 'admin') && (
            <a href={`/orgs/${org.id}`} onClick={(e) => (e.preventDefault(), go(`/orgs/${org.id}`))}>
              Members
            </a>
          )}
          {org && org.role !== 'client' && (
            <a href={`/orgs/${org.id}/usage`} onClick={(e) => (e.preventDefault(), go(`/orgs/${org.id}/usage`))}>
              Usage
            </a>
          )}
        </div>
        {org && <ProjectList org={org} />}
      </section>
    </main>
  )
}

function NewProject({ org }: { org?: Org }) {
  const [prompt, setPrompt] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const canCreate = org && org.role !== 'client'
  const build = async (e: Event) => {
    e.preventDefault()
    if (!prompt.trim() || !org) return
    setBusy(true)
    setError(null)
    try {
      const project = await api.post<Project>('/api/projects', { name: nameFromPrompt(prompt), org: org.id })
      await api.post(`/api/projects/${project.id}/generate`, { prompt })
      go(`/projects/${project.id}`)
    } catch (err) {
      setError(errorText(err))
      setBusy(false)
    }
  }
  return (
    <section class="card new-project" aria-labelledby="new-title">
      <h2 id="new-title">New project</h2>
      <form onSubmit={build}>
        <label for="describe">Describe your app</label>
        <textarea
          id="describe"
          rows={3}
          value={prompt}
          placeholder="A habit tracker with a streak for each habit…"
          onInput={(e) => setPrompt(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && (e.metaKey || e.ctrlKey)) build(e)
          }}
        />
        <div class="examples" aria-label="Example prompts">
          {EXAMPLES.map((ex) => (
            <button type="button" class="chip" onClick={() => setPrompt(ex)}>
              {ex.split(':')[0].split(' with ')[0]}
            </button>
          ))}
        </div>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy || !prompt.trim() || !canCreate}>
          {busy ? 'Starting…' : 'Build'}
        </button>
        {!canCreate && <p class="hint">Your role in this org can view projects but not create them.</p>}
      </form>
    </section>
  )
}

function ProjectList({ org }: { org: Org }) {
  const [items, setItems] = useState<Project[] | null>(null)
  const [cursor, setCursor] = useState<string | null>(null)
  const [error, setError] = useState<string | null>(null)
  const load = async (after: string | null) => {
    try {
      const q = new URLSearchParams({ org: org.id, limit: '20' })
      if (after) q.set('cursor', after)
      const page = await api.get<Page<Project>>(`/api/projects?${q}`)
      setItems((old) => [...(after ? (old ?? []) : []), ...page.items])
      setCursor(page.next_cursor ?? null)
    } catch (err) {
      setError(errorText(err))
    }
  }
  useEffect(() => {
    setItems(null)
    load(null)
  }, [org.id])
  if (error) return <p class="error" role="alert">{error}</p>
  if (!items) return <p class="muted" aria-busy="true">Loading projects…</p>
  if (items.length === 0) return <p class="muted empty">No projects yet. Describe an app above to start one.</p>
  return (
    <>
      <ul class="projects">
        {items.map((p) => (
          <ProjectRow key={p.id} project={p} onGone={() => setItems(items.filter((x) => x.id !== p.id))} />
        ))}
      </ul>
      {cursor && (
        <button type="button" onClick={() => load(cursor)}>
          Load more
        </button>
      )}
    </>
  )
}

function ProjectRow({ project, onGone }: { project: Project; onGone: () => void }) {
  const [name, setName] = useState(project.name)
  const [draft, setDraft] = useState(project.name)
  const [editing, setEditing] = useState(false)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const writer = project.role !== 'client'
  const fail = (err: unknown) => setError(errorText(err))
  const rename = async (e: Event) => {
    e.preventDefault()
    setBusy(true)
    setError(null)
    try {
      const saved = await api.patch<Project>(`/api/projects/${project.id}`, { name: draft })
      setName(saved.name)
      setEditing(false)
    } catch (err) {
      fail(err)
    } finally {
      setBusy(false)
    }
  }
  const cancel = () => {
    setDraft(name)
    setEditing(false)
    setError(null)
  }
  const remove = async () => {
    if (!confirm(`Delete “${name}”? Its files and versions go with it.`)) return
    setBusy(true)
    setError(null)
    try {
      await api.del(`/api/projects/${project.id}`)
      onGone()
    } catch (err) {
      fail(err)
      setBusy(false)
    }
  }
  return (
    <li class="project">
      {editing ? (
        <form onSubmit={rename} class="row" onKeyDown={(e) => e.key === 'Escape' && cancel()}>
          <label class="sr-only" for={`name-${project.id}`}>
            Project name
          </label>
          <input id={`name-${project.id}`} value={draft} autoFocus onInput={(e) => setDraft(e.currentTarget.value)} />
          <button type="submit" disabled={busy}>
            Save name
          </button>
          <button type="button" class="ghost" onClick={cancel}>
            Cancel
          </button>
        </form>
      ) : (
        <a href={`/projects/${project.id}`} onClick={(e) => (e.preventDefault(), go(`/projects/${project.id}`))}>
          {name}
        </a>
      )}
      <span class="muted small">{new Date(project.created_at).toLocaleString()}</span>
      {writer && !editing && (
        <button type="button" class="ghost small" aria-label={`Rename ${name}`} onClick={() => setEditing(true)}>
          Rename
        </button>
      )}
      {(project.role === 'owner' || project.role === 'admin') && !editing && (
        <button type="button" class="ghost small danger" aria-label={`Delete ${name}`} disabled={busy} onClick={remove}>
          Delete
        </button>
      )}
      {error && (
        <p class="error small" role="alert">
          {error}
        </p>
      )}
    </li>
  )
}

function Invitations() {
  const [items, setItems] = useState<Invitation[]>([])
  useEffect(() => {
    api.get<{ items: Invitation[] }>('/api/invitations').then((r) => setItems(r.items), () => undefined)
  }, [])
  if (items.length === 0) return null
  const answer = async (inv: Invitation, accept: boolean) => {
    await api.post(`/api/invitations/${inv.id}/${accept ? 'accept' : 'decline'}`)
    setItems(items.filter((i) => i.id !== inv.id))
    if (accept) await loadMe()
  }
  return (
    <section class="card" aria-labelledby="inv-title">
      <h2 id="inv-title">Invitations</h2>
      <ul>
        {items.map((inv) => (
          <li class="row">
            <span>
              <strong>{inv.invited_by}</strong> invites you to <strong>{inv.org_name}</strong> as {inv.role}
            </span>
            <button type="button" class="primary small" onClick={() => answer(inv, true)}>
              Accept
            </button>
            <button type="button" class="small" onClick={() => answer(inv, false)}>
              Decline
            </button>
          </li>
        ))}
      </ul>
    </section>
  )
}
