// A small history router: the Worker answers every UI path with index.html.
import { signal } from '@preact/signals'

export const route = signal(location.pathname)

export function go(path: string, replace = false) {
  if (path === location.pathname) return
  if (replace) history.replaceState(null, '', path)
  else history.pushState(null, '', path)
  route.value = path
}

addEventListener('popstate', () => {
  route.value = location.pathname
})
