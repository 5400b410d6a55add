// Three gateway replicas (real processes, one schema, one Redis prefix, a chain each) behind
// a real HAProxy (scripts/haproxy.mjs), under load from clients that only know HAProxy:
//   1. kill -9 one replica: HAProxy routes around it, clients see at most the requests that
//      were in flight fail; the replica restarts on its port and chain and rejoins (HAProxy
//      sends to it again: its own count of answers grows);
//   2. SIGTERM another (a rolling restart): it drains (/readyz 503 while still serving),
//      HAProxy takes it out, it exits 0 — clients see no failure at all; it restarts and rejoins.
// Every 200 the clients received has its record with the same leaf hash, every chain
// verifies, and `tongban audit integrity` checks all three chains.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT, startNode } from '../helpers/harness.js'
import { freePort } from '../helpers/gateway-process.js'
import { samplePersons } from '../../dev/providers/population.js'
import { findHaproxy, startHaproxy, type Haproxy } from '../../scripts/haproxy.mjs'
import { checkAnswersAudited, loadLoop, sleep, startGateway, tally, verifyChain, type Answer, type Gateway } from './helpers.js'

const people = samplePersons(100)
const body = (i: number) => ({ idNumber: people[i % 100].idNumber, name: people[i % 100].name })
const CONCURRENCY = 24
// HAProxy checks every 250 ms, 2 failures take a replica out; the drain is longer than that.
const CHECK = { interMs: 250, fall: 2, rise: 2 }
const DRAIN_MS = 1500

// Processes start slowly on a loaded 2-core machine: every step waits for a condition.
t.setTimeout(600_000)

/** Polls until `cond` holds (the test's timeout bounds it). */
async function until(cond: () => Promise<boolean>) {
  while (!(await cond())) await sleep(100)
}

t.test('replicas behind HAProxy: kill -9 and SIGTERM under load', async (t) => {
  if (!findHaproxy()) {
    t.fail('haproxy is not installed (apt-get install haproxy)')
    return
  }
  // A slightly slow upstream keeps requests in flight on every replica at any moment.
  const h = await startNode({ tag: 'replicas', providerDelayMs: 20 })
  t.teardown(() => h.close())
  const token = await h.token('jn-civil-affairs')
  const dir = mkdtempSync(join(tmpdir(), 'tongban-replicas-'))
  const gws = new Map<string, Gateway>()
  let lb: Haproxy | undefined
  t.teardown(async () => {
    await lb?.stop()
    await Promise.all([...gws.values()].map((g) => g.stop()))
    rmSync(dir, { recursive: true, force: true })
  })
  const names = ['r1', 'r2', 'r3']
  const ports = new Map<string, number>()
  for (const n of names) ports.set(n, await freePort())
  const start = async (n: string) => {
    const g = await startGateway(h, n, { TONGBAN_PORT: String(ports.get(n)), TONGBAN_DRAIN_MS: String(DRAIN_MS) })
    gws.set(n, g)
    return g
  }
  for (const n of names) await start(n)
  lb = await startHaproxy({ dir, port: await freePort(), servers: names.map((n) => ({ name: n, host: '127.0.0.1', port: ports.get(n)! })), check: CHECK })
  const answered = async () => Object.fromEntries((await lb!.stats()).filter((s) => s.backend === 'tongban-replicas').map((s) => [s.server, s.http2xx]))
  const all: Answer[] = []

  // ---- 1. kill -9 ----------------------------------------------------------------------
  let stopA = false
  const loadA = loadLoop({ base: lb.url, path: '/v1/verify/identity', token, body, concurrency: CONCURRENCY, until: () => !stopA })
  await until(async () => Object.values(await answered()).every((n) => n >= 100))
  const atKill = await answered()
  t.ok(names.every((n) => atKill[n] > 50), `every replica served before the kill (${JSON.stringify(atKill)})`)
  const killAt = Date.now()
  await gws.get('r2')!.stop('SIGKILL')
  await lb.waitFor('r2', 'DOWN')
  const downMs = Date.now() - killAt
  await until(async () => {
    const n = await answered()
    return n.r1 >= atKill.r1 + 100 && n.r3 >= atKill.r3 + 100
  })
  const whileDown = await answered()
  const restartAt = Date.now()
  await start('r2')
  await lb.waitFor('r2', 'UP')
  const rejoinMs = Date.now() - restartAt
  const atRejoin = await answered()
  const serviceAt = Date.now()
  await until(async () => (await answered()).r2 >= atRejoin.r2 + 100)
  stopA = true
  const a = await loadA
  const afterRejoin = await answered()
  all.push(...a)
  const failedA = a.filter((x) => x.status !== 200)
  t.comment(`kill -9 r2: ${a.length} requests, ${failedA.length} failed at the clients (${JSON.stringify(tally(failedA))}); at most ${CONCURRENCY} were in flight`)
  t.comment(`kill -9 r2: HAProxy marked it down ${downMs} ms after the kill; restarted, it was UP again ${rejoinMs} ms after its start began`)
  t.comment(`answers per replica (HAProxy 2xx): at kill ${JSON.stringify(atKill)}, while down ${JSON.stringify(whileDown)}, at rejoin ${JSON.stringify(atRejoin)}, end ${JSON.stringify(afterRejoin)}`)
  t.ok(failedA.length <= CONCURRENCY, `failures (${failedA.length}) are at most the requests in flight (${CONCURRENCY})`)
  t.ok(failedA.every((x) => x.at >= killAt && x.at <= killAt + downMs + 2000), 'failures only around the kill')
  t.ok(whileDown.r1 > atKill.r1 && whileDown.r3 > atKill.r3, 'r1 and r3 carried the load while r2 was down')
  t.ok(afterRejoin.r2 - atRejoin.r2 >= 100, `HAProxy sends to r2 again after it rejoined (+${afterRejoin.r2 - atRejoin.r2})`)
  t.ok(a.filter((x) => x.status === 200 && x.at > serviceAt).length > 100, 'service went on')

  // ---- 2. SIGTERM (rolling restart) ----------------------------------------------------
  let stopB = false
  const loadB = loadLoop({ base: lb.url, path: '/v1/verify/identity', token, body, concurrency: CONCURRENCY, until: () => !stopB })
  const atB = await answered()
  await until(async () => (await answered()).r3 >= atB.r3 + 100)
  const termAt = Date.now()
  // When HAProxy took r3 out, against when r3 exited: out first, or clients would see it.
  let exited = false
  let outAt = 0
  const watch = (async () => {
    while (!exited && !outAt) {
      const s = (await lb!.stats()).find((x) => x.backend === 'tongban-replicas' && x.server === 'r3')
      if (s?.status.startsWith('DOWN')) outAt = Date.now()
      else await sleep(25)
    }
  })()
  const exit = await gws.get('r3')!.stop('SIGTERM')
  const exitAt = Date.now()
  exited = true
  await watch
  const exitMs = exitAt - termAt
  await start('r3')
  await lb.waitFor('r3', 'UP')
  const atRejoinB = await answered()
  await until(async () => (await answered()).r3 >= atRejoinB.r3 + 50)
  stopB = true
  const b = await loadB
  const endB = await answered()
  all.push(...b)
  const failedB = b.filter((x) => x.status !== 200)
  t.comment(`SIGTERM r3: ${b.length} requests, ${failedB.length} failed at the clients (${JSON.stringify(tally(failedB))}); exit ${JSON.stringify(exit)} after ${exitMs} ms (drain ${DRAIN_MS} ms), out of HAProxy after ${outAt - termAt} ms`)
  t.same(exit, { code: 0, signal: null }, 'r3 drained and exited 0')
  t.ok(outAt > 0 && outAt < exitAt, `HAProxy took r3 out ${outAt - termAt} ms after SIGTERM, before it exited (${exitMs} ms)`)
  t.same(tally(failedB), {}, 'a drained replica costs the clients nothing')
  t.ok(endB.r3 - atRejoinB.r3 >= 50, `r3 rejoined (+${endB.r3 - atRejoinB.r3})`)

  // ---- durability ------------------------------------------------------------------------
  const audited = await checkAnswersAudited(h, all)
  t.same(audited.problems.slice(0, 10), [], `every 200 has its record with the same leaf hash (${audited.matched} of ${audited.ok})`)
  t.equal(audited.matched, audited.ok)
  t.comment(`records lost: ${audited.ok - audited.matched} of ${audited.ok} answers 200`)
  for (const n of names) {
    const chain = await verifyChain(h, gws.get(n)!.chain)
    t.same(chain.problems, [], `chain ${n}: ${chain.checkpoints} checkpoints, ${chain.records} records verify`)
  }
  const cli = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'audit', 'integrity', '--json'], { cwd: ROOT, env: { ...process.env, ...h.env }, encoding: 'utf8' })
  t.equal(cli.status, 0, `tongban audit integrity: intact (${cli.stderr.trim().slice(0, 300)})`)
  const report = JSON.parse(cli.stdout.trim().split('\n').pop() || '{}')
  const chains = (report.chains ?? []).map((c: { chain: string }) => c.chain)
  for (const n of names) t.ok(chains.includes(gws.get(n)!.chain), `integrity checked chain ${gws.get(n)!.chain}`)
})
