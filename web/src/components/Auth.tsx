import { useState } from 'preact/hooks'
import { signIn } from '../session'
import { go } from '../router'
import { errorText } from '../api'

export function Auth({ mode }: { mode: 'signin' | 'signup' }) {
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const create = mode === 'signup'

  const submit = async (e: Event) => {
    e.preventDefault()
    setBusy(true)
    setError(null)
    try {
      await signIn(email, password, create)
      go('/')
    } catch (err) {
      setError(errorText(err))
    } finally {
      setBusy(false)
    }
  }

  return (
    <main class="center">
      <form class="card auth" onSubmit={submit} aria-labelledby="auth-title">
        <h1 id="auth-title">
          <span class="logo" aria-hidden="true" /> {create ? 'Create your Kiln account' : 'Sign in to Kiln'}
        </h1>
        <p class="muted">Describe an app in plain words; Kiln plans it, writes it and runs it.</p>
        <label>
          Email
          <input type="email" autocomplete="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input
            type="password"
            autocomplete={create ? 'new-password' : 'current-password'}
            required
            minLength={create ? 10 : undefined}
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        {create && <p class="hint">At least 10 characters.</p>}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {create ? 'Create account' : 'Sign in'}
        </button>
        <p class="muted">
          {create ? 'Have an account? ' : 'New to Kiln? '}
          <a href={create ? '/signin' : '/signup'} onClick={(e) => (e.preventDefault(), go(create ? '/signin' : '/signup'))}>
            {create ? 'Sign in' : 'Create an account'}
          </a>
        </p>
      </form>
    </main>
  )
}
