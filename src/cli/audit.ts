// `tongban audit …`: the auditor's and the operator's command line for the audit log.
//   export     write an offline-verifiable bundle (from the database, or from a node over HTTP)
//   verify     check a bundle with nothing but it and the root CA (no database, no network)
//   integrity  re-verify the log in the database over a range
//   anchor     record the current chain heads (and print them: keep them elsewhere too)
//   retention  export, verify, then drop whole monthly partitions before a month
//   acknowledge-cut  let a cut chain seal again, after the high-water mark (src/audit/high-water.ts)
import { createWriteStream, readFileSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { hostname, userInfo } from 'node:os'
import { parseArgs } from 'node:util'
import { loadConfig, type Config } from '../config/index.js'
import { createPool, type Db } from '../stores/postgres.js'
import { exportBundle, verifyBundle } from '../auditor/bundle.js'
import { chainHeads, verifyDatabase, type Anchor, type IntegrityReport } from '../auditor/integrity.js'
import { NodeClient } from '../tiers/node-client.js'
import { fetchParentHeads } from '../tiers/checkpoint-push.js'
import { describeFailure } from './node-url.js'
import { retentionPlan, runRetention, RetentionRefused, type RetentionDone } from '../auditor/retention.js'
import { Sealer } from '../audit/sealer.js'
import { buildAuditRecord } from '../audit/plugin.js'
import { createSigner } from '../pki/suites.js'
import { certThumbprint } from '../pki/thumbprint.js'
import { evidenceVersionOf } from '../pki/plugin.js'
import { digest } from '../evidence/evidence.js'
import { createRedis } from '../stores/redis.js'
import { HighWaterStore, knownMarks, recordedCuts } from '../audit/high-water.js'

const USAGE = `Usage: tongban audit <command> [options]

  export --from T --to T [--chain C] [--out FILE]
         [--url URL --token TOKEN]      from a running node (GET /v1/audit/export) instead of the database
      Writes the batches whose checkpoint time is in [from, to) with their checkpoints, the
      node certificates and the CA chain. Default FILE: audit-<node>-<from>-<to>.tongban-audit.jsonl.gz

  verify <bundle> --ca CA.pem [--head HASH]... [--evidence HEADER|@FILE [--body FILE]]... [--json]
      Needs nothing but the bundle and the trusted root CA certificate. --head: a checkpoint
      hash you kept (a cut bundle or log is then detected). --evidence/--body: a consumer's
      saved Tongban-Evidence and response body, matched to their record in the bundle; a
      checkpoint the evidence names that the bundle lacks or contradicts is reported as a
      cut. Without any --body, only the evidence's checkpoint and record are checked.

  integrity [--from T] [--to T] [--chain C] [--head HASH]... [--json]
      Re-verifies the log in the database (default: everything). A node with a parent also
      compares its chains with the checkpoint heads the parent holds for it (mTLS, node
      certificate), and with the chains' high-water marks (TONGBAN_AUDIT_STATE_DIR files and
      Redis): a cut tail is then reported as truncated; an acknowledged one as cut.

  acknowledge-cut --chain C --reason TEXT [--by NAME]
      After a cut was found (tongban_audit_chain_cut, /readyz): records who, when and why in
      audit_alarms; the chain then seals again from its high-water mark + 1 (a signed seq is
      never reused), and the gap stays reported by integrity as an acknowledged cut.

  anchor [--out FILE] [--by NAME]
      Records the head of every chain in audit_anchors and prints them as JSON.

  retention --before YYYY-MM --export-dir DIR [--dry-run]
      For every monthly partition before the month: export (whole batches), verify the export,
      record it in audit_retention, detach and drop the partition, and seal an admin record
      (operation audit.retention). Runs as the database owner role.

Exit status: 0 ok (verify/integrity: intact), 1 failure or tampering found, 2 usage error.
`

type Values = Record<string, string | boolean | string[] | undefined>

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args
  if (!sub || sub === '--help' || sub === '-h') {
    process.stdout.write(USAGE)
    return sub ? 0 : 2
  }
  let parsed
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        from: { type: 'string' }, to: { type: 'string' }, chain: { type: 'string' }, out: { type: 'string' },
        url: { type: 'string' }, token: { type: 'string' }, ca: { type: 'string' }, head: { type: 'string', multiple: true },
        evidence: { type: 'string', multiple: true }, body: { type: 'string', multiple: true }, json: { type: 'boolean' },
        reason: { type: 'string' },
        before: { type: 'string' }, 'export-dir': { type: 'string' }, 'dry-run': { type: 'boolean' }, by: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (e) {
    return usage((e as Error).message)
  }
  const v = parsed.values as Values
  if (v.help) {
    process.stdout.write(USAGE)
    return 0
  }
  try {
    switch (sub) {
      case 'verify':
        return await verify(parsed.positionals, v)
      case 'export':
        return await withDb(v, (config, db) => exportCmd(config, db, v), !!v.url)
      case 'integrity':
        return await withDb(v, (config, db) => integrity(config, db!, v))
      case 'anchor':
        return await withDb(v, (config, db) => anchor(config, db!, v))
      case 'retention':
        return await withDb(v, (config, db) => retention(config, db!, v))
      case 'acknowledge-cut':
        return await withDb(v, (config, db) => acknowledgeCut(config, db!, v))
      default:
        return usage(`unknown command ${sub}`)
    }
  } catch (e) {
    if (e instanceof UsageError) return usage(e.message)
    if (e instanceof RetentionRefused) {
      process.stderr.write(`tongban audit ${sub}: refused: ${e.message}\n`)
      return 1
    }
    process.stderr.write(`tongban audit ${sub}: ${(e as Error).message}\n`)
    return 1
  }
}

class UsageError extends Error {}

function usage(message: string): number {
  process.stderr.write(`tongban audit: ${message}\n\n${USAGE}`)
  return 2
}

const date = (s: string | undefined, name: string): Date | undefined => {
  if (s === undefined) return undefined
  const d = new Date(s)
  if (Number.isNaN(d.getTime())) throw new UsageError(`--${name} is not a date/time: ${s}`)
  return d
}

async function withDb(v: Values, f: (config: Config, db: Db | null) => Promise<number>, noDb = false): Promise<number> {
  const config = loadConfig()
  if (noDb) return f(config, null)
  const db = createPool(config.postgres, 'tongban-audit-cli')
  try {
    return await f(config, db)
  } finally {
    await db.end()
  }
}

function printReport(r: IntegrityReport & { evidence?: Array<{ requestId: string | null; ok: boolean; chain?: string; seq?: number; idx?: number; reason?: string }> }, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(r)}\n`)
    return
  }
  const f = r.firstFailure
  process.stdout.write(r.ok
    ? `intact: ${r.records} records in ${r.checkpoints} signed batches on ${r.chains.length} chain(s); ${r.anchorsChecked} anchor(s) checked; ${r.retainedBatches} batch(es) retained\n`
    : `TAMPERED: ${f ? `${f.kind} at ${f.chain}#${f.seq}${f.idx !== undefined ? `/${f.idx}` : ''}: ${f.detail}` : 'evidence did not match'} (${r.failureCount} failure(s))\n`)
  for (const c of r.chains) process.stdout.write(`  chain ${c.chain}: #${c.firstSeq}…#${c.lastSeq}, head ${c.head}\n`)
  for (const w of r.warnings) process.stdout.write(`  warning: ${w}\n`)
  for (const e of r.evidence ?? []) {
    process.stdout.write(e.ok ? `  evidence ${e.requestId}: matches record ${e.chain}#${e.seq}/${e.idx}\n` : `  evidence ${e.requestId ?? '?'}: NO MATCH (${e.reason})\n`)
  }
}

async function verify(positionals: string[], v: Values): Promise<number> {
  if (positionals.length !== 1) throw new UsageError('give exactly one bundle file')
  if (typeof v.ca !== 'string') throw new UsageError('--ca <root CA certificate> is required (the trust anchor is never taken from the bundle)')
  const evidence = (v.evidence as string[] | undefined) ?? []
  const bodies = (v.body as string[] | undefined) ?? []
  if (bodies.length && evidence.length !== bodies.length) throw new UsageError('give one --body per --evidence (or none)')
  const caPem = readFileSync(v.ca, 'utf8')
  const ev = await Promise.all(evidence.map(async (h, i) => ({
    header: h.startsWith('@') ? (await readFile(h.slice(1), 'utf8')).trim() : h,
    body: bodies.length ? await readFile(bodies[i]) : undefined,
  })))
  const r = await verifyBundle(positionals[0], { caPem, heads: (v.head as string[] | undefined) ?? [], evidence: ev })
  printReport(r, !!v.json)
  return r.ok ? 0 : 1
}

async function exportCmd(config: Config, db: Db | null, v: Values): Promise<number> {
  const from = date(v.from as string | undefined, 'from')
  const to = date(v.to as string | undefined, 'to')
  if (!from || !to) throw new UsageError('--from and --to are required')
  const chain = v.chain as string | undefined
  const day = (d: Date) => d.toISOString().slice(0, 10)
  if (v.url) {
    if (typeof v.token !== 'string') throw new UsageError('--url needs --token (an auditor access token)')
    const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), ...(chain ? { chain } : {}) })
    const url = `${String(v.url).replace(/\/+$/, '')}/v1/audit/export?${q}`
    let res: Response
    try {
      res = await fetch(url, { headers: { authorization: `Bearer ${v.token}` } })
    } catch (e) {
      throw new Error(`cannot reach the node: ${describeFailure(e, `GET ${url}`)}`)
    }
    if (!res.ok) {
      const text = await res.text()
      let code: unknown
      try {
        code = JSON.parse(text).code
      } catch {}
      throw new Error(`GET ${url} answered HTTP ${res.status}${typeof code === 'string' ? ` ${code}` : ''}: ${text.slice(0, 500)}`)
    }
    const out = (v.out as string | undefined) ?? `audit-${config.node.id}-${day(from)}-${day(to)}.tongban-audit.jsonl`
    await writeFile(out, Buffer.from(await res.arrayBuffer()))
    process.stdout.write(`wrote ${out}\n`)
    const evidence = res.headers.get('tongban-evidence')
    if (evidence) {
      await writeFile(`${out}.evidence`, evidence + '\n')
      process.stdout.write(`the node's signed evidence for this export: ${out}.evidence\n`)
    }
    return 0
  }
  const out = (v.out as string | undefined) ?? `audit-${config.node.id}-${day(from)}-${day(to)}.tongban-audit.jsonl.gz`
  const started = performance.now()
  const certPem = readFileSync(signing(config).certFile, 'utf8')
  const caPem = readFileSync(signing(config).caFile, 'utf8')
  const r = await exportBundle(db!, createWriteStream(out), { node: config.node.id, from, to, chain, certificates: [certPem], caChain: [caPem] })
  process.stdout.write(`wrote ${out}: ${r.records} records, ${r.checkpoints} checkpoints, ${r.chains.length} chain(s), ${r.bytes} bytes, sha256 ${r.sha256} (${Math.round(performance.now() - started)} ms)\n`)
  for (const c of r.chains) process.stdout.write(`  chain ${c.chain}: #${c.firstSeq}…#${c.lastSeq}, prev ${c.prev}, head ${c.head}\n`)
  return 0
}

async function integrity(config: Config, db: Db, v: Values): Promise<number> {
  let parent: { parent: string; heads: Anchor[] } | undefined
  let parentProblem: string | null = null
  const p = config.node.parent ? config.tiers.nodes.find((n) => n.id === config.node.parent) : undefined
  if (p) {
    const client = new NodeClient({
      certPem: readFileSync(config.pki.certFile, 'utf8'), keyPem: readFileSync(config.pki.keyFile, 'utf8'), caPem: readFileSync(config.pki.caFile, 'utf8'),
      timeoutMs: 10_000, maxConcurrentPerHop: 1, breaker: config.tiers.breaker,
    })
    try {
      parent = { parent: p.id, heads: await fetchParentHeads(client, p, config.node.id, 10_000) }
    } catch (e) {
      parentProblem = (e as Error).message
    } finally {
      await client.close()
    }
  }
  const redis = createRedis(config.redis)
  let marks
  try {
    await redis.connect().catch(() => {})
    const store = new HighWaterStore(config.audit.stateDir, redis, (e) => process.stderr.write(`warning: the Redis copy of the high-water marks could not be read (${e.message})\n`))
    marks = await knownMarks(db, store, [config.replicaId])
  } finally {
    redis.disconnect()
  }
  const r = await verifyDatabase(db, {
    parentHeads: parent,
    highWater: { from: `${config.audit.stateDir} and Redis`, marks },
    from: date(v.from as string | undefined, 'from'),
    to: date(v.to as string | undefined, 'to'),
    chain: v.chain as string | undefined,
    heads: (v.head as string[] | undefined) ?? [],
    caPem: readFileSync(signing(config).caFile, 'utf8'),
    certificates: [readFileSync(signing(config).certFile, 'utf8')],
  })
  if (parentProblem) r.warnings.push(`the heads held by the parent node could not be read (${parentProblem})`)
  printReport(r, !!v.json)
  return r.ok ? 0 : 1
}

const actor = (v: Values) => (v.by as string | undefined) ?? `${userInfo().username}@${hostname()}`

async function anchor(config: Config, db: Db, v: Values): Promise<number> {
  const heads = await chainHeads(db)
  const by = actor(v)
  for (const h of heads) await db.query('INSERT INTO audit_anchors (chain, seq, hash, anchored_by) VALUES ($1, $2, $3, $4)', [h.chain, h.seq, h.hash, by])
  const out = JSON.stringify({ node: config.node.id, anchoredAt: new Date().toISOString(), anchoredBy: by, anchors: heads.map(({ chain, seq, hash, time }) => ({ chain, seq, hash, time })) }, null, 2)
  if (typeof v.out === 'string') await writeFile(v.out, out + '\n')
  process.stdout.write(out + '\n')
  return 0
}

async function acknowledgeCut(config: Config, db: Db, v: Values): Promise<number> {
  if (typeof v.chain !== 'string') throw new UsageError('--chain is required')
  if (typeof v.reason !== 'string' || !v.reason.trim()) throw new UsageError('--reason is required (why the chain may go on: the incident, who was told)')
  const open = (await recordedCuts(db, v.chain)).filter((c) => !c.acknowledged)
  if (!open.length) {
    process.stderr.write(`tongban audit acknowledge-cut: no unacknowledged cut is recorded for chain ${v.chain}\n`)
    return 1
  }
  const by = actor(v)
  for (const c of open) {
    // The row names the very mark the node found: it resumes after that one, and only that.
    await db.query(
      `INSERT INTO audit_alarms (chain, kind, node, committed_seq, committed_hash, hwm_seq, hwm_hash, detail, acknowledged_by, reason)
       SELECT chain, 'cut-acknowledged', $4, committed_seq, committed_hash, hwm_seq, hwm_hash, detail, $5, $6
       FROM audit_alarms WHERE chain = $1 AND kind = 'cut' AND hwm_seq = $2 AND hwm_hash = $3 ORDER BY id LIMIT 1`,
      [c.chain, c.toSeq, c.hwmHash, config.node.id, by, v.reason.trim()],
    )
    process.stdout.write(`acknowledged: chain ${c.chain}, checkpoints #${c.fromSeq}…#${c.toSeq} cut (found ${c.detectedAt}); it seals again from #${c.toSeq + 1}; integrity reports the gap as an acknowledged cut\n`)
  }
  return 0
}

async function retention(config: Config, db: Db, v: Values): Promise<number> {
  if (typeof v.before !== 'string') throw new UsageError('--before YYYY-MM is required')
  if (v['dry-run']) {
    const plan = await retentionPlan(db, v.before)
    if (!plan.length) process.stdout.write('nothing to remove\n')
    for (const p of plan) process.stdout.write(`would export and remove ${p.partition} (${p.from.toISOString().slice(0, 7)}): ${p.records} records\n`)
    return 0
  }
  if (typeof v['export-dir'] !== 'string') throw new UsageError('--export-dir is required: partitions are only removed after export')
  const done = await runRetention(db, {
    before: v.before,
    exportDir: v['export-dir'],
    node: config.node.id,
    caPem: readFileSync(signing(config).caFile, 'utf8'),
    certificates: [readFileSync(signing(config).certFile, 'utf8')],
    actor: actor(v),
    seal: cliSealer(config, db, actor(v)),
    log: (m) => process.stdout.write(`${m}\n`),
  })
  if (!done.length) process.stdout.write('nothing to remove\n')
  return 0
}

/** Seals admin records of the command line on a chain of its own (`<node>-cli`). */
export function cliSealer(config: Config, db: Db, by: string): (d: RetentionDone) => Promise<void> {
  return async (d) => {
    const certPem = readFileSync(signing(config).certFile, 'utf8')
    const version = evidenceVersionOf(config)
    const sealer = new Sealer({
      db,
      node: config.node.id,
      chain: `${config.node.id}-cli`,
      kid: certThumbprint(certPem),
      signer: createSigner(config.audit.alg, readFileSync(signing(config).keyFile, 'utf8')),
      version,
      batchMaxSize: 1,
      batchWindowMs: 0,
    })
    const manifest = JSON.stringify({ partition: d.partition, from: d.from, to: d.to, records: d.records, through: d.through, bundleFile: d.bundleFile })
    const record = buildAuditRecord({
      node: config.node.id,
      requestId: `retention-${d.partition}-${Date.now()}`,
      principal: null,
      audit: { resource: d.partition, operator: by.replace(/[^A-Za-z0-9._:@-]/g, '_').slice(0, 64), consumer: { department: config.node.id, system: 'tongban-cli', region: config.node.region } },
      status: 200,
      requestBytes: manifest,
      responseBody: '',
      defaults: { operation: 'audit.retention' },
      version,
    })
    // The bundle's own digest, in the node's evidence format (SM3 for v2).
    record.responseDigest = version === 1 ? `sha256:${d.bundleSha256}` : digest(readFileSync(d.bundleFile), version)
    await sealer.seal(record)
    await sealer.close()
  }
}

/** The files of what signs the checkpoints: an SM2 node's signing certificate, else the node's own. */
function signing(config: Config): { certFile: string; keyFile: string; caFile: string } {
  const p = config.pki
  return { certFile: p.signCertFile ?? p.certFile, keyFile: p.signKeyFile ?? p.keyFile, caFile: p.signCaFile ?? p.caFile }
}
