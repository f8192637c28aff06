import { useState, type FormEvent } from 'react'

type Errors = { name?: string; email?: string }

function Hero() {
  return (
    <section className="bg-amber-100 px-6 py-16 text-center">
      <h1 className="text-4xl font-bold text-amber-900">Hilltop Yoga</h1>
      <p className="mt-2 text-amber-800">Morning classes for every level.</p>
      <a href="#join" className="mt-6 inline-block rounded-full bg-amber-700 px-6 py-3 text-white">
        Book a free class
      </a>
    </section>
  )
}

const CLASSES = [
  { name: 'Sunrise flow', price: '€12' },
  { name: 'Gentle stretch', price: '€10' },
]

export default function App() {
  const [name, setName] = useState('')
  const [email, setEmail] = useState('')
  const [note, setNote] = useState('')
  const [errors, setErrors] = useState<Errors>({})
  const [sent, setSent] = useState(false)

  function submit(e: FormEvent) {
    e.preventDefault()
    const found: Errors = {}
    if (!name.trim()) found.name = 'Please enter your name.'
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) found.email = 'Please enter a valid email.'
    setErrors(found)
    setSent(Object.keys(found).length === 0)
  }

  return (
    <div className="font-sans text-stone-800">
      <Hero />
      <section className="mx-auto max-w-xl px-6 py-10">
        <h2 className="mb-4 text-2xl font-semibold">Classes</h2>
        <ul>
          {CLASSES.map((c) => (
            <li key={c.name} className="flex justify-between border-b py-2">
              <span>{c.name}</span>
              <span>{c.price}</span>
            </li>
          ))}
        </ul>
        <p className="mt-4">Open Mon–Fri 7:00–12:00</p>
      </section>
      <form id="join" noValidate onSubmit={submit} className="mx-auto max-w-xl space-y-3 px-6 pb-16">
        <h2 className="text-2xl font-semibold">Join us</h2>
        <label className="block">
          Name
          <input data-testid="name" name="name" aria-invalid={!!errors.name} className="mt-1 w-full rounded border px-3 py-2" value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        {errors.name && <p className="text-red-600">{errors.name}</p>}
        <label className="block">
          Email
          <input data-testid="email" name="email" type="email" aria-invalid={!!errors.email} className="mt-1 w-full rounded border px-3 py-2" value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        {errors.email && <p className="text-red-600">{errors.email}</p>}
        <label className="block">
          Anything we should know?
          <textarea data-testid="note" name="note" className="mt-1 w-full rounded border px-3 py-2" value={note} onChange={(e) => setNote(e.target.value)} />
        </label>
        <button type="submit" data-testid="send" className="rounded bg-amber-700 px-5 py-2 text-white">
          Send
        </button>
        {sent && <p data-testid="thanks">Thanks, {name}! We will write to you soon.</p>}
      </form>
    </div>
  )
}
