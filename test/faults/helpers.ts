// Pieces of the fault tests: gateway processes with a heap/handle probe, a load loop that
// keeps every answer, and an integrity check of a replica's audit chain read straight from
// PostgreSQL (leaves recomputed, roots rebuilt, signatures checked, chain links followed).
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { Agent, request } from 'undici'
import { ROOT, type Harness } from '../helpers/harness.js'
import { freePort } from '../helpers/gateway-process.js'
import { jcs } from '../../src/evidence/jcs.js'
import { buildTree, leafHash } from '../../src/evidence/merkle.js'
import { checkpointHash, decodeEvidence, type Checkpoint } from '../../src/evidence/evidence.js'
import { GENESIS } from '../../src/audit/store.js'
import { verifySignature, type SuiteName } from '../../src/pki/suites.js'

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Probes `POST /v1/verify/identity` until one answers 200 (a condition, not a time): when the
 * service came back after a drill's fault. The time of that 200, or 0 after `tries` probes.
 */
export async function waitForService(base: string, token: string, body: (i: number) => unknown, tries = 300): Promise<number> {
  for (let i = 0; i < tries; i++) {
    const status = await request(`${base}/v1/verify/identity`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'tongban-purpose': 'SA-01', 'tongban-case-id': `PROBE-${i}` },
      body: JSON.stringify(body(i)),
    }).then(async (r) => (await r.body.dump(), r.statusCode), () => 0)
    if (status === 200) return Date.now()
    await sleep(100)
  }
  return 0
}

export interface Probe {
  heapUsedMiB: number
  rssMiB: number
  handles: number
  sockets: number
  resources: Record<string, number>
}

export interface Gateway {
  base: string
  chain: string
  child: ChildProcess
  output(): string
  probe(): Promise<Probe>
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** A gateway process (src/server.ts) on the harness's schema, with the probe preloaded. */
export async function startGateway(h: Harness, replica: string, env: Record<string, string> = {}): Promise<Gateway> {
  // A given TONGBAN_PORT: a replica restarted where its load balancer expects it.
  const port = env.TONGBAN_PORT ? Number(env.TONGBAN_PORT) : await freePort()
  const chain = `${h.schema}-${replica}`
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', '--import', './test/faults/probe.ts', 'src/server.ts'], {
    cwd: ROOT,
    // The per-system rate limit stays on (its tokens are leased from Redis, also while Redis
    // is cut) but high enough that the one load-generating system is never limited: these
    // tests are about durability, and the default (2,000/s) is below what the gateway serves.
    env: { ...process.env, ...h.env, TONGBAN_PORT: String(port), TONGBAN_REPLICA_ID: chain, TONGBAN_LOG_LEVEL: 'error', TONGBAN_RATE_LIMIT: '100000000', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  // Keep the output bounded: a long run must not grow the test's own heap.
  const keep = (d: Buffer) => {
    out += d
    if (out.length > 200_000) out = out.slice(-100_000)
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  const base = `http://127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    const ready = await request(`${base}/readyz`).then((r) => (r.body.dump(), r.statusCode === 200), () => false)
    if (ready) break
    if (child.exitCode !== null || i > 600) {
      child.kill('SIGKILL')
      throw new Error(`gateway ${replica} did not start: ${out.slice(-2000)}`)
    }
    await sleep(100)
  }
  return {
    base,
    chain,
    child,
    output: () => out,
    async probe() {
      const from = out.length
      child.kill('SIGUSR2')
      for (let i = 0; i < 100; i++) {
        const m = /PROBE (\{.*\})\n/.exec(out.slice(from))
        if (m) return JSON.parse(m[1])
        await sleep(20)
      }
      throw new Error('no probe answer')
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode }
      child.kill(signal)
      const [code, sig] = await once(child, 'exit')
      return { code, signal: sig }
    },
  }
}

export interface Answer {
  status: number
  code?: string
  requestId?: string
  evidence?: string
  body: string
  ms: number
  error?: string
  at: number
}

export interface LoadOptions {
  base: string
  path: string
  token: string
  body: (i: number) => object
  headers?: Record<string, string>
  concurrency: number
  /** Keeps going while this says so (checked before each request), or up to `count`. */
  until?: () => boolean
  count?: number
  timeoutMs?: number
}

/** Runs requests from `concurrency` workers and keeps every answer (or transport error). */
export async function loadLoop(o: LoadOptions): Promise<Answer[]> {
  const agent = new Agent({ connections: o.concurrency, headersTimeout: o.timeoutMs ?? 30_000, bodyTimeout: o.timeoutMs ?? 30_000 })
  const answers: Answer[] = []
  let n = 0
  const more = () => (o.count !== undefined ? n < o.count : true) && (o.until ? o.until() : true)
  const worker = async () => {
    while (more()) {
      const i = n++
      const t0 = performance.now()
      try {
        const res = await request(`${o.base}${o.path}`, {
          method: 'POST',
          dispatcher: agent,
          headers: {
            authorization: `Bearer ${o.token}`,
            'content-type': 'application/json',
            'tongban-purpose': 'SA-01',
            'tongban-case-id': `FAULT-${i}`,
            ...o.headers,
          },
          body: JSON.stringify(o.body(i)),
        })
        const body = await res.body.text()
        let code: string | undefined
        if (res.statusCode >= 400) {
          try {
            code = JSON.parse(body).code
          } catch {}
        }
        answers.push({
          status: res.statusCode,
          code,
          body,
          requestId: res.headers['tongban-request-id'] as string | undefined,
          evidence: res.headers['tongban-evidence'] as string | undefined,
          ms: performance.now() - t0,
          at: Date.now(),
        })
      } catch (e) {
        answers.push({ status: 0, body: '', error: (e as { code?: string }).code ?? String(e), ms: performance.now() - t0, at: Date.now() })
        // A refused connection answers at once: do not spin.
        await sleep(5)
      }
    }
  }
  await Promise.all(Array.from({ length: o.concurrency }, worker))
  await agent.close()
  return answers
}

/** For every 200: its record is in PostgreSQL, with the leaf hash its evidence implies. */
export async function checkAnswersAudited(h: Harness, answers: Answer[]) {
  const ok = answers.filter((a) => a.status === 200)
  const problems: string[] = []
  const leaves = new Map<string, string>()
  for (const a of ok) {
    if (!a.evidence) {
      problems.push(`200 without evidence (${a.requestId})`)
      continue
    }
    const ev = decodeEvidence(a.evidence)
    leaves.set(ev.record.requestId, leafHash(jcs(ev.record)).toString('hex'))
  }
  const ids = [...leaves.keys()]
  const found = new Map<string, string[]>()
  for (let i = 0; i < ids.length; i += 5000) {
    const rows = await h.query('SELECT request_id, leaf FROM audit_records WHERE request_id = ANY($1)', [ids.slice(i, i + 5000)])
    for (const r of rows) found.set(r.request_id, [...(found.get(r.request_id) ?? []), r.leaf])
  }
  let matched = 0
  for (const [id, leaf] of leaves) {
    const got = found.get(id)
    if (!got) problems.push(`no record for ${id}`)
    else if (!got.includes(leaf)) problems.push(`record of ${id} has another leaf hash`)
    else matched++
  }
  return { ok: ok.length, matched, problems }
}

/**
 * Integrity of one replica's chain, from the rows alone: seq 1..n without gaps, each
 * checkpoint naming its predecessor's hash, its hash recomputed, its signature valid under
 * the node certificate, and exactly `size` records whose leaves rebuild its root.
 */
export async function verifyChain(h: Harness, chain: string) {
  const certPem = readFileSync(h.config.pki.certFile, 'utf8')
  const cps = await h.query('SELECT seq, prev, hash, root, size, sig, checkpoint FROM audit_checkpoints WHERE chain = $1 ORDER BY seq', [chain])
  const recs = await h.query('SELECT seq, idx, leaf, record FROM audit_records WHERE chain = $1 ORDER BY seq, idx', [chain])
  const bySeq = new Map<number, any[]>()
  for (const r of recs) {
    const s = Number(r.seq)
    bySeq.set(s, [...(bySeq.get(s) ?? []), r])
  }
  const problems: string[] = []
  let prev = GENESIS
  cps.forEach((row, i) => {
    const seq = Number(row.seq)
    if (seq !== i + 1) problems.push(`checkpoint ${seq} at position ${i + 1}`)
    if (row.prev !== prev) problems.push(`checkpoint ${seq} does not name its predecessor`)
    const { sig, ...cp } = row.checkpoint as Checkpoint & { sig: string }
    if (checkpointHash(cp) !== row.hash) problems.push(`checkpoint ${seq}: hash does not match its content`)
    if (!verifySignature(cp.alg as SuiteName, certPem, Buffer.from(jcs(cp)), Buffer.from(sig, 'base64url'))) problems.push(`checkpoint ${seq}: bad signature`)
    const records = bySeq.get(seq) ?? []
    if (records.length !== row.size) problems.push(`checkpoint ${seq}: ${records.length} records for size ${row.size}`)
    const leaves = records.map((r, j) => {
      if (r.idx !== j) problems.push(`checkpoint ${seq}: record index ${r.idx} at ${j}`)
      const leaf = leafHash(jcs(r.record))
      if (leaf.toString('hex') !== r.leaf) problems.push(`checkpoint ${seq}/${j}: stored leaf differs from the record`)
      return leaf
    })
    if (leaves.length && buildTree(leaves).root.toString('hex') !== row.root) problems.push(`checkpoint ${seq}: leaves do not rebuild the root`)
    prev = row.hash
  })
  const orphans = [...bySeq.keys()].filter((s) => s > cps.length || s < 1)
  if (orphans.length) problems.push(`records without a checkpoint: batches ${orphans.join(', ')}`)
  return { checkpoints: cps.length, records: recs.length, problems }
}

export const tally = (answers: Answer[]) => {
  const t: Record<string, number> = {}
  for (const a of answers) {
    const k = a.status === 0 ? `ERR ${a.error}` : a.code ? `${a.status} ${a.code}` : String(a.status)
    t[k] = (t[k] ?? 0) + 1
  }
  return t
}
