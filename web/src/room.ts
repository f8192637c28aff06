// A project's room over WebSocket: the files, the agent's timeline, presence and the preview,
// kept current by the room's sequenced events. On connect it asks for the whole log
// (`hello {last_seq: 0}`), so a reload rebuilds exactly what a client that stayed connected
// has; after a drop it asks only for what it missed. Contents the log no longer holds come
// over REST.
import { batch, signal } from '@preact/signals'
import type { Blueprint, ClientMsg, PresenceUser, Sequenced, ServerEvent, Site, VersionInfo } from './gen'

export type Connection = 'connecting' | 'live' | 'reconnecting' | 'closed'

export interface FileState {
  path: string
  rev: number
  size: number
  /** Known content (from an event or REST); undefined until loaded. */
  content?: string
  binary?: boolean
  /** While the model writes it: what it has written so far. */
  streaming?: string
}

type Ev<T extends ServerEvent['type']> = Extract<ServerEvent, { type: T }> & { seq: number }

const TERMINAL = new Set(['done', 'failed', 'cancelled'])

export class Room {
  readonly connection = signal<Connection>('connecting')
  readonly connectionNote = signal('')
  readonly files = signal<ReadonlyMap<string, FileState>>(new Map())
  /** Every event worth showing, in order (chunks are folded into their file). */
  readonly timeline = signal<readonly Sequenced[]>([])
  readonly presence = signal<readonly PresenceUser[]>([])
  readonly blueprint = signal<Blueprint | null>(null)
  readonly step = signal('')
  readonly running = signal(false)
  readonly previewUrl = signal<string | null>(null)
  /** The project's published site (`GET …/publish`, then `site` events). */
  readonly site = signal<Site | null>(null)
  /** Counts what changed the running app: versions, and files a person's edits wrote to the
   * sandbox between generations (`files_written` while no generation runs). */
  readonly appChanges = signal(0)
  readonly versions = signal<readonly VersionInfo[]>([])
  readonly rejected = signal<Ev<'edit_rejected'> | null>(null)
  readonly lastError = signal<string | null>(null)

  private ws: WebSocket | null = null
  private lastSeq = 0
  private retries = 0
  private stopped = false
  private timer: ReturnType<typeof setTimeout> | undefined
  private fileListeners = new Set<(path: string) => void>()
  private docListeners = new Map<string, Set<(ev: any) => void>>()
  private liveListeners = new Set<() => void>()

  constructor(readonly projectId: string) {
    this.connect()
    addEventListener('online', this.onOnline)
  }

  close() {
    this.stopped = true
    clearTimeout(this.timer)
    clearTimeout(this.flushing)
    removeEventListener('online', this.onOnline)
    this.ws?.close(1000, 'bye')
  }

  /** Sends a message if the socket is live; false if not (the caller keeps its state). */
  send(msg: ClientMsg): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN || this.connection.value !== 'live') return false
    this.ws.send(JSON.stringify(msg))
    return true
  }

  /** Events of one file's shared document (`doc_*`, cursors). */
  onDoc(path: string, fn: (ev: any) => void): () => void {
    const set = this.docListeners.get(path) ?? new Set()
    set.add(fn)
    this.docListeners.set(path, set)
    return () => set.delete(fn)
  }

  /** Called each time the socket goes live again (after a reconnect or a resync). */
  onLive(fn: () => void): () => void {
    this.liveListeners.add(fn)
    return () => this.liveListeners.delete(fn)
  }

  private goLive() {
    const was = this.connection.value
    this.connection.value = 'live'
    this.connectionNote.value = ''
    if (was !== 'live') for (const fn of this.liveListeners) fn()
  }

  private toDoc(path: string, ev: unknown) {
    for (const fn of this.docListeners.get(path) ?? []) fn(ev)
  }

  onFileChanged(fn: (path: string) => void): () => void {
    this.fileListeners.add(fn)
    return () => this.fileListeners.delete(fn)
  }

  private onOnline = () => {
    if (this.connection.value === 'reconnecting') {
      clearTimeout(this.timer)
      this.connect()
    }
  }

  private connect() {
    if (this.stopped) return
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:'
    const ws = new WebSocket(`${proto}//${location.host}/api/projects/${this.projectId}/ws`)
    this.ws = ws
    ws.onopen = () => {
      this.retries = 0
      ws.send(JSON.stringify({ type: 'hello', last_seq: this.lastSeq } satisfies ClientMsg))
    }
    ws.onmessage = (m) => {
      let ev: Sequenced
      try {
        ev = JSON.parse(String(m.data))
      } catch {
        return
      }
      this.apply(ev)
    }
    ws.onclose = (e) => {
      if (this.ws !== ws) return
      this.ws = null
      if (this.stopped) return
      if (e.code === 4003) {
        this.connection.value = 'closed'
        this.connectionNote.value = e.reason || 'your access to this project ended'
        return
      }
      this.connection.value = 'reconnecting'
      const wait = Math.min(8000, 500 * 2 ** this.retries++)
      this.connectionNote.value = navigator.onLine ? `reconnecting in ${Math.round(wait / 1000)} s` : 'offline'
      this.timer = setTimeout(() => this.connect(), wait)
    }
  }

  private changed(path: string) {
    for (const fn of this.fileListeners) fn(path)
  }

  /** A step ends with its files closed; a file still streaming then was abandoned (a cut or
   * looping answer, a cancel) and never stored: it shows as it was before. */
  private dropUnfinishedStreams() {
    for (const [path, f] of this.files.value) {
      if (f.streaming === undefined) continue
      this.setFile(path, f.rev === 0 ? null : { ...f, streaming: undefined })
      this.changed(path)
    }
  }

  private setFile(path: string, f: FileState | null) {
    const next = new Map(this.files.value)
    if (f) next.set(path, f)
    else next.delete(path)
    this.files.value = next
  }

  /** Appended in place; `timeline` gets a new array at most once a frame, so replaying a
   * long log costs linear time rather than a copy per event. */
  private events: Sequenced[] = []
  private flushing: ReturnType<typeof setTimeout> | undefined

  private log(ev: Sequenced) {
    this.events.push(ev)
    this.flushing ??= setTimeout(() => {
      this.flushing = undefined
      this.timeline.value = this.events.slice()
    }, 16)
  }

  private apply(ev: Sequenced) {
    if (ev.seq > this.lastSeq && ev.type !== 'state') this.lastSeq = ev.seq
    batch(() => this.applyEvent(ev))
  }

  private applyEvent(ev: Sequenced) {
    const e = ev as Sequenced & Record<string, any>
    switch (ev.type) {
      case 'state': {
        const s = ev as Ev<'state'>
        this.lastSeq = Math.max(this.lastSeq, s.head_seq)
        const next = new Map<string, FileState>()
        for (const f of s.files) {
          const old = this.files.value.get(f.path)
          next.set(f.path, old && old.rev === f.rev ? old : { path: f.path, rev: f.rev, size: f.size })
        }
        this.files.value = next
        this.presence.value = s.presence
        this.goLive()
        for (const p of next.keys()) this.changed(p)
        return
      }
      case 'presence':
        this.presence.value = (ev as Ev<'presence'>).users
        this.goLive()
        return
      case 'resync_required':
        this.lastSeq = 0
        return
      case 'file_start': {
        const old = this.files.value.get(e.path)
        this.setFile(e.path, { path: e.path, rev: old?.rev ?? 0, size: old?.size ?? 0, content: old?.content, streaming: '' })
        this.log(ev)
        this.changed(e.path)
        return
      }
      case 'file_chunk': {
        const old = this.files.value.get(e.path)
        if (!old) return
        this.setFile(e.path, { ...old, streaming: (old.streaming ?? '') + e.chunk })
        this.changed(e.path)
        return
      }
      case 'file_end': {
        const old = this.files.value.get(e.path)
        if (old) this.setFile(e.path, { ...old, streaming: undefined })
        this.log(ev)
        this.changed(e.path)
        return
      }
      case 'file_edited': {
        const binary = e.encoding === 'base64'
        this.setFile(e.path, {
          path: e.path,
          rev: e.rev,
          size: binary ? Math.floor((e.content.length * 3) / 4) : new TextEncoder().encode(e.content).length,
          content: binary ? undefined : e.content,
          binary,
        })
        this.log(ev)
        this.changed(e.path)
        return
      }
      case 'file_deleted':
        this.setFile(e.path, null)
        this.log(ev)
        this.changed(e.path)
        return
      case 'file_renamed': {
        const old = this.files.value.get(e.from)
        this.setFile(e.from, null)
        this.setFile(e.to, { ...(old ?? { size: 0 }), path: e.to, rev: e.rev })
        this.log(ev)
        this.changed(e.from)
        this.changed(e.to)
        return
      }
      case 'doc_update': {
        // Typing lives in the document of whoever has the file open; the others keep the
        // file's rev and size, and fetch its text when they open it.
        const old = this.files.value.get(e.path)
        if (old) this.setFile(e.path, { ...old, rev: e.rev, size: e.size, content: undefined })
        this.toDoc(e.path, ev)
        return
      }
      case 'doc_sync':
      case 'doc_rejected':
      case 'awareness':
        this.toDoc(e.path, ev)
        return
      case 'awareness_gone':
        for (const p of this.docListeners.keys()) this.toDoc(p, ev)
        return
      case 'edit_rejected':
        this.rejected.value = ev as Ev<'edit_rejected'>
        return
      case 'files_written':
        if (!this.running.value) this.appChanges.value++
        this.log(ev)
        return
      case 'version_created':
        this.appChanges.value++
        this.versions.value = [(ev as Ev<'version_created'>).version, ...this.versions.value]
        this.log(ev)
        return
      case 'state_change':
        this.step.value = e.step
        this.running.value = !TERMINAL.has(e.step)
        this.dropUnfinishedStreams()
        this.log(ev)
        return
      case 'blueprint':
        this.blueprint.value = e.blueprint
        this.log(ev)
        return
      case 'server_started':
        this.previewUrl.value = e.preview_url
        this.log(ev)
        return
      case 'site':
        this.site.value = e.site
        this.log(ev)
        return
      case 'generation_complete':
        this.running.value = false
        this.log(ev)
        return
      case 'error':
        this.lastError.value = e.message
        this.log(ev)
        return
      default:
        this.log(ev)
    }
  }
}
