// `tongban node status`: is this node up and ready, who is it, how long has its certificate
// left, and how deep are its queues — what an operator checks first.
import { X509Certificate } from 'node:crypto'
import { request } from 'undici'
import { ConfigError } from '../config/index.js'
import { stdio, type Io } from './io.js'
import { parseCommand } from './args.js'
import { describeFailure, resolveNodeUrl } from './node-url.js'

// How a command finds its node and words a failure to reach it (node-url.ts), for every command.
export { describeFailure, resolveNodeUrl, readNodeStates, type NodeState, type NodeUrl } from './node-url.js'

const HELP = `Usage: tongban node status [--url URL] [--metrics-token TOKEN] [--timeout MS] [--json]

Asks a running gateway node for its liveness (/healthz), readiness (/readyz: PostgreSQL and
Redis), identity (/v1/node: id, tier, region, replica, signing certificate and its expiry)
and, when /metrics answers (loopback, or with the metrics token), its queue depths.

  --url URL              the node (default: TONGBAN_URL, else http://127.0.0.1:<TONGBAN_PORT>,
                         else the node npm start runs, else the configured public URL)
  --metrics-token TOKEN  TONGBAN_METRICS_TOKEN of the node (default: that variable)
  --timeout MS           per request (default 5000)
  --json                 print one JSON object

Exit status: 0 ready, 1 not ready or unreachable, 2 usage error.`

const CERT_WARN_DAYS = 30

export interface NodeStatus {
  url: string
  live: boolean
  ready: boolean
  readiness?: { postgres: string; redis: string }
  node?: { id: string; name: string; tier: string; region: string; replica: string; publicUrl: string; auditAlg: string; kid: string }
  certificate?: { subject: string; issuer: string; notAfter: string; daysLeft: number; warning?: string }
  queues?: Record<string, Record<string, number>>
  error?: string
}

async function getJson(url: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<{ status: number; body: any; text: string }> {
  const res = await request(url, { headers, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal: AbortSignal.timeout(timeoutMs) })
  const text = await res.body.text()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {}
  return { status: res.statusCode, body, text }
}

export async function nodeStatus(url: string, o: { timeoutMs?: number; metricsToken?: string } = {}): Promise<NodeStatus> {
  const timeoutMs = o.timeoutMs ?? 5000
  const out: NodeStatus = { url, live: false, ready: false }
  try {
    out.live = (await getJson(`${url}/healthz`, timeoutMs)).status === 200
  } catch (e) {
    out.error = `unreachable: ${describeFailure(e, `GET ${url}/healthz`)}`
    return out
  }
  const [ready, node, metrics] = await Promise.allSettled([
    getJson(`${url}/readyz`, timeoutMs),
    getJson(`${url}/v1/node`, timeoutMs),
    getJson(`${url}/metrics`, timeoutMs, o.metricsToken ? { authorization: `Bearer ${o.metricsToken}` } : {}),
  ])
  if (ready.status === 'fulfilled' && ready.value.body) {
    out.ready = ready.value.status === 200
    out.readiness = { postgres: ready.value.body.postgres, redis: ready.value.body.redis }
  }
  if (node.status === 'fulfilled' && node.value.status === 200) {
    const n = node.value.body
    out.node = { id: n.id, name: n.name, tier: n.tier, region: n.region, replica: n.replica, publicUrl: n.publicUrl, auditAlg: n.auditAlg, kid: n.kid }
    try {
      const cert = new X509Certificate(n.certificate)
      const notAfter = new Date(cert.validTo)
      const daysLeft = Math.floor((notAfter.getTime() - Date.now()) / 86400_000)
      out.certificate = { subject: cert.subject.replaceAll('\n', ', '), issuer: cert.issuer.replaceAll('\n', ', '), notAfter: notAfter.toISOString(), daysLeft }
      if (daysLeft < 0) out.certificate.warning = 'the node certificate has expired: evidence no longer verifies for new answers'
      else if (daysLeft < CERT_WARN_DAYS) out.certificate.warning = `the node certificate expires in ${daysLeft} days: rotate it (docs/operations.md, PKI rotation)`
    } catch {}
  }
  if (metrics.status === 'fulfilled' && metrics.value.status === 200) {
    const queues: Record<string, Record<string, number>> = {}
    for (const m of metrics.value.text.matchAll(/^tongban_queue_jobs\{([^}]*)\} (\S+)$/gm)) {
      const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]))
      if (!labels.queue || !labels.state) continue
      ;(queues[labels.queue] ??= {})[labels.state] = Number(m[2])
    }
    out.queues = queues
  }
  return out
}

export async function run(args: string[], io: Io = stdio): Promise<number> {
  const parsed = parseCommand(io, 'node', HELP, args, {
    url: { type: 'string' },
    'metrics-token': { type: 'string' },
    timeout: { type: 'string' },
    json: { type: 'boolean' },
  })
  if (typeof parsed === 'number') return parsed
  const { values, positionals } = parsed
  if (positionals.length !== 1 || positionals[0] !== 'status') {
    io.err(`tongban node: expected the subcommand "status"\n\n${HELP}`)
    return 2
  }
  const timeoutMs = values.timeout === undefined ? 5000 : Number(values.timeout)
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
    io.err(`tongban node: --timeout must be a positive integer (ms)\n\n${HELP}`)
    return 2
  }
  let url: string
  try {
    url = resolveNodeUrl({ url: values.url }).url
  } catch (e) {
    io.err(`tongban node: ${e instanceof ConfigError ? e.message : (e as Error).stack}`)
    return 1
  }
  const s = await nodeStatus(url, { timeoutMs, metricsToken: values['metrics-token'] ?? process.env.TONGBAN_METRICS_TOKEN })
  if (values.json) io.out(JSON.stringify(s))
  else {
    if (!s.live) io.err(`tongban node status: ${s.url}: ${s.error ?? 'not live'}`)
    else {
      const n = s.node
      io.out(`${s.url}: ${s.ready ? 'ready' : 'NOT READY'}${s.readiness ? ` (postgres ${s.readiness.postgres}, redis ${s.readiness.redis})` : ''}`)
      if (n) {
        io.out(`  node     ${n.id} ${n.name} (${n.tier}, region ${n.region}), replica ${n.replica}`)
        io.out(`  public   ${n.publicUrl}`)
        io.out(`  signing  ${n.auditAlg}, kid ${n.kid}`)
      }
      if (s.certificate) io.out(`  cert     ${s.certificate.subject}; valid until ${s.certificate.notAfter} (${s.certificate.daysLeft} days)`)
      if (s.certificate?.warning) io.out(`  WARNING  ${s.certificate.warning}`)
      if (s.queues) {
        for (const [q, st] of Object.entries(s.queues)) {
          io.out(`  queue    ${q}: ${['waiting', 'active', 'delayed', 'failed'].map((k) => `${k} ${st[k] ?? 0}`).join(', ')}`)
        }
      } else io.out('  queues   (metrics not reachable from here: give --metrics-token, or run on the node)')
    }
  }
  return s.live && s.ready ? 0 : 1
}
