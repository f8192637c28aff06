import { useEffect, useState } from 'preact/hooks'
import type { Page, Project, Scope, TokenCreated, TokenInfo } from '../gen'
import { api, errorText } from '../api'
import { ErrorLine, Listed, SecretOnce, Table } from './Listing'

const SCOPES: { id: Scope; label: string; hint: string }[] = [
  { id: 'read', label: 'read', hint: 'orgs, projects, files, versions; watch a project' },
  { id: 'write', label: 'write', hint: 'change files and projects' },
  { id: 'generate', label: 'generate', hint: 'start and cancel generations' },
]

const when = (ms: number | null) => (ms ? new Date(ms).toLocaleString() : '—')

/** Personal API tokens for scripts and CI: made here, shown once, revoked at once. */
export function Tokens() {
  const [items, setItems] = useState<TokenInfo[] | null>(null)
  const [projects, setProjects] = useState<Project[]>([])
  const [error, setError] = useState<string | null>(null)
  const [made, setMade] = useState<TokenCreated | null>(null)
  const [name, setName] = useState('')
  const [scopes, setScopes] = useState<Scope[]>(['read'])
  const [project, setProject] = useState('')
  const [days, setDays] = useState('90')
  const [busy, setBusy] = useState(false)
  const fail = (e: unknown) => setError(errorText(e))
  const load = () => api.get<{ items: TokenInfo[] }>('/api/tokens').then((r) => setItems(r.items), fail)
  useEffect(() => {
    load()
    api.get<Page<Project>>('/api/projects?limit=100').then((p) => setProjects(p.items), () => undefined)
  }, [])

  const create = async (e: Event) => {
    e.preventDefault()
    setBusy(true)
    setError(null)
    try {
      const body: Record<string, unknown> = { name, scopes }
      if (project) body.project = project
      if (days) body.expires_in_days = Number(days)
      setMade(await api.post<TokenCreated>('/api/tokens', body))
      setName('')
      await load()
    } catch (err) {
      fail(err)
    } finally {
      setBusy(false)
    }
  }
  const revoke = async (t: TokenInfo) => {
    if (!confirm(`Revoke “${t.name}”? Scripts using it stop working at once.`)) return
    try {
      await api.del(`/api/tokens/${t.id}`)
      if (made?.id === t.id) setMade(null)
      await load()
    } catch (err) {
      fail(err)
    }
  }
  const toggle = (s: Scope) => setScopes(scopes.includes(s) ? scopes.filter((x) => x !== s) : [...scopes, s])
  const projectName = (id: string | null) => projects.find((p) => p.id === id)?.name ?? id

  return (
    <main class="dashboard">
      <section class="card" aria-labelledby="tokens-new">
        <h2 id="tokens-new">New API token</h2>
        <p class="muted small">
          For scripts and CI: send it as <code>Authorization: Bearer kiln_pat_…</code>. It can never do more than your own role allows.
        </p>
        <form onSubmit={create} class="token-form">
          <label>
            Token name
            <input value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="CI deploy" required />
          </label>
          <fieldset>
            <legend>Scopes</legend>
            {SCOPES.map((s) => (
              <label class="inline">
                <input type="checkbox" checked={scopes.includes(s.id)} onChange={() => toggle(s.id)} /> {s.label}
                <span class="muted small"> — {s.hint}</span>
              </label>
            ))}
          </fieldset>
          <label>
            Project
            <select value={project} onChange={(e) => setProject(e.currentTarget.value)}>
              <option value="">Every project I can reach</option>
              {projects.map((p) => (
                <option value={p.id}>{p.name}</option>
              ))}
            </select>
          </label>
          <label>
            Expires
            <select value={days} onChange={(e) => setDays(e.currentTarget.value)}>
              <option value="7">in 7 days</option>
              <option value="30">in 30 days</option>
              <option value="90">in 90 days</option>
              <option value="365">in a year</option>
              <option value="">never (until revoked)</option>
            </select>
          </label>
          <button type="submit" class="primary" disabled={busy || !name.trim() || scopes.length === 0}>
            Create token
          </button>
        </form>
        <ErrorLine error={error} />
        {made && (
          <SecretOnce label="New token" secret={made.token}>
            <strong>{made.name}</strong>: copy it now — it is not shown again.
          </SecretOnce>
        )}
      </section>
      <section aria-labelledby="tokens-title">
        <h2 id="tokens-title">Your tokens</h2>
        <Listed items={items} loading="Loading tokens…" empty="No tokens yet.">
          {(items) => (
            <Table
              head={['Name', 'Scopes', 'Reaches', 'Created', 'Expires', 'Last used', '']}
              rows={items}
              row={(t) => (
                <tr>
                  <td>{t.name}</td>
                  <td>{t.scopes.join(', ')}</td>
                  <td>{t.project_id ? projectName(t.project_id) : t.org_id ? `org ${t.org_id}` : 'all'}</td>
                  <td>{when(t.created_at)}</td>
                  <td>{t.expires_at && t.expires_at < Date.now() ? <span class="error">expired</span> : when(t.expires_at)}</td>
                  <td>{when(t.last_used_at)}</td>
                  <td>
                    <button type="button" class="ghost small danger" aria-label={`Revoke ${t.name}`} onClick={() => revoke(t)}>
                      Revoke
                    </button>
                  </td>
                </tr>
              )}
            />
          )}
        </Listed>
      </section>
    </main>
  )
}
