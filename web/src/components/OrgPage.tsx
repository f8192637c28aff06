import { useEffect, useState } from 'preact/hooks'
import type { Invitation, Member, Org, Role } from '../gen'
import { api, errorText } from '../api'
import { me } from '../session'

const ROLES: Role[] = ['owner', 'admin', 'member', 'client']

/** An org's members and invitations (owners and admins manage them). */
export function OrgPage({ orgId }: { orgId: string }) {
  const [org, setOrg] = useState<Org | null>(null)
  const [members, setMembers] = useState<Member[]>([])
  const [invites, setInvites] = useState<Invitation[]>([])
  const [email, setEmail] = useState('')
  const [role, setRole] = useState<Role>('member')
  const [note, setNote] = useState<string | null>(null)
  const manage = org?.role === 'owner' || org?.role === 'admin'

  const reload = async () => {
    const o = await api.get<Org>(`/api/orgs/${orgId}`)
    setOrg(o)
    setMembers((await api.get<{ items: Member[] }>(`/api/orgs/${orgId}/members`)).items)
    if (o.role === 'owner' || o.role === 'admin') {
      setInvites((await api.get<{ items: Invitation[] }>(`/api/orgs/${orgId}/invitations`)).items)
    }
  }
  useEffect(() => {
    reload().catch((e) => setNote(errorText(e)))
  }, [orgId])

  const act = (f: () => Promise<unknown>) => async (e?: Event) => {
    e?.preventDefault()
    setNote(null)
    try {
      await f()
      await reload()
    } catch (err) {
      setNote(errorText(err))
    }
  }

  if (!org) return <main class="dashboard"><p class="muted" aria-busy="true">{note ?? 'Loading…'}</p></main>
  return (
    <main class="dashboard">
      <h1>{org.name}</h1>
      {note && <p class="error" role="alert">{note}</p>}
      <section class="card" aria-labelledby="members-title">
        <h2 id="members-title">Members</h2>
        <table>
          <thead>
            <tr><th>Email</th><th>Role</th><th /></tr>
          </thead>
          <tbody>
            {members.map((m) => (
              <tr>
                <td>{m.email}</td>
                <td>
                  {manage ? (
                    <select
                      aria-label={`Role of ${m.email}`}
                      value={m.role}
                      onChange={(e) => act(() => api.patch(`/api/orgs/${orgId}/members/${m.user_id}`, { role: e.currentTarget.value }))()}
                    >
                      {ROLES.map((r) => <option value={r}>{r}</option>)}
                    </select>
                  ) : (
                    m.role
                  )}
                </td>
                <td>
                  {(manage || m.user_id === me.value?.user.id) && (
                    <button type="button" class="ghost small danger" onClick={act(() => api.del(`/api/orgs/${orgId}/members/${m.user_id}`))}>
                      {m.user_id === me.value?.user.id ? 'Leave' : 'Remove'}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      {manage && (
        <section class="card" aria-labelledby="invite-title">
          <h2 id="invite-title">Invite someone</h2>
          <form class="row" onSubmit={act(async () => { await api.post(`/api/orgs/${orgId}/members`, { email, role }); setEmail('') })}>
            <label>
              Email
              <input type="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
            </label>
            <label>
              Role
              <select value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
                {ROLES.map((r) => <option value={r}>{r}</option>)}
              </select>
            </label>
            <button type="submit" class="primary">Invite</button>
          </form>
          {invites.length > 0 && (
            <ul>
              {invites.map((i) => (
                <li class="row">
                  <span>{i.email} — {i.role}, until {new Date(i.expires_at).toLocaleDateString()}</span>
                  <button type="button" class="ghost small" onClick={act(() => api.del(`/api/orgs/${orgId}/invitations/${i.id}`))}>
                    Revoke
                  </button>
                </li>
              ))}
            </ul>
          )}
        </section>
      )}
    </main>
  )
}
