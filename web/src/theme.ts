// Light or dark: the system's choice unless the person picked one (kept in localStorage).
import { signal, effect } from '@preact/signals'

type Theme = 'light' | 'dark'
const stored = localStorage.getItem('kiln.theme') as Theme | null
const system = (): Theme => (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light')

export const theme = signal<Theme>(stored ?? system())

effect(() => {
  document.documentElement.dataset.theme = theme.value
})

export function toggleTheme() {
  theme.value = theme.value === 'dark' ? 'light' : 'dark'
  localStorage.setItem('kiln.theme', theme.value)
}
