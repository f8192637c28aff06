import { useEffect, useMemo, useState } from 'preact/hooks'
import { lazy, Suspense } from 'preact/compat'
import { signal } from '@preact/signals'
import type { Generation, Project } from '../gen'
import { api, errorText } from '../api'
import { Room } from '../room'
import { go } from '../router'
import { TopBar } from './TopBar'
import { Chat } from './Chat'
import { FileTree } from './FileTree'
import { Editor } from './Editor'
import { Preview } from './Preview'
import { Versions } from './Versions'
import { Presence, ConnectionStatus } from './Presence'
import { Console } from './Console'
import { Publish } from './Publish'
import { Problems } from '../problems'

const Terminal = lazy(() => import('./Terminal').then((m) => m.Terminal))

type Pane = 'files' | 'preview' | 'console' | 'terminal' | 'versions'

/** The main screen for one project: chat on the left, files/preview/versions on the right. */
export function Workspace({ projectId }: { projectId: string }) {
  const room = useMemo(() => new Room(projectId), [projectId])
  const openPath = useMemo(() => signal<string | null>(null), [projectId])
  const problems = useMemo(() => new Problems(room), [room])
  const [project, setProject] = useState<Project | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [pane, setPane] = useState<Pane>('preview')

  useEffect(() => () => room.close(), [room])
  useEffect(() => {
    api.get<Project>(`/api/projects/${projectId}`).then(setProject, (e) => setError(errorText(e)))
    api.get<Generation>(`/api/projects/${projectId}/generation`).then(
      (g) => {
        if (g.preview_url && !room.previewUrl.value) room.previewUrl.value = g.preview_url
      },
      () => undefined,
    )
  }, [projectId])
  useEffect(() => {
    const keys = (e: KeyboardEvent) => {
      if (!(e.altKey && e.shiftKey)) return
      const to = ({ F: 'files', P: 'preview', C: 'console', T: 'terminal', V: 'versions' } as Record<string, Pane>)[e.key.toUpperCase()]
      if (to) {
        e.preventDefault()
        setPane(to)
      }
    }
    addEventListener('keydown', keys)
    return () => removeEventListener('keydown', keys)
  }, [])

  if (error) {
    return (
      <div class="page">
        <TopBar />
        <main class="center">
          <p class="error" role="alert">{error}</p>
          <button type="button" onClick={() => go('/')}>Back to projects</button>
        </main>
      </div>
    )
  }
  const writer = project ? project.role !== 'client' : false
  const tab = (id: Pane, label: string, count = 0) => (
    <button type="button" role="tab" aria-selected={pane === id} aria-controls={`pane-${id}`} id={`tab-${id}`} onClick={() => setPane(id)}>
      {label}
      {count > 0 && (
        <span class="badge bad" aria-label={`${count} problems`}>
          {count}
        </span>
      )}
    </button>
  )
  return (
    <div class="page workspace-page">
      <TopBar>
        <strong class="project-name">{project?.name ?? '…'}</strong>
        <ConnectionStatus room={room} />
        <Presence room={room} />
        <Publish room={room} writer={writer} />
        {(project?.role === 'owner' || project?.role === 'admin') && (
          <a href={`/projects/${projectId}/webhooks`} class="small" onClick={(e) => (e.preventDefault(), go(`/projects/${projectId}/webhooks`))}>
            Webhooks
          </a>
        )}
      </TopBar>
      <div class="workspace">
        <Chat room={room} writer={writer} />
        <section class="main-pane">
          <div role="tablist" aria-label="Workspace panes" class="tabs">
            {tab('files', 'Files')}
            {tab('preview', 'Preview')}
            {tab('console', 'Console', problems.all.value.length)}
            {writer && tab('terminal', 'Terminal')}
            {tab('versions', 'Versions')}
          </div>
          <div id="pane-files" role="tabpanel" aria-labelledby="tab-files" class="pane files-pane" hidden={pane !== 'files'}>
            <FileTree room={room} open={openPath} writer={writer} />
            <Editor room={room} open={openPath} writer={writer} />
          </div>
          <div id="pane-preview" role="tabpanel" aria-labelledby="tab-preview" class="pane" hidden={pane !== 'preview'}>
            <Preview room={room} problems={problems} writer={writer} />
          </div>
          <div id="pane-console" role="tabpanel" aria-labelledby="tab-console" class="pane" hidden={pane !== 'console'}>
            <Console room={room} problems={problems} writer={writer} />
          </div>
          {writer && (
            <div id="pane-terminal" role="tabpanel" aria-labelledby="tab-terminal" class="pane" hidden={pane !== 'terminal'}>
              {pane === 'terminal' && (
                <Suspense fallback={<p class="muted pad">Loading the terminal…</p>}>
                  <Terminal room={room} />
                </Suspense>
              )}
            </div>
          )}
          <div id="pane-versions" role="tabpanel" aria-labelledby="tab-versions" class="pane" hidden={pane !== 'versions'}>
            {pane === 'versions' && <Versions room={room} writer={writer} />}
          </div>
        </section>
      </div>
    </div>
  )
}
