import { useState } from 'react'

// Results are computed from the inputs on every render: they update as you type, with no
// button. Two fields that show the same amount in two units each update the other.
export default function App() {
  const [bill, setBill] = useState('40')
  const [tip, setTip] = useState('15')
  const [people, setPeople] = useState('2')
  const [grams, setGrams] = useState('100')
  const [ounces, setOunces] = useState((100 / 28.3495).toFixed(2))

  const total = Number(bill) * (1 + Number(tip) / 100)
  const each = Number(people) > 0 ? total / Number(people) : 0

  return (
    <main className="mx-auto max-w-sm space-y-4 p-6 font-sans">
      <h1 className="text-2xl font-bold">Tip calculator</h1>
      <label className="block">
        Bill
        <input data-testid="bill" type="number" className="mt-1 w-full rounded border px-3 py-2" value={bill} onChange={(e) => setBill(e.target.value)} />
      </label>
      <label className="block">
        Tip
        <select data-testid="tip" className="mt-1 w-full rounded border px-3 py-2" value={tip} onChange={(e) => setTip(e.target.value)}>
          <option value="10">10 %</option>
          <option value="15">15 %</option>
          <option value="20">20 %</option>
        </select>
      </label>
      <label className="block">
        People
        <input data-testid="people" type="number" className="mt-1 w-full rounded border px-3 py-2" value={people} onChange={(e) => setPeople(e.target.value)} />
      </label>
      <p data-testid="total">Total: {total.toFixed(2)}</p>
      <p data-testid="each">Each: {each.toFixed(2)}</p>
      <h2 className="pt-4 text-lg font-semibold">Grams ↔ ounces</h2>
      <input
        data-testid="grams"
        type="number"
        className="w-full rounded border px-3 py-2"
        value={grams}
        onChange={(e) => {
          setGrams(e.target.value)
          setOunces((Number(e.target.value) / 28.3495).toFixed(2))
        }}
      />
      <input
        data-testid="ounces"
        type="number"
        className="w-full rounded border px-3 py-2"
        value={ounces}
        onChange={(e) => {
          setOunces(e.target.value)
          setGrams((Number(e.target.value) * 28.3495).toFixed(1))
        }}
      />
    </main>
  )
}
