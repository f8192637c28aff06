// Injected by Kiln into every page of a preview (served on the preview's own origin). It
// tells the Kiln UI that frames the preview what went wrong in the running app: uncaught
// errors, rejected promises, console.error, and which path is shown. It only posts messages
// to Kiln's origin; it reads nothing and can be removed by the app without harm.
;(() => {
  const target = '__KILN_APP_ORIGIN__'
  if (window.parent === window) return
  const post = (msg) => {
    try {
      window.parent.postMessage({ kiln: 1, ...msg }, target)
    } catch {}
  }
  // A fresh page: what the previous one reported is the past.
  post({ type: 'load' })
  const text = (v) => {
    if (v instanceof Error) return `${v.name}: ${v.message}`
    if (typeof v === 'string') return v
    try {
      return JSON.stringify(v)
    } catch {
      return String(v)
    }
  }
  addEventListener('error', (e) => {
    post({ type: 'error', message: e.message || text(e.error), stack: e.error && e.error.stack ? String(e.error.stack) : '', source: `${e.filename || ''}:${e.lineno || 0}:${e.colno || 0}` })
  })
  addEventListener('unhandledrejection', (e) => {
    post({ type: 'error', message: `Unhandled rejection: ${text(e.reason)}`, stack: e.reason && e.reason.stack ? String(e.reason.stack) : '' })
  })
  const original = console.error
  console.error = function (...args) {
    post({ type: 'console', message: args.map(text).join(' ').slice(0, 4000) })
    return original.apply(this, args)
  }
  const where = () => post({ type: 'location', path: location.pathname + location.search + location.hash })
  addEventListener('popstate', where)
  addEventListener('hashchange', where)
  for (const m of ['pushState', 'replaceState']) {
    const f = history[m]
    history[m] = function (...args) {
      const r = f.apply(this, args)
      where()
      return r
    }
  }
  where()
})()
