import { useState } from 'react'
import { usePersistentState } from './lib/persist'

type Guest = { id: number; name: string; table: string }
const TABLES = ['Unseated', 'Table 1', 'Table 2']

// Drag and drop with the browser's own events: draggable items carry their id in
// dataTransfer; a drop target must call preventDefault in onDragOver to accept a drop.
export default function App() {
  const [guests, setGuests] = usePersistentState<Guest[]>('guests', [])
  const [name, setName] = useState('')
  const [editing, setEditing] = useState<number | null>(null)

  const move = (id: number, table: string) => setGuests(guests.map((g) => (g.id === id ? { ...g, table } : g)))
  const rename = (id: number, newName: string) => setGuests(guests.map((g) => (g.id === id ? { ...g, name: newName } : g)))
  function add() {
    if (!name.trim()) return
    setGuests([...guests, { id: Date.now(), name: name.trim(), table: TABLES[0] }])
    setName('')
  }

  return (
    <main className="p-6 font-sans">
      <h1 className="mb-4 text-2xl font-bold">Seating plan</h1>
      <div className="mb-4 flex gap-2">
        <input data-testid="guest-name" className="rounded border px-3 py-2" value={name} onChange={(e) => setName(e.target.value)} onKeyDown={(e) => e.key === 'Enter' && add()} placeholder="Guest name" />
        <button data-testid="add-guest" className="rounded bg-rose-600 px-4 py-2 text-white" onClick={add}>
          Add guest
        </button>
      </div>
      <div className="grid grid-cols-3 gap-4">
        {TABLES.map((table) => (
          <section
            key={table}
            data-testid={`table-${table}`}
            className="min-h-40 rounded bg-rose-50 p-3"
            onDragOver={(e) => e.preventDefault()}
            onDrop={(e) => move(Number(e.dataTransfer.getData('text/plain')), table)}
          >
            <h2 className="mb-2 font-semibold">{table}</h2>
            {guests
              .filter((g) => g.table === table)
              .map((g) => (
                <div
                  key={g.id}
                  data-testid="guest"
                  draggable
                  onDragStart={(e) => e.dataTransfer.setData('text/plain', String(g.id))}
                  className="mb-2 cursor-move rounded bg-white p-2 shadow"
                  onDoubleClick={() => setEditing(g.id)}
                >
                  {editing === g.id ? (
                    <input autoFocus className="w-full" value={g.name} onChange={(e) => rename(g.id, e.target.value)} onBlur={() => setEditing(null)} />
                  ) : (
                    g.name
                  )}
                </div>
              ))}
          </section>
        ))}
      </div>
    </main>
  )
}
