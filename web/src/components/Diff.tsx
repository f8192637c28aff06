import { useEffect, useState } from 'preact/hooks'
import type { VersionDiff } from '../gen'
import { api, errorText } from '../api'

/** What changed from one version to another, file by file, as unified diffs. */
export function Diff({ project, from, to }: { project: string; from: number; to: number }) {
  const [diff, setDiff] = useState<VersionDiff | null>(null)
  const [error, setError] = useState<string | null>(null)
  useEffect(() => {
    setDiff(null)
    api.get<VersionDiff>(`/api/projects/${project}/versions/${from}/diff/${to}`).then(setDiff, (e) =>
      setError(errorText(e)),
    )
  }, [project, from, to])
  if (error) return <p class="error" role="alert">{error}</p>
  if (!diff) return <p class="muted" aria-busy="true">Comparing v{from} with v{to}…</p>
  if (diff.files.length === 0) return <p class="muted">v{from} and v{to} hold the same files.</p>
  return (
    <div class="diff" aria-label={`Changes from version ${from} to version ${to}`}>
      {diff.files.map((f) => (
        <details open>
          <summary>
            <span class={`badge change-${f.change}`}>{f.change}</span> <code>{f.path}</code>
          </summary>
          {f.diff === null ? (
            <p class="muted small">Binary file</p>
          ) : (
            <pre class="unified">
              {f.diff.split('\n').map((line) => (
                <div class={line.startsWith('+') && !line.startsWith('+++') ? 'add' : line.startsWith('-') && !line.startsWith('---') ? 'del' : line.startsWith('@@') ? 'hunk' : ''}>
                  {line || ' '}
                </div>
              ))}
            </pre>
          )}
        </details>
      ))}
    </div>
  )
}
