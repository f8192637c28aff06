import { me, signOut } from '../session'
import { go } from '../router'
import { theme, toggleTheme } from '../theme'

export function TopBar({ children }: { children?: preact.ComponentChildren }) {
  return (
    <header class="topbar">
      <a href="/" class="brand" onClick={(e) => (e.preventDefault(), go('/'))}>
        <span class="logo" aria-hidden="true" /> Kiln
      </a>
      <div class="topbar-middle">{children}</div>
      <button type="button" class="ghost" onClick={toggleTheme} aria-label={`Switch to ${theme.value === 'dark' ? 'light' : 'dark'} theme`}>
        {theme.value === 'dark' ? '☀' : '☾'}
      </button>
      <span class="muted small" title="Signed in as">
        {me.value?.user.email}
      </span>
      <a href="/tokens" class="small" onClick={(e) => (e.preventDefault(), go('/tokens'))}>
        API tokens
      </a>
      <button type="button" class="ghost" onClick={() => signOut().then(() => go('/signin'))}>
        Sign out
      </button>
    </header>
  )
}
