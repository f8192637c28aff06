export default function App() {
  return (
    <main className="min-h-screen flex items-center justify-center bg-slate-50">
      <h1 className="text-3xl font-semibold text-slate-800">Hello from Kiln</h1>
    </main>
  )
}
