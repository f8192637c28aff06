import type { Room } from '../room'
import { me } from '../session'

const LABEL = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', closed: 'Disconnected' }

export function ConnectionStatus({ room }: { room: Room }) {
  const c = room.connection.value
  return (
    <span role="status" class={`conn conn-${c}`} title={room.connectionNote.value || undefined}>
      <span class="dot" aria-hidden="true" /> {LABEL[c]}
      {room.connectionNote.value && c !== 'live' && <span class="muted small"> ({room.connectionNote.value})</span>}
    </span>
  )
}

export function Presence({ room }: { room: Room }) {
  const others = room.presence.value.filter((u) => u.id !== me.value?.user.id)
  if (others.length === 0) return null
  return (
    <span class="presence" aria-label={`Also here: ${others.map((u) => u.email).join(', ')}`}>
      {others.map((u) => (
        <span class="avatar" title={u.email}>
          {u.email.slice(0, 1).toUpperCase()}
        </span>
      ))}
    </span>
  )
}
