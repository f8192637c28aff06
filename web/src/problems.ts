// What went wrong in a project: the running app's errors (reported by the preview's capture
// script), build and check failures and failed steps (from the room's timeline). Each can
// be sent to the agent as a follow-up.
import { computed, signal } from '@preact/signals'
import type { Room } from './room'

export interface Problem {
  id: string
  kind: 'runtime' | 'console' | 'build' | 'check' | 'step'
  message: string
  detail?: string
  seq?: number
}

/** Messages from the preview frame (untrusted: shown as text, never as markup). */
export interface CaptureMessage {
  kiln: 1
  type: 'load' | 'error' | 'console' | 'location'
  message?: string
  stack?: string
  source?: string
  path?: string
}

export class Problems {
  readonly runtime = signal<readonly Problem[]>([])
  readonly path = signal('/')
  readonly all = computed<readonly Problem[]>(() => [...this.fromTimeline(), ...this.runtime.value])
  private dismissedBefore = signal(0)

  constructor(private room: Room) {}

  fromPreview(m: CaptureMessage) {
    if (m.type === 'load') {
      this.clearRuntime()
      return
    }
    if (m.type === 'location') {
      this.path.value = String(m.path ?? '/').slice(0, 500)
      return
    }
    const message = String(m.message ?? '').slice(0, 4000)
    if (!message || this.runtime.value.some((p) => p.message === message)) return
    const detail = [m.source, m.stack].filter(Boolean).join('\n').slice(0, 4000)
    this.runtime.value = [
      ...this.runtime.value.slice(-49),
      { id: `r${Date.now()}-${this.runtime.value.length}`, kind: m.type === 'error' ? 'runtime' : 'console', message, detail },
    ]
  }

  /** A new version of the app replaces the old one's runtime errors. */
  clearRuntime() {
    this.runtime.value = []
  }

  dismissAll() {
    this.runtime.value = []
    this.dismissedBefore.value = this.room.timeline.value.at(-1)?.seq ?? 0
  }

  /** Failures of the latest generation only: older ones were fixed or replaced. */
  private fromTimeline(): Problem[] {
    const tl = this.room.timeline.value
    let start = 0
    for (let i = tl.length - 1; i >= 0; i--) {
      if (tl[i].type === 'prompt' && !(tl[i] as any).queued) {
        start = i
        break
      }
    }
    const out: Problem[] = []
    for (const ev of tl.slice(start) as any[]) {
      if (ev.seq <= this.dismissedBefore.value) continue
      if (ev.type === 'check_result' && !ev.passed) {
        if (ev.errors?.length) out.push({ id: `b${ev.seq}`, kind: 'build', message: 'The build failed', detail: ev.errors.join('\n'), seq: ev.seq })
        for (const c of ev.checks ?? []) {
          if (!c.passed) out.push({ id: `c${ev.seq}-${c.name}`, kind: 'check', message: `Check failed: ${c.name}`, detail: c.error ?? '', seq: ev.seq })
        }
      }
      if (ev.type === 'state_change' && ev.step === 'failed') out.push({ id: `s${ev.seq}`, kind: 'step', message: 'The generation failed', detail: ev.reason ?? '', seq: ev.seq })
    }
    // A later passing check supersedes earlier failures.
    const lastPass = [...tl.slice(start)].reverse().find((e: any) => e.type === 'check_result' && e.passed) as any
    return lastPass ? out.filter((p) => (p.seq ?? 0) > lastPass.seq) : out
  }
}

/** The follow-up that asks the agent to fix problems. */
export function fixPrompt(problems: readonly Problem[]): string {
  const parts = problems.map((p) => `- ${p.message}${p.detail ? `\n${indent(p.detail.split('\n').slice(0, 12).join('\n'))}` : ''}`)
  return `Fix ${problems.length === 1 ? 'this problem' : 'these problems'} in the app:\n${parts.join('\n')}`
}

function indent(s: string) {
  return s
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n')
}
