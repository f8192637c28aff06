import { useEffect } from 'preact/hooks'
import { route, go } from '../router'
import { me, loadMe } from '../session'
import { Auth } from './Auth'
import { Dashboard } from './Dashboard'
import { Workspace } from './Workspace'
import { OrgPage } from './OrgPage'
import { Tokens } from './Tokens'
import { Usage } from './Usage'
import { Webhooks } from './Webhooks'
import { TopBar } from './TopBar'

export function App() {
  useEffect(() => {
    loadMe().catch(() => (me.value = null))
  }, [])
  const path = route.value
  if (me.value === undefined) {
    return (
      <main class="center" aria-busy="true">
        <p class="muted">Loading Kiln…</p>
      </main>
    )
  }
  if (me.value === null) {
    if (path !== '/signin' && path !== '/signup') queueMicrotask(() => go('/signin', true))
    return <Auth mode={path === '/signup' ? 'signup' : 'signin'} />
  }
  if (path === '/signin' || path === '/signup') queueMicrotask(() => go('/', true))
  const project = path.match(/^\/projects\/(p_[0-9a-f]{32})\/?$/)
  if (project) return <Workspace projectId={project[1]} />
  const org = path.match(/^\/orgs\/(o_[0-9a-f]{32})\/?$/)
  const usage = path.match(/^\/orgs\/(o_[0-9a-f]{32})\/usage\/?$/)
  const hooks = path.match(/^\/projects\/(p_[0-9a-f]{32})\/webhooks\/?$/)
  return (
    <div class="page">
      <TopBar />
      {org ? (
        <OrgPage orgId={org[1]} />
      ) : usage ? (
        <Usage orgId={usage[1]} />
      ) : hooks ? (
        <Webhooks projectId={hooks[1]} />
      ) : path === '/tokens' ? (
        <Tokens />
      ) : (
        <Dashboard />
      )}
    </div>
  )
}
