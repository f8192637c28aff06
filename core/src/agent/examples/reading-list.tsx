import { useState } from 'react'
import { usePersistentState } from './lib/persist'

type Book = { id: number; title: string; read: boolean }
type Show = 'all' | 'unread' | 'read'

export default function App() {
  const [books, setBooks] = usePersistentState<Book[]>('books', [])
  const [title, setTitle] = useState('')
  const [show, setShow] = useState<Show>('all')

  function add() {
    const text = title.trim()
    if (!text) return
    setBooks([...books, { id: Date.now(), title: text, read: false }])
    setTitle('')
  }
  const toggle = (id: number) => setBooks(books.map((b) => (b.id === id ? { ...b, read: !b.read } : b)))
  const remove = (id: number) => setBooks(books.filter((b) => b.id !== id))
  const shown = books.filter((b) => (show === 'all' ? true : show === 'unread' ? !b.read : b.read))

  return (
    <main className="mx-auto max-w-md p-6 font-sans">
      <h1 className="mb-4 text-2xl font-bold">Reading list</h1>
      <input
        data-testid="new-book"
        className="w-full rounded border px-3 py-2"
        placeholder="A book to read, then Enter"
        value={title}
        onChange={(e) => setTitle(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter') add()
        }}
      />
      <div className="my-3 flex gap-2">
        {(['all', 'unread', 'read'] as Show[]).map((s) => (
          <button
            key={s}
            data-testid={`show-${s}`}
            className={`rounded px-3 py-1 ${show === s ? 'bg-blue-600 text-white' : 'bg-gray-100'}`}
            onClick={() => setShow(s)}
          >
            {s[0].toUpperCase() + s.slice(1)}
          </button>
        ))}
      </div>
      <ul>
        {shown.map((b) => (
          <li key={b.id} data-testid="book" className="flex items-center gap-2 border-b py-2">
            <input type="checkbox" checked={b.read} onChange={() => toggle(b.id)} />
            <span className={b.read ? 'flex-1 text-gray-400 line-through' : 'flex-1'}>{b.title}</span>
            <button data-testid="remove" className="text-red-600" onClick={() => remove(b.id)}>
              Delete
            </button>
          </li>
        ))}
      </ul>
      <p data-testid="left" className="mt-3 text-sm text-gray-500">
        {books.filter((b) => !b.read).length} left to read
      </p>
    </main>
  )
}
