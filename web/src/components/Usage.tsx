import { useEffect, useState } from 'preact/hooks'
import type { Credits, Org, Usage as UsageData, UsageRow } from '../gen'
import { api, errorText } from '../api'

const DAY = 86_400_000
const tokens = (n: number) => n.toLocaleString('en')
const cost = (micros: number) => (micros === 0 ? '$0' : `$${(micros / 1e6).toFixed(micros < 10_000 ? 4 : 2)}`)

/** What an org's generations cost: a chart per day, tables per agent and per model. */
export function Usage({ orgId }: { orgId: string }) {
  const [org, setOrg] = useState<Org | null>(null)
  const [days, setDays] = useState(30)
  const [data, setData] = useState<{ day: UsageData; agent: UsageData; model: UsageData } | null>(null)
  const [credits, setCredits] = useState<Credits | null>(null)
  const [error, setError] = useState<string | null>(null)
  useEffect(() => {
    api.get<Org>(`/api/orgs/${orgId}`).then(setOrg, (e) => setError(errorText(e)))
    api.get<Credits>(`/api/orgs/${orgId}/credits`).then(setCredits, () => setCredits(null))
  }, [orgId])
  useEffect(() => {
    setData(null)
    const to = Date.now()
    const q = (group: string) => api.get<UsageData>(`/api/orgs/${orgId}/usage?from=${to - days * DAY}&to=${to}&group=${group}`)
    Promise.all([q('day'), q('agent'), q('model')]).then(
      ([day, agent, model]) => setData({ day, agent, model }),
      (e) => setError(errorText(e)),
    )
  }, [orgId, days])

  return (
    <main class="dashboard">
      <div class="row">
        <h1>Usage{org ? ` — ${org.personal ? 'Personal' : org.name}` : ''}</h1>
        <span class="spacer" />
        <label class="inline">
          Period
          <select value={String(days)} onChange={(e) => setDays(Number(e.currentTarget.value))}>
            <option value="7">last 7 days</option>
            <option value="30">last 30 days</option>
            <option value="90">last 90 days</option>
          </select>
        </label>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {!data && !error && (
        <p class="muted" aria-busy="true">
          Loading usage…
        </p>
      )}
      {credits && <CreditCard credits={credits} />}
      {data && (
        <>
          <section class="card" aria-labelledby="usage-totals">
            <h2 id="usage-totals">Totals</h2>
            <p class="usage-totals">
              <strong>{tokens(data.day.totals.calls)}</strong> model calls · <strong>{tokens(data.day.totals.input_tokens)}</strong> tokens in ·{' '}
              <strong>{tokens(data.day.totals.output_tokens)}</strong> out · <strong>{cost(data.day.totals.cost_micros)}</strong> · median{' '}
              {(data.day.totals.latency_p50_ms / 1000).toFixed(1)} s a call
            </p>
            <Chart rows={data.day.rows} from={data.day.from} days={days} />
            <p class="muted small">
              Tokens per day, {new Date(data.day.from).toLocaleDateString()} to {new Date(data.day.to).toLocaleDateString()} (hover a bar for its
              day, cost and calls).
            </p>
          </section>
          <Table title="By agent" label="Agent" rows={data.agent.rows} />
          <Table title="By model" label="Model" rows={data.model.rows} />
        </>
      )}
    </main>
  )
}

/** What the org may still spend on priced models, and the ledger's latest entries. */
function CreditCard({ credits }: { credits: Credits }) {
  const spent = credits.balance_micros === 0
  return (
    <section class="card" aria-labelledby="usage-credit">
      <h2 id="usage-credit">Credit</h2>
      <p class="usage-credit">
        <strong>{dollars(credits.balance_micros)}</strong> left for priced models (the local model needs none).
        {spent && <span class="error"> Spent: generations on a priced model are refused until more is granted.</span>}
      </p>
      {credits.entries.length > 0 && (
        <table class="tokens">
          <thead>
            <tr>
              <th>When</th>
              <th>What</th>
              <th>Amount</th>
            </tr>
          </thead>
          <tbody>
            {credits.entries.slice(0, 10).map((e) => (
              <tr>
                <td>{new Date(e.created_at).toLocaleString()}</td>
                <td>{e.kind === 'grant' ? e.reason : `${e.reason}${e.generation_id ? ` (${e.generation_id})` : ''}`}</td>
                <td>{e.amount_micros >= 0 ? '+' : '−'}{dollars(Math.abs(e.amount_micros))}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  )
}

const dollars = (micros: number) => `$${(micros / 1e6).toFixed(2)}`

/** Tokens per day as bars (cost too, in each bar's title), an empty day as no bar. */
function Chart({ rows, from, days }: { rows: UsageRow[]; from: number; days: number }) {
  const byDay = new Map(rows.map((r) => [r.key, r]))
  const keys = Array.from({ length: days }, (_, i) => new Date(from + (i + 1) * DAY).toISOString().slice(0, 10))
  const max = Math.max(1, ...rows.map((r) => r.input_tokens + r.output_tokens))
  const w = 100 / days
  if (rows.length === 0) return <p class="muted empty">No model calls in this period.</p>
  return (
    <svg class="usage-chart" viewBox="0 0 100 40" preserveAspectRatio="none" role="img" aria-label="Tokens per day">
      {keys.map((k, i) => {
        const r = byDay.get(k)
        if (!r) return null
        const h = ((r.input_tokens + r.output_tokens) / max) * 38
        return (
          <rect x={i * w + w * 0.1} y={40 - h} width={w * 0.8} height={h} class="bar">
            <title>{`${k}: ${tokens(r.input_tokens + r.output_tokens)} tokens, ${cost(r.cost_micros)}, ${r.calls} calls`}</title>
          </rect>
        )
      })}
    </svg>
  )
}

function Table({ title, label, rows }: { title: string; label: string; rows: UsageRow[] }) {
  const id = `usage-${label.toLowerCase()}`
  return (
    <section class="card" aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      {rows.length === 0 ? (
        <p class="muted empty">No model calls in this period.</p>
      ) : (
        <table class="tokens">
          <thead>
            <tr>
              <th>{label}</th>
              <th>Calls</th>
              <th>Tokens in</th>
              <th>Tokens out</th>
              <th>Cost</th>
              <th>Median latency</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr>
                <td>{r.key}</td>
                <td>{tokens(r.calls)}</td>
                <td>{tokens(r.input_tokens)}</td>
                <td>{tokens(r.output_tokens)}</td>
                <td>{cost(r.cost_micros)}</td>
                <td>{(r.latency_p50_ms / 1000).toFixed(1)} s</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  )
}
