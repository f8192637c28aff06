// One open text file as a shared Yjs document, kept in step with the room's copy: the room
// applies every update (it is the one writer), stores the text and sends each update to
// everyone with a seq. This side sends its person's changes as they type, applies the
// others', and shows where everyone's cursor is. After a reconnect (or a refused update) it
// syncs again by state vector, so nothing typed offline is lost and nothing refused lingers.
import * as Y from 'yjs'
import { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate, removeAwarenessStates } from 'y-protocols/awareness'
import { signal } from '@preact/signals'
import type { Room } from './room'
import type { Sequenced } from './gen'

export const TEXT = 'content'
const FROM_ROOM = 'room'

const b64 = {
  encode(bytes: Uint8Array): string {
    let s = ''
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
    return btoa(s)
  },
  decode(text: string): Uint8Array {
    const s = atob(text)
    const out = new Uint8Array(s.length)
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i)
    return out
  },
}

/** A person's colour: from their email, dark enough for white text on it (WCAG AA). */
export function colourOf(email: string): { color: string; colorLight: string } {
  let h = 0
  for (const c of email) h = (h * 31 + c.charCodeAt(0)) >>> 0
  const hue = h % 360
  return { color: `hsl(${hue} 70% 32%)`, colorLight: `hsl(${hue} 70% 45% / 0.25)` }
}

type Ev = Sequenced & Record<string, any>

export class SharedFile {
  readonly doc = new Y.Doc()
  readonly text = this.doc.getText(TEXT)
  readonly awareness = new Awareness(this.doc)
  /** Synced with the room at least once: the text is the file's. */
  readonly ready = signal(false)
  readonly note = signal('')
  private epoch = 0
  private off: Array<() => void> = []
  private closed = false

  constructor(
    private readonly room: Room,
    readonly path: string,
    me: string,
    private readonly onReset: () => void,
  ) {
    this.awareness.setLocalStateField('user', { name: me, ...colourOf(me) })
    this.doc.on('update', this.onLocal)
    this.awareness.on('update', this.onAwareness)
    this.off.push(room.onDoc(path, this.onEvent), room.onLive(() => this.sync()))
    this.sync()
  }

  destroy() {
    this.closed = true
    for (const off of this.off) off()
    removeAwarenessStates(this.awareness, [this.doc.clientID], 'local')
    this.awareness.destroy()
    this.doc.destroy()
  }

  /** Asks the room for what this copy lacks; the reply also says what the room lacks. */
  sync(): boolean {
    if (this.closed) return false
    return this.room.send({ type: 'doc_sync', path: this.path, state_vector: b64.encode(Y.encodeStateVector(this.doc)) })
  }

  private onLocal = (update: Uint8Array, origin: unknown) => {
    if (origin === FROM_ROOM || !this.ready.value) return
    // Not connected: it stays in the document, and the sync after reconnecting sends it.
    if (this.room.send({ type: 'doc_update', path: this.path, doc: this.epoch, update: b64.encode(update) })) this.note.value = ''
    else this.note.value = 'Offline: your changes are kept and sent when the connection is back.'
  }

  private onAwareness = ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }, origin: unknown) => {
    if (origin !== 'local' || !this.ready.value) return
    const changed = [...added, ...updated, ...removed].filter((id) => id === this.doc.clientID)
    if (changed.length === 0) return
    this.room.send({
      type: 'awareness',
      path: this.path,
      client_id: this.doc.clientID,
      update: b64.encode(encodeAwarenessUpdate(this.awareness, changed)),
    })
  }

  private onEvent = (e: Ev) => {
    switch (e.type) {
      case 'doc_sync': {
        if (this.epoch && e.doc !== this.epoch) {
          // The room's document was made anew (the file was replaced): start over from it.
          this.onReset()
          return
        }
        this.epoch = e.doc
        Y.applyUpdate(this.doc, b64.decode(e.update), FROM_ROOM)
        const lacking = Y.encodeStateAsUpdate(this.doc, b64.decode(e.state_vector))
        const wasReady = this.ready.value
        this.ready.value = true
        // An update with no structs and no deletions is 2 bytes: nothing to send.
        if (lacking.length > 2) this.room.send({ type: 'doc_update', path: this.path, doc: this.epoch, update: b64.encode(lacking) })
        if (!wasReady) this.awareness.setLocalStateField('cursor', null)
        return
      }
      case 'doc_update':
        if (e.doc === this.epoch) Y.applyUpdate(this.doc, b64.decode(e.update), FROM_ROOM)
        return
      case 'doc_rejected':
        this.note.value = `Not saved: ${e.message}`
        this.onReset()
        return
      case 'awareness': {
        applyAwarenessUpdate(this.awareness, b64.decode(e.update), FROM_ROOM)
        // The name shown is the one the room vouches for, not what the update claims.
        const state = this.awareness.getStates().get(e.client_id)
        if (state) {
          state.user = { name: e.by, ...colourOf(e.by) }
          this.awareness.emit('change', [{ added: [], updated: [e.client_id], removed: [] }, FROM_ROOM])
        }
        return
      }
      case 'awareness_gone':
        removeAwarenessStates(this.awareness, e.client_ids, FROM_ROOM)
        return
    }
  }
}
