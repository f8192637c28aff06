// The REST client. Same-origin only: the session is the httpOnly `kiln_session` cookie,
// which the browser sends by itself; nothing here ever sees it.
import type { ErrorBody } from './gen'

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public retryAfter?: number,
  ) {
    super(message)
  }
}

/** What a person is told of a failed call: the API's message, or the failure's own. */
export const errorText = (e: unknown) => (e instanceof ApiError ? e.message : String(e))

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE'

async function request<T>(method: Method, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  const init: RequestInit = { method, credentials: 'same-origin', headers: { ...headers } }
  if (body !== undefined) {
    init.body = JSON.stringify(body)
    ;(init.headers as Record<string, string>)['content-type'] = 'application/json'
  }
  let resp: Response
  try {
    resp = await fetch(path, init)
  } catch (e) {
    throw new ApiError(0, 'network', 'Kiln cannot be reached; check your connection')
  }
  if (resp.status === 204) return undefined as T
  const text = await resp.text()
  const json = text ? safeJson(text) : undefined
  if (!resp.ok) {
    const err = (json as ErrorBody | undefined)?.error
    const retry = Number(resp.headers.get('retry-after') ?? '') || undefined
    throw new ApiError(resp.status, err?.code ?? 'error', err?.message ?? `HTTP ${resp.status}`, retry)
  }
  return json as T
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

export const api = {
  get: <T>(path: string) => request<T>('GET', path),
  post: <T>(path: string, body: unknown = {}) => request<T>('POST', path, body),
  patch: <T>(path: string, body: unknown) => request<T>('PATCH', path, body),
  del: <T = void>(path: string, headers?: Record<string, string>) => request<T>('DELETE', path, undefined, headers),
  /** A file's bytes as text, with its rev. */
  async file(project: string, path: string): Promise<{ text: string; rev: number }> {
    const resp = await fetch(`/api/projects/${project}/files/${encodePath(path)}`, { credentials: 'same-origin' })
    if (!resp.ok) throw new ApiError(resp.status, 'file', `${path}: HTTP ${resp.status}`)
    return { text: await resp.text(), rev: Number(resp.headers.get('x-kiln-rev') ?? 0) }
  },
}

/** Each segment percent-encoded, so `#` or `?` in a name cannot end the path. */
export function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/')
}
