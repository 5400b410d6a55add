// The circuit breaker of a departmental upstream (src/exchange/upstream-breaker.ts), against a
// real HTTP upstream on loopback that fails on command: it opens after the configured number
// of consecutive failed calls (503 UPSTREAM_CIRCUIT_OPEN, Retry-After, audited as failed, the
// upstream not called), half-opens after the configured time, closes on a successful probe;
// tongban_upstream_circuit_state shows each state.
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { startNode, context } from '../helpers/harness.js'
import { person } from '../../dev/providers/population.js'

const p0 = person(0)
const body = { idNumber: p0.idNumber, name: p0.name }
const FAILURES = 3
// Long enough for the checks made while open to finish before it half-opens, on a busy machine too.
const HALF_OPEN_MS = 2000

/** The upstream: answers 500 while failing, else hands the call to the simulated provider. */
let failing = false
let rejecting = false
let calls = 0
/** While set, the upstream holds its answers until release() is called. */
let held: Promise<void> | null = null
let release = () => {}
let arrived = () => {}
let provider: ((req: { method: string; url: string; headers: http.IncomingHttpHeaders; payload: string }) => Promise<{ statusCode: number; headers: Record<string, unknown>; body: string }>) | null = null
const gate = http.createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', async () => {
    calls++
    if (held) {
      arrived()
      await held
    }
    if (rejecting) {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"bad query"}')
      return
    }
    if (failing || !provider) {
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"down"}')
      return
    }
    const r = await provider({ method: req.method!, url: req.url!, headers: req.headers, payload: Buffer.concat(chunks).toString('utf8') })
    res.writeHead(r.statusCode, { 'content-type': String(r.headers['content-type'] ?? 'application/json') }).end(r.body)
  })
})
await new Promise<void>((resolve) => gate.listen(0, '127.0.0.1', resolve))
const gateUrl = `http://127.0.0.1:${(gate.address() as AddressInfo).port}`

const h = await startNode({
  tag: 'breaker',
  env: {
    TONGBAN_UPSTREAM_MPS_IDENTITY: gateUrl,
    TONGBAN_PROVIDER_BREAKER_FAILURES: String(FAILURES),
    TONGBAN_PROVIDER_BREAKER_HALF_OPEN_MS: String(HALF_OPEN_MS),
  },
})
provider = (r) => h.provider.inject(r as never) as never
t.teardown(async () => {
  await h.close()
  await new Promise((r) => gate.close(r))
})
const token = await h.token('jn-civil-affairs')
const verify = () =>
  h.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { authorization: `Bearer ${token}`, ...context() }, payload: body })

async function circuitState(): Promise<number | undefined> {
  const text = (await h.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '127.0.0.1' })).body
  const line = text.split('\n').find((l) => l.startsWith('tongban_upstream_circuit_state{') && l.includes('upstream="mps-identity"'))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}

t.test('opens after the threshold, half-opens after the configured time, closes on success', async (t) => {
  t.equal((await verify()).statusCode, 200, 'answers while the upstream is well')
  t.equal(await circuitState(), undefined, 'no state change yet: no sample')

  failing = true
  for (let i = 1; i <= FAILURES; i++) {
    const res = await verify()
    t.equal(res.statusCode, 502, `failure ${i} is the upstream's own`)
    t.equal(res.json().code, 'UPSTREAM_ERROR')
  }
  t.equal(await circuitState(), 2, 'the metric says open')

  const before = calls
  const refused = await verify()
  t.equal(refused.statusCode, 503)
  t.equal(refused.json().code, 'UPSTREAM_CIRCUIT_OPEN')
  t.equal(refused.json().hop, 'mps-identity')
  t.match(refused.headers['content-type'], /application\/problem\+json/)
  const retryAfter = Number(refused.headers['retry-after'])
  t.ok(retryAfter >= 1 && retryAfter <= HALF_OPEN_MS / 1000, 'Retry-After: what is left of the pause, in whole seconds')
  t.equal(calls, before, 'the upstream is not called while open')
  const rows = await h.query("SELECT decision, reason FROM audit_records WHERE operation = 'verify' AND reason = 'UPSTREAM_CIRCUIT_OPEN'")
  t.same(rows, [{ decision: 'failed', reason: 'UPSTREAM_CIRCUIT_OPEN' }], 'the refusal is audited like any failure')

  // Still failing: after the pause one probe reaches the upstream, fails, and reopens the circuit.
  let probed = await verify()
  while (probed.json().code === 'UPSTREAM_CIRCUIT_OPEN') {
    await new Promise((r) => setTimeout(r, HALF_OPEN_MS / 3))
    probed = await verify()
  }
  t.equal(probed.json().code, 'UPSTREAM_ERROR', 'after the pause the probe reaches the upstream')
  t.equal(calls > before, true)
  t.equal(await circuitState(), 2, 'a failed probe opens it again')
  t.equal((await verify()).json().code, 'UPSTREAM_CIRCUIT_OPEN', 'and calls are refused again at once')

  // Well again, but slow to answer: once the pause is over, one probe is let through and held there.
  failing = false
  held = new Promise((r) => (release = r))
  const probeArrived = new Promise<void>((r) => (arrived = r))
  let probe: ReturnType<typeof verify> | null = null
  while (!probe) {
    const attempt = verify()
    // Either refused at once (still open), or the upstream got the call (the probe).
    const first = await Promise.race([attempt.then(() => 'answered' as const), probeArrived.then(() => 'probing' as const)])
    if (first === 'probing') probe = attempt
    else await new Promise((r) => setTimeout(r, HALF_OPEN_MS / 3))
  }
  t.equal(await circuitState(), 1, 'the metric says half-open while the probe is out')
  release()
  held = null
  const healed = await probe
  t.equal(healed.statusCode, 200, 'the probe succeeds')
  t.equal(await circuitState(), 0, 'the metric says closed')
  t.equal((await verify()).statusCode, 200, 'and stays closed')
})

t.test('refusals by the upstream (4xx) do not count towards opening', async (t) => {
  rejecting = true
  t.teardown(() => {
    rejecting = false
  })
  for (let i = 0; i <= FAILURES; i++) t.equal((await verify()).json().code, 'UPSTREAM_REJECTED')
  t.equal(await circuitState(), 0, 'still closed')
  rejecting = false
  t.equal((await verify()).statusCode, 200)
})
