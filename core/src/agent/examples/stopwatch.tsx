import { useEffect, useState } from 'react'

const pad = (n: number) => String(n).padStart(2, '0')
const clock = (secs: number) => `${pad(Math.floor(secs / 60))}:${pad(secs % 60)}`

export default function App() {
  const [secs, setSecs] = useState(0)
  const [running, setRunning] = useState(false)
  const [laps, setLaps] = useState<number[]>([])

  // One interval while running; cleared on pause and when the component goes.
  useEffect(() => {
    if (!running) return
    const id = setInterval(() => setSecs((s) => s + 1), 1000)
    return () => clearInterval(id)
  }, [running])

  return (
    <main className="flex min-h-screen flex-col items-center justify-center gap-6 bg-slate-900 font-sans text-white">
      <h1 className="text-xl">Stopwatch</h1>
      <p data-testid="time" className="font-mono text-7xl">
        {clock(secs)}
      </p>
      <div className="flex gap-3">
        <button data-testid="start" className="rounded bg-emerald-500 px-4 py-2" onClick={() => setRunning(true)}>
          Start
        </button>
        <button data-testid="pause" className="rounded bg-amber-500 px-4 py-2" onClick={() => setRunning(false)}>
          Pause
        </button>
        <button data-testid="lap" className="rounded bg-sky-500 px-4 py-2" onClick={() => setLaps([...laps, secs])}>
          Lap
        </button>
        <button
          data-testid="reset"
          className="rounded bg-slate-600 px-4 py-2"
          onClick={() => {
            setRunning(false)
            setSecs(0)
            setLaps([])
          }}
        >
          Reset
        </button>
      </div>
      <p data-testid="laps">Laps: {laps.length}</p>
      <ol>
        {laps.map((l, i) => (
          <li key={i}>{clock(l)}</li>
        ))}
      </ol>
    </main>
  )
}
