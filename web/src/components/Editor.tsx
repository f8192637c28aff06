import type { Signal } from '@preact/signals'
import { useEffect, useRef, useState } from 'preact/hooks'
import { EditorState, Compartment, type Extension } from '@codemirror/state'
import { EditorView, keymap, lineNumbers, highlightActiveLine, drawSelection } from '@codemirror/view'
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands'
import { syntaxHighlighting, bracketMatching, indentOnInput } from '@codemirror/language'
import { kilnHighlight } from '../highlight'
import { javascript } from '@codemirror/lang-javascript'
import { html } from '@codemirror/lang-html'
import { css } from '@codemirror/lang-css'
import { json } from '@codemirror/lang-json'
import { markdown } from '@codemirror/lang-markdown'
import type { Room } from '../room'
import { api } from '../api'
import { me } from '../session'

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
 * CodeMirror on the open file. Never locked by a generation: while the model writes this
 * file its text streams in; any other file stays editable. Saving goes through the room with
 * the rev the text was based on; a rejected save shows the current content, and what was
 * typed is kept until the person chooses.
 */
export function Editor({ room, open, writer }: { room: Room; open: Signal<string | null>; writer: boolean }) {
  const host = useRef<HTMLDivElement>(null)
  const view = useRef<EditorView | null>(null)
  const lang = useRef(new Compartment())
  const editable = useRef(new Compartment())
  const base = useRef<{ path: string; rev: number; text: string } | null>(null)
  const saveRef = useRef<() => void>(() => {})
  const [dirty, setDirty] = useState(false)
  const [status, setStatus] = useState<string>('')
  const [theirs, setTheirs] = useState<{ rev: number; text: string; by?: string } | null>(null)
  const path = open.value

  const setText = (text: string) => {
    const v = view.current
    if (!v || v.state.doc.toString() === text) return
    v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: text } })
  }

  useEffect(() => {
    const v = new EditorView({
      parent: host.current!,
      state: EditorState.create({
        doc: '',
        extensions: [
          lineNumbers(),
          history(),
          drawSelection(),
          highlightActiveLine(),
          indentOnInput(),
          bracketMatching(),
          syntaxHighlighting(kilnHighlight),
          keymap.of([
            // Through a ref: this keymap is made once, `save` changes with every render.
            { key: 'Mod-s', preventDefault: true, run: () => (saveRef.current(), true) },
            indentWithTab,
            ...defaultKeymap,
            ...historyKeymap,
          ]),
          lang.current.of([]),
          editable.current.of(EditorView.editable.of(false)),
          EditorView.updateListener.of((u) => {
            if (u.docChanged && base.current) setDirty(u.state.doc.toString() !== base.current.text)
          }),
          EditorView.contentAttributes.of({ 'aria-label': 'Editor' }),
        ],
      }),
    })
    view.current = v
    return () => v.destroy()
  }, [])

  // Opening a file: its known content, or fetch it.
  useEffect(() => {
    setTheirs(null)
    setDirty(false)
    setStatus('')
    if (!path) {
      base.current = null
      setText('')
      return
    }
    view.current?.dispatch({ effects: lang.current.reconfigure(language(path)) })
    const f = room.files.value.get(path)
    const show = (text: string, rev: number) => {
      base.current = { path, rev, text }
      setText(text)
      setDirty(false)
    }
    if (f?.streaming !== undefined) show(f.streaming, f.rev)
    else if (f?.content !== undefined) show(f.content, f.rev)
    else if (f?.binary) show('(binary file)', f.rev)
    else if (f) {
      setStatus('Loading…')
      api.file(room.projectId, path).then(
        (r) => (open.value === path ? (show(r.text, r.rev), setStatus('')) : undefined),
        (e) => setStatus(String(e.message ?? e)),
      )
    }
  }, [path])

  // Live changes to the open file.
  useEffect(
    () =>
      room.onFileChanged((p) => {
        if (p !== open.value) return
        const f = room.files.value.get(p)
        if (!f) {
          setStatus('This file was deleted.')
          return
        }
        if (f.streaming !== undefined) {
          base.current = { path: p, rev: f.rev, text: f.streaming }
          setText(f.streaming)
          return
        }
        if (f.content === undefined || !base.current || f.rev === base.current.rev) return
        const mine = view.current?.state.doc.toString() ?? ''
        if (mine === base.current.text || mine === f.content) {
          base.current = { path: p, rev: f.rev, text: f.content }
          setText(f.content)
          setDirty(false)
          setStatus(mine === f.content ? 'Saved' : '')
          setTheirs(null)
        } else {
          // Someone else changed it under unsaved typing: keep both, let the person choose.
          setTheirs({ rev: f.rev, text: f.content })
        }
      }),
    [room],
  )

  // A save of ours that lost a race: show theirs; keep ours.
  const rejected = room.rejected.value
  useEffect(() => {
    if (rejected && rejected.path === open.value && rejected.encoding !== 'base64') {
      setTheirs({ rev: rejected.current_rev, text: rejected.content ?? '' })
      setStatus('Not saved: the file changed since you opened it.')
      room.rejected.value = null
    }
  }, [rejected])

  const streaming = path ? room.files.value.get(path)?.streaming !== undefined : false
  const canEdit = writer && !!path && !streaming
  useEffect(() => {
    view.current?.dispatch({ effects: editable.current.reconfigure(EditorView.editable.of(canEdit)) })
  }, [canEdit])

  saveRef.current = save
  function save() {
    const v = view.current
    const b = base.current
    if (!v || !b || !writer) return
    const content = v.state.doc.toString()
    if (room.send({ type: 'edit', path: b.path, base_rev: b.rev, content })) setStatus('Saving…')
    else setStatus('Not connected: not saved yet. Your text stays here.')
  }
  const useTheirs = () => {
    if (!theirs || !path) return
    base.current = { path, rev: theirs.rev, text: theirs.text }
    setText(theirs.text)
    setDirty(false)
    setTheirs(null)
    setStatus('')
  }
  const keepMine = () => {
    if (!theirs || !path) return
    base.current = { path, rev: theirs.rev, text: theirs.text }
    setTheirs(null)
    save()
  }

  return (
    <section class="editor" aria-label="Editor region">
      <div class="row editor-bar">
        <code class="small">{path ?? 'No file open'}</code>
        {streaming && <span class="badge">the agent is writing this file</span>}
        {dirty && <span class="badge">unsaved</span>}
        <span class="muted small" role="status" aria-live="polite">{status}</span>
        <span class="spacer" />
        {writer && path && (
          <button type="button" onClick={save} disabled={!dirty || streaming} title="Save (Ctrl+S)">
            Save
          </button>
        )}
      </div>
      {theirs && (
        <div class="conflict" role="alert">
          <p>
            {me.value ? 'Someone else' : 'Another editor'} saved a newer version of this file. Your text is kept below.
          </p>
          <details>
            <summary>Their version (rev {theirs.rev})</summary>
            <pre>{theirs.text}</pre>
          </details>
          <button type="button" onClick={useTheirs}>Use theirs</button>{' '}
          <button type="button" class="primary" onClick={keepMine}>Keep mine and save</button>
        </div>
      )}
      <div class="cm-host" ref={host} aria-label="Editor" />
    </section>
  )
}
