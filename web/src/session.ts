// Who is signed in. `me` is undefined while it is being asked, null when nobody is.
import { signal } from '@preact/signals'
import type { AuthResponse, MeResponse } from './gen'
import { api, ApiError } from './api'

export const me = signal<MeResponse | null | undefined>(undefined)

export async function loadMe() {
  try {
    me.value = await api.get<MeResponse>('/api/me')
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) me.value = null
    else throw e
  }
}

export async function signIn(email: string, password: string, create: boolean) {
  await api.post<AuthResponse>(create ? '/api/auth/register' : '/api/auth/login', { email, password })
  await loadMe()
}

export async function signOut() {
  await api.post('/api/auth/logout').catch(() => undefined)
  me.value = null
}
