import { useState } from 'react'
import { usePersistentState } from './lib/persist'

type Log = { id: number; hours: number; activity: string; day: string }

// A bar chart drawn with plain elements (no chart library): each bar's width is its share
// of the largest total.
function Bars({ totals }: { totals: [string, number][] }) {
  const most = Math.max(1, ...totals.map(([, h]) => h))
  return (
    <div data-testid="chart" className="space-y-2">
      {totals.map(([activity, hours]) => (
        <div key={activity} className="flex items-center gap-2">
          <span className="w-24">{activity}</span>
          <div className="h-5 rounded bg-teal-500" style={{ width: `${(hours / most) * 100}%` }} />
          <span>{hours}</span>
        </div>
      ))}
    </div>
  )
}

export default function App() {
  const [logs, setLogs] = usePersistentState<Log[]>('logs', [])
  const [hours, setHours] = useState('')
  const [activity, setActivity] = useState('Reading')
  const [day, setDay] = useState(new Date().toISOString().slice(0, 10))

  function add() {
    const h = parseFloat(hours)
    if (!(h > 0) || !activity.trim()) return
    setLogs([...logs, { id: Date.now(), hours: h, activity: activity.trim(), day }])
    setHours('')
  }
  const byActivity = new Map<string, number>()
  for (const l of logs) byActivity.set(l.activity, (byActivity.get(l.activity) ?? 0) + l.hours)
  const total = logs.reduce((sum, l) => sum + l.hours, 0)

  return (
    <main className="mx-auto max-w-lg space-y-4 p-6 font-sans">
      <h1 className="text-2xl font-bold">Time tracker</h1>
      <div className="flex flex-wrap gap-2">
        <input data-testid="hours" type="number" step="0.25" className="w-24 rounded border px-2 py-1" value={hours} onChange={(e) => setHours(e.target.value)} />
        {/* Typed, with suggestions: a person's own activities are not in any fixed list. */}
        <input data-testid="activity" name="activity" list="activities" placeholder="Activity" className="rounded border px-2 py-1" value={activity} onChange={(e) => setActivity(e.target.value)} />
        <datalist id="activities">
          <option value="Reading" />
          <option value="Sport" />
          <option value="Music" />
        </datalist>
        <input data-testid="day" type="date" className="rounded border px-2 py-1" value={day} onChange={(e) => setDay(e.target.value)} />
        <button data-testid="add" className="rounded bg-teal-600 px-3 py-1 text-white" onClick={add}>
          Add
        </button>
      </div>
      <p data-testid="total">Total: {total.toFixed(2)} h</p>
      <Bars totals={[...byActivity.entries()]} />
    </main>
  )
}
