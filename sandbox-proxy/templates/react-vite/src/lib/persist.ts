import { useEffect, useState } from 'react'

/**
 * Like useState, but the value is kept in localStorage under `key`, so it survives a reload.
 *
 *   const [todos, setTodos] = usePersistentState<Todo[]>('todos', [])
 */
export function usePersistentState<T>(key: string, initial: T) {
  const [value, setValue] = useState<T>(() => {
    try {
      const saved = localStorage.getItem(key)
      return saved === null ? initial : (JSON.parse(saved) as T)
    } catch {
      return initial
    }
  })
  useEffect(() => {
    localStorage.setItem(key, JSON.stringify(value))
  }, [key, value])
  return [value, setValue] as const
}
