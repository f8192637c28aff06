import { useState } from 'react'
import { usePersistentState } from './lib/persist'

type Entry = { id: number; title: string; body: string }

// Renders a little markup as elements (never as HTML): "# " and "## " lines are headings,
// "- " lines are list items, **word** is bold.
function Rendered({ text }: { text: string }) {
  const bold = (line: string) =>
    line.split(/\*\*(.+?)\*\*/g).map((part, i) => (i % 2 ? <strong key={i}>{part}</strong> : part))
  return (
    <div data-testid="preview" className="prose">
      {text.split('\n').map((line, i) =>
        line.startsWith('## ') ? (
          <h2 key={i} className="text-xl font-semibold">{bold(line.slice(3))}</h2>
        ) : line.startsWith('# ') ? (
          <h1 key={i} className="text-2xl font-bold">{bold(line.slice(2))}</h1>
        ) : line.startsWith('- ') ? (
          <li key={i}>{bold(line.slice(2))}</li>
        ) : (
          <p key={i}>{bold(line)}</p>
        ),
      )}
    </div>
  )
}

export default function App() {
  const [entries, setEntries] = usePersistentState<Entry[]>('entries', [{ id: 1, title: 'First day', body: '# Hello\nA **good** start.' }])
  const [openId, setOpenId] = useState(1)
  const [query, setQuery] = useState('')
  const open = entries.find((e) => e.id === openId)
  const found = entries.filter((e) => e.title.toLowerCase().includes(query.toLowerCase()))
  const change = (patch: Partial<Entry>) => setEntries(entries.map((e) => (e.id === openId ? { ...e, ...patch } : e)))

  function add() {
    const entry = { id: Date.now(), title: 'Untitled', body: '' }
    setEntries([...entries, entry])
    setOpenId(entry.id)
  }

  return (
    <main className="grid min-h-screen grid-cols-[14rem_1fr_1fr] gap-4 p-4 font-sans">
      <aside>
        <input data-testid="search" className="mb-2 w-full rounded border px-2 py-1" placeholder="Search titles" value={query} onChange={(e) => setQuery(e.target.value)} />
        <button data-testid="new-entry" className="mb-2 w-full rounded bg-indigo-600 py-1 text-white" onClick={add}>
          New entry
        </button>
        <ul>
          {found.map((e) => (
            <li key={e.id}>
              <button data-testid="entry" className={`w-full text-left ${e.id === openId ? 'font-bold' : ''}`} onClick={() => setOpenId(e.id)}>
                {e.title}
              </button>
            </li>
          ))}
        </ul>
      </aside>
      {open && (
        <section className="flex flex-col gap-2">
          <input data-testid="title" className="rounded border px-2 py-1" value={open.title} onChange={(e) => change({ title: e.target.value })} />
          <textarea data-testid="body" className="flex-1 rounded border p-2 font-mono" value={open.body} onChange={(e) => change({ body: e.target.value })} />
        </section>
      )}
      {open && <Rendered text={open.body} />}
    </main>
  )
}
