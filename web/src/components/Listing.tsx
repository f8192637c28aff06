import type { ComponentChildren, JSX } from 'preact'

/** A list that is loading (`null`), empty, or shown by `children`. */
export function Listed<T>({
  items,
  loading,
  empty,
  children,
}: {
  items: T[] | null
  loading: string
  empty: string
  children: (items: T[]) => ComponentChildren
}) {
  if (!items)
    return (
      <p class="muted" aria-busy="true">
        {loading}
      </p>
    )
  if (items.length === 0) return <p class="muted empty">{empty}</p>
  return <>{children(items)}</>
}

/** A table of `rows`, one `row` each, under the column names `head` ('' is an unnamed column). */
export function Table<T>({ head, rows, row }: { head: string[]; rows: T[]; row: (r: T) => JSX.Element }) {
  return (
    <table class="tokens">
      <thead>
        <tr>
          {head.map((h) => (
            <th>{h || <span class="sr-only">Actions</span>}</th>
          ))}
        </tr>
      </thead>
      <tbody>{rows.map(row)}</tbody>
    </table>
  )
}

/** A secret the API shows once: a note, the secret to copy, a Copy button. */
export function SecretOnce({ label, secret, children }: { label: string; secret: string; children: ComponentChildren }) {
  return (
    <div class="card new-token" role="status">
      <p>{children}</p>
      <code class="token-secret" aria-label={label}>
        {secret}
      </code>{' '}
      <button type="button" onClick={() => navigator.clipboard?.writeText(secret)}>
        Copy
      </button>
    </div>
  )
}

/** The error line a page shows when a call fails. */
export function ErrorLine({ error }: { error: string | null }) {
  return error ? (
    <p class="error" role="alert">
      {error}
    </p>
  ) : null
}
