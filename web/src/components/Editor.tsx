import type { Signal } from '@preact/signals'
import { useEffect, useRef, useState } from 'preact/hooks'
import { EditorState, type Extension } from '@codemirror/state'
import { EditorView, keymap, lineNumbers, highlightActiveLine, drawSelection } from '@codemirror/view'
import { defaultKeymap, indentWithTab } from '@codemirror/commands'
import * as Y from 'yjs'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'
import { syntaxHighlighting, bracketMatching, indentOnInput } from '@codemirror/language'
import { kilnHighlight } from '../highlight'
import { javascript } from '@codemirror/lang-javascript'
import { html } from '@codemirror/lang-html'
import { css } from '@codemirror/lang-css'
import { json } from '@codemirror/lang-json'
import { markdown } from '@codemirror/lang-markdown'
import type { Room } from '../room'
import { me } from '../session'
import { SharedFile } from '../collab'

function language(path: string): Extension {
  const ext = path.split('.').pop()?.toLowerCase() ?? ''
  switch (ext) {
    case 'ts':
    case 'mts':
      return javascript({ typescript: true })
    case 'tsx':
      return javascript({ typescript: true, jsx: true })
    case 'js':
    case 'mjs':
    case 'cjs':
    case 'jsx':
      return javascript({ jsx: true })
    case 'html':
    case 'htm':
      return html()
    case 'css':
      return css()
    case 'json':
      return json()
    case 'md':
      return markdown()
    default:
      return []
  }
}

/**
 * CodeMirror on the open file, bound to the file's shared document: everyone with the file
 * open types into the same text at once and sees the others' cursors; every change is stored
 * by the room as it is typed. Never locked by a generation: while the model writes this file
 * its text streams in (read-only until it is written); any other file stays editable.
 */
export function Editor({ room, open, writer }: { room: Room; open: Signal<string | null>; writer: boolean }) {
  const host = useRef<HTMLDivElement>(null)
  const view = useRef<EditorView | null>(null)
  const saveRef = useRef<() => void>(() => {})
  const [status, setStatus] = useState<string>('')
  const [shared, setShared] = useState<SharedFile | null>(null)
  // Bumped to start the document over (after the room refused an update of ours).
  const [round, setRound] = useState(0)
  const path = open.value
  const file = path ? room.files.value.get(path) : undefined
  const streaming = file?.streaming !== undefined
  const binary = !!file?.binary
  const exists = !!file

  const show = (doc: string, extra: Extension[], editable: boolean) => {
    view.current?.setState(
      EditorState.create({
        doc,
        extensions: [
          lineNumbers(),
          drawSelection(),
          highlightActiveLine(),
          indentOnInput(),
          bracketMatching(),
          syntaxHighlighting(kilnHighlight),
          keymap.of([
            // Through a ref: this keymap is made per file, `save` changes with every render.
            { key: 'Mod-s', preventDefault: true, run: () => (saveRef.current(), true) },
            indentWithTab,
            ...yUndoManagerKeymap,
            ...defaultKeymap,
          ]),
          language(path ?? ''),
          EditorView.editable.of(editable),
          EditorState.readOnly.of(!editable),
          EditorView.contentAttributes.of({ 'aria-label': 'Editor' }),
          ...extra,
        ],
      }),
    )
  }

  useEffect(() => {
    view.current = new EditorView({ parent: host.current! })
    return () => view.current?.destroy()
  }, [])

  // An open text file gets its shared document; a file being streamed or binary is shown.
  useEffect(() => {
    if (!path || !exists) {
      show('', [], false)
      setStatus(path ? 'This file was deleted.' : '')
      return
    }
    if (streaming || binary) {
      show(streaming ? (file!.streaming ?? '') : '(binary file)', [], false)
      setStatus('')
      return
    }
    const s = new SharedFile(room, path, me.value?.user.email ?? 'someone', () => setRound((r) => r + 1))
    setShared(s)
    show('', [], false)
    setStatus('Loading…')
    const off = room.onDoc(path, (e) => {
      if (e.type === 'doc_sync' && s.ready.value) setStatus((old) => (old === 'Saving…' ? 'Saved' : old))
    })
    return () => {
      off()
      s.destroy()
      setShared(null)
    }
  }, [path, exists, streaming, binary, round])

  // Once it has the room's text, the editor binds to it.
  const ready = shared?.ready.value ?? false
  useEffect(() => {
    if (!shared || !ready) return
    show(shared.text.toString(), [yCollab(shared.text, shared.awareness, { undoManager: new Y.UndoManager(shared.text) })], writer)
    setStatus(shared.note.value)
  }, [shared, ready, writer])

  // The model's text as it streams in.
  useEffect(
    () =>
      room.onFileChanged((p) => {
        if (p !== open.value) return
        const f = room.files.value.get(p)
        const v = view.current
        if (f?.streaming === undefined || !v) return
        if (v.state.doc.toString() !== f.streaming) v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: f.streaming } })
      }),
    [room],
  )

  // Every keystroke is stored as it is typed; saving asks the room to confirm it has all.
  saveRef.current = save
  function save() {
    if (!shared || !writer) return
    setStatus(shared.sync() ? 'Saving…' : 'Offline: your changes are kept and sent when the connection is back.')
  }
  const note = shared?.note.value

  return (
    <section class="editor" aria-label="Editor region">
      <div class="row editor-bar">
        <code class="small">{path ?? 'No file open'}</code>
        {streaming && <span class="badge">the agent is writing this file</span>}
        <span class="muted small" role="status" aria-live="polite">
          {note || status}
        </span>
        <span class="spacer" />
        {writer && path && (
          <button type="button" onClick={save} disabled={!ready || streaming} title="Every change is saved as you type; Ctrl+S confirms">
            Save
          </button>
        )}
      </div>
      <div class="cm-host" ref={host} aria-label="Editor" />
    </section>
  )
}
