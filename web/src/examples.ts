// A few prompts to start from (from Kiln's demo set).
export const EXAMPLES = [
  'A todo list: add tasks with Enter, tick them done, delete them, filter all/active/done; the list survives a reload.',
  'A pomodoro timer with 25/5 minute work/break cycles, start/pause/reset, and a count of finished sessions.',
  'A unit converter for length, weight and temperature, both directions, live as you type.',
  'A landing page for a bakery: hero with a call to action, a menu with prices, opening hours, and a contact form that refuses an empty email.',
]

/** A project name from a prompt: its first words, within the 60-character limit. */
export function nameFromPrompt(prompt: string): string {
  const words = prompt.replace(/\s+/g, ' ').trim().split(' ')
  let name = ''
  for (const w of words) {
    if ((name + ' ' + w).trim().length > 40) break
    name = (name + ' ' + w).trim()
  }
  return (name || 'Untitled app').replace(/[:,.;]+$/, '')
}
