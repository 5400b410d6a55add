// Per-call cost of the call step's cockatiel policies, measured against a bare call in the
// same run: the upstream breaker (src/exchange/upstream-breaker.ts), the breaker with the
// retry policy the call step builds per idempotent query (src/exchange/upstream.ts), and a
// next hop's guard (bulkhead + breaker, src/tiers/breaker.ts). The callee answers at once,
// so the figures are the policies' own overhead. Rounds alternate, medians are printed.
//   npm run bench:breaker   (ROUNDS, CALLS to change the size)
import { ExponentialBackoff, handleWhen, retry } from 'cockatiel'
import { isProblem } from '../src/problems/problem.js'
import { UpstreamBreakers } from '../src/exchange/upstream-breaker.js'
import { HopGuard } from '../src/tiers/breaker.js'

const ROUNDS = Number(process.env.ROUNDS ?? 9)
const CALLS = Number(process.env.CALLS ?? 200_000)
const answer = { status: 200, headers: {}, body: '{}' }
const callee = () => Promise.resolve(answer)

const breakers = new UpstreamBreakers({ failures: 5, halfOpenAfterMs: 10_000 })
const guard = new HopGuard('320100', { maxConcurrent: 64, failures: 5, openMs: 10_000 })
const withRetry = () =>
  retry(handleWhen((e) => isProblem(e) && e.status !== 504), { maxAttempts: 2, backoff: new ExponentialBackoff({ initialDelay: 25, maxDelay: 400 }) })

const variants: Record<string, () => Promise<unknown>> = {
  'bare call': () => callee(),
  'upstream breaker': () => breakers.run('mps-identity', callee),
  'breaker + retry': () => breakers.run('mps-identity', () => withRetry().execute(callee)),
  'hop guard (bulkhead + breaker)': () => guard.run(callee),
}

async function measure(fn: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint()
  for (let i = 0; i < CALLS; i++) await fn()
  return Number(process.hrtime.bigint() - started) / CALLS
}

const samples: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]))
for (const fn of Object.values(variants)) await measure(fn) // warm-up
for (let r = 0; r < ROUNDS; r++) for (const [name, fn] of Object.entries(variants)) samples[name].push(await measure(fn))
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const base = median(samples['bare call'])
console.log(`node ${process.version}, ${ROUNDS} rounds × ${CALLS} calls, medians`)
for (const [name, xs] of Object.entries(samples)) {
  const m = median(xs)
  console.log(`${name.padEnd(32)} ${m.toFixed(0).padStart(6)} ns/call   +${(m - base).toFixed(0).padStart(5)} ns   ×${(m / base).toFixed(2)}`)
}
