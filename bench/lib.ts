// Shared pieces of the benchmark and soak scripts: processes started as the operator would
// (upstream, bare proxy, gateway), their CPU and memory read from /proc, autocannon rounds.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { openSync, readFileSync, mkdirSync, closeSync } from 'node:fs'
import { join, resolve } from 'node:path'
import net from 'node:net'
import autocannon from 'autocannon'
import { Pool, request } from 'undici'
import { Redis } from 'ioredis'

export const ROOT = resolve(import.meta.dirname, '..')
export const RESULTS = join(ROOT, 'bench/results')
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export const freePort = () =>
  new Promise<number>((done) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => done(port))
    })
  })

export interface Proc {
  name: string
  child: ChildProcess
  pid: number
  /** What the process printed after READY (JSON), if it prints one. */
  ready: any
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/**
 * Starts `node [nodeArgs] --import tsx <script>`; stdout and stderr go to a log file under
 * bench/results/logs (git-ignored). Waits for a `READY {json}` line, or for `waitUrl` to
 * answer 200.
 */
export async function startProc(o: {
  name: string
  script: string
  env?: Record<string, string>
  nodeArgs?: string[]
  waitUrl?: string
  readyLine?: boolean
  /** Run from another checkout (e.g. the last commit, to compare before and after). */
  cwd?: string
}): Promise<Proc> {
  mkdirSync(join(RESULTS, 'logs'), { recursive: true })
  const logFile = join(RESULTS, 'logs', `${o.name}.log`)
  const fd = openSync(logFile, 'w')
  const child = spawn(process.execPath, [...(o.nodeArgs ?? []), '--import', 'tsx', o.script], {
    cwd: o.cwd ?? ROOT,
    env: { ...process.env, ...o.env },
    stdio: ['ignore', o.readyLine ? 'pipe' : fd, fd],
  })
  closeSync(fd)
  // A process that cannot be spawned (e.g. a --compare directory that is gone) emits 'error':
  // unheard, it would end the benchmark without its cleanup and leave the others running.
  let spawnError: Error | null = null
  child.once('error', (e) => (spawnError = e))
  let ready: any = null
  if (o.readyLine) {
    ready = await new Promise((done, fail) => {
      let buf = ''
      const onData = (d: Buffer) => {
        buf += d
        const m = /READY (\{.*\})/.exec(buf)
        if (m) {
          child.stdout!.off('data', onData)
          child.stdout!.resume()
          done(JSON.parse(m[1]))
        }
      }
      child.stdout!.on('data', onData)
      child.once('exit', (code) => fail(new Error(`${o.name} exited (${code}) before it was ready; see ${logFile}`)))
      child.once('error', (e) => fail(new Error(`${o.name} could not be started: ${e.message}`)))
    })
  }
  if (o.waitUrl) {
    for (let i = 0; ; i++) {
      const ok = await request(o.waitUrl).then((r) => (r.body.dump(), r.statusCode === 200), () => false)
      if (ok) break
      if (spawnError) throw new Error(`${o.name} could not be started: ${(spawnError as Error).message}`)
      if (child.exitCode !== null || i > 300) throw new Error(`${o.name} did not become ready; see ${logFile}`)
      await sleep(100)
    }
  }
  return {
    name: o.name,
    child,
    pid: child.pid!,
    ready,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill(signal)
      const [code] = await once(child, 'exit')
      return code
    },
  }
}

const TICKS = 100 // USER_HZ on Linux

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // Fields 14 and 15 of stat (utime, stime); f[0] is field 3.
  return (Number(f[11]) + Number(f[12])) / TICKS
}

/** Resident memory now and at its peak (VmHWM), in MiB. */
export function memory(pid: number): { rssMiB: number; peakRssMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0)
  return { rssMiB: +(kb('VmRSS') / 1024).toFixed(1), peakRssMiB: +(kb('VmHWM') / 1024).toFixed(1) }
}

export interface LoadSpec {
  url: string
  connections: number
  durationS: number
  body: string
  headers: Record<string, string>
  /** Offered load (requests/s over all connections, evenly spaced: `paced`); unlimited when absent. */
  rate?: number
  /** Paced only: the body of request i (instead of `body` for all). */
  bodyFor?: (i: number) => string
  /** Paced only: called with each answer's status (0: no answer), as it comes. */
  onAnswer?: (status: number) => void
}

export interface LoadResult {
  connections: number
  durationS: number
  requests: number
  rps: number
  ok: number
  non2xx: number
  errors: number
  timeouts: number
  p50: number
  p90: number
  p99: number
  max: number
  statusCodes: Record<string, number>
}

/** Closed-loop load (each connection sends as soon as its answer arrived) with autocannon; an offered rate goes to `paced`. */
export async function load(s: LoadSpec): Promise<LoadResult> {
  if (s.rate) return paced({ ...s, rate: s.rate })
  const r: any = await autocannon({
    url: s.url,
    method: 'POST',
    connections: s.connections,
    duration: s.durationS,
    body: s.body,
    headers: { 'content-type': 'application/json', ...s.headers },
  })
  const codes: Record<string, number> = {}
  for (const [code, v] of Object.entries(r.statusCodeStats ?? {})) codes[code] = (v as { count: number }).count
  return {
    connections: s.connections,
    durationS: r.duration,
    requests: r.requests.total,
    rps: Math.round(r.requests.total / r.duration),
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    max: r.latency.max,
    statusCodes: codes,
  }
}

/**
 * An open-loop load at a steady rate: request i is due at t0 + i/rate, whatever the answers
 * before it did, and its latency is counted from when it was due (so a stall of the target
 * shows in every request that had to wait, as in wrk2). autocannon's `overallRate` is not
 * that: each connection sends its share of the second back to back and then idles, so the
 * first part of every second runs at full load and its latencies are the full-load ones.
 * At most `connections` requests are in flight; the rest wait in the pool's queue (and
 * their wait counts).
 */
export async function paced(s: LoadSpec & { rate: number }): Promise<LoadResult> {
  const u = new URL(s.url)
  const pool = new Pool(u.origin, { connections: s.connections, pipelining: 1, keepAliveTimeout: 30_000 })
  const headers = { 'content-type': 'application/json', ...s.headers }
  const total = Math.round(s.rate * s.durationS)
  const latencies = new Float64Array(total)
  const codes: Record<string, number> = {}
  let done = 0
  let errors = 0
  let ok = 0
  let sent = 0
  const t0 = performance.now() + 5
  const finished = new Promise<void>((resolveAll) => {
    const one = (i: number) => {
      const due = t0 + (i * 1000) / s.rate
      pool.request({ path: u.pathname + u.search, method: 'POST', headers, body: s.bodyFor ? s.bodyFor(i) : s.body }).then(
        async (res) => {
          await res.body.dump()
          latencies[i] = performance.now() - due
          codes[res.statusCode] = (codes[res.statusCode] ?? 0) + 1
          if (res.statusCode >= 200 && res.statusCode < 300) ok++
          s.onAnswer?.(res.statusCode)
        },
        () => {
          latencies[i] = performance.now() - due
          errors++
          s.onAnswer?.(0)
        },
      ).finally(() => {
        if (++done === total) resolveAll()
      })
    }
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * s.rate) / 1000) + 1)
      while (sent < due) one(sent++)
      if (sent < total) setTimeout(tick, 1)
    }
    setTimeout(tick, 5)
  })
  await finished
  const elapsedS = (performance.now() - t0) / 1000
  await pool.close()
  const sorted = Array.from(latencies).sort((a, b) => a - b)
  const q = (p: number) => +sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)].toFixed(2)
  return {
    connections: s.connections,
    durationS: +elapsedS.toFixed(2),
    requests: total,
    rps: Math.round(total / elapsedS),
    ok,
    non2xx: total - ok - errors,
    errors,
    timeouts: 0,
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
    max: +sorted[sorted.length - 1].toFixed(2),
    statusCodes: codes,
  }
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** Deletes a run's Redis keys (its prefix `<tag>:`), after the run: SCAN, not KEYS, on a shared Redis. */
export async function clearRedisPrefix(url: string, tag: string): Promise<void> {
  const redis = new Redis(url)
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${tag}:*`, 'COUNT', 1000)
    if (keys.length) await redis.del(...keys)
    cursor = next
  } while (cursor !== '0')
  redis.disconnect()
}
