// Integrity of the log over a range, the signed checkpoints, the heads of every chain and
// the anchors an auditor recorded.
import type { FastifyInstance } from 'fastify'
import type { Db } from '../../stores/postgres.js'
import { chainHeads, verifyDatabase, type FailureKind } from '../integrity.js'
import { knownMarks } from '../../audit/high-water.js'
import type { ProblemCode } from '../../problems/problem.js'
import { MAX_PAGE } from '../search.js'
import { auditorRoute, ERRORS, filterProperties, HASH, open, requireOrderedRange } from './shared.js'

// The audit reason of an integrity check that found a failure: its first failure's kind.
const INTEGRITY_REASONS = {
  'leaf-mismatch': 'AUDIT_INTEGRITY_LEAF_MISMATCH',
  'column-mismatch': 'AUDIT_INTEGRITY_COLUMN_MISMATCH',
  'root-mismatch': 'AUDIT_INTEGRITY_ROOT_MISMATCH',
  'record-missing': 'AUDIT_INTEGRITY_RECORD_MISSING',
  'record-extra': 'AUDIT_INTEGRITY_RECORD_EXTRA',
  'orphan-record': 'AUDIT_INTEGRITY_ORPHAN_RECORD',
  'checkpoint-hash': 'AUDIT_INTEGRITY_CHECKPOINT_HASH',
  'checkpoint-fields': 'AUDIT_INTEGRITY_CHECKPOINT_FIELDS',
  'unknown-kid': 'AUDIT_INTEGRITY_UNKNOWN_KID',
  'untrusted-certificate': 'AUDIT_INTEGRITY_UNTRUSTED_CERTIFICATE',
  'unsupported-alg': 'AUDIT_INTEGRITY_UNSUPPORTED_ALG',
  'bad-signature': 'AUDIT_INTEGRITY_BAD_SIGNATURE',
  'chain-gap': 'AUDIT_INTEGRITY_CHAIN_GAP',
  'chain-broken': 'AUDIT_INTEGRITY_CHAIN_BROKEN',
  truncated: 'AUDIT_INTEGRITY_TRUNCATED',
  cut: 'AUDIT_INTEGRITY_CUT',
  'anchor-mismatch': 'AUDIT_INTEGRITY_ANCHOR_MISMATCH',
  'bundle-malformed': 'AUDIT_INTEGRITY_BUNDLE_MALFORMED',
} as const satisfies Record<FailureKind, ProblemCode>

type ParentHeads = Awaited<ReturnType<FastifyInstance['tiers']['parentHeads']>>
interface CheckpointQuery { chain?: string; from?: string; to?: string; afterSeq?: number; limit: number }

export default async function integrity(app: FastifyInstance) {
  const { config, identity } = app

  app.get('/v1/audit/integrity', auditorRoute(app, 'audit.integrity', {
    summary: 'Re-verify the audit log over a range (auditor)',
    description: 'For every checkpoint whose time is in [from, to) (default: the last 24 hours; `all=true` for everything): each record against its leaf, the leaves against the signed Merkle root, the checkpoint signature against a certificate that chains to the trusted CA, and the hash chain (contiguous seqs, each prev naming the previous hash, including the checkpoints just outside the range). A cut tail is found against `head` (a checkpoint hash the auditor kept, repeatable), the anchors stored by POST /v1/audit/anchors and, on a node with a parent, the heads the parent holds for it (GET /v1/tiers/checkpoints/heads at the parent). For very large ranges use `tongban audit integrity` or an export.',
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: {
        from: filterProperties.from,
        to: filterProperties.to,
        all: { type: 'boolean', default: false },
        chain: filterProperties.chain,
        head: { anyOf: [{ type: 'string', pattern: HASH }, { type: 'array', maxItems: 64, items: { type: 'string', pattern: HASH } }] },
      },
    },
    response: { 200: open, ...ERRORS },
  }), async (request) => {
    const q = request.query as { from?: string; to?: string; all?: boolean; chain?: string; head?: string | string[] }
    const to = q.to ? new Date(q.to) : q.all ? undefined : new Date()
    const from = q.from ? new Date(q.from) : q.all ? undefined : new Date(Date.now() - 86400_000)
    requireOrderedRange(from, to)
    const { parentHeads, parentProblem } = await readParentHeads(app)
    const report = await verifyDatabase(app.db, {
      from, to, chain: q.chain,
      heads: q.head === undefined ? [] : Array.isArray(q.head) ? q.head : [q.head],
      parentHeads: parentHeads ?? undefined,
      // The high-water marks: a tail cut here is visible against what this node signed.
      highWater: { from: 'file and Redis', marks: await knownMarks(app.db, app.auditTail.store, [app.auditTail.chain]) },
      caPem: identity.signing.caPem,
      certificates: [identity.signing.certPem],
    })
    if (parentProblem) report.warnings.push(`the heads held by the parent node could not be read (${parentProblem}): a cut tail is only visible against anchors`)
    if (!report.ok) request.audit.reason = INTEGRITY_REASONS[report.firstFailure!.kind]
    return {
      from: from?.toISOString() ?? null, to: to?.toISOString() ?? null, ...report,
      parentHeads: parentHeads ? { node: parentHeads.parent, heads: parentHeads.heads.length } : null,
    }
  })

  app.get('/v1/audit/checkpoints', auditorRoute(app, 'audit.checkpoints', {
    summary: 'Signed checkpoints (auditor)',
    description: 'Checkpoints in seq order per chain, each with its signature and hash: what the chain and every piece of evidence rest on.',
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: {
        chain: filterProperties.chain,
        from: filterProperties.from,
        to: filterProperties.to,
        afterSeq: { type: 'integer', minimum: 0 },
        limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 100 },
      },
    },
    response: { 200: open, ...ERRORS },
  }), async (request) => listCheckpoints(app.db, request.query as CheckpointQuery))

  app.get('/v1/audit/heads', auditorRoute(app, 'audit.heads', {
    summary: 'The newest signed checkpoint of every chain (auditor)',
    description: 'Keep these hashes outside the gateway (or record them with POST /v1/audit/anchors): a later integrity check given them as `head` detects a cut tail.',
    response: { 200: open, ...ERRORS },
  }), async () => ({ node: config.node.id, heads: await chainHeads(app.db) }))

  app.post('/v1/audit/anchors', auditorRoute(app, 'audit.anchor', {
    summary: 'Anchor the current head of every chain (auditor)',
    description: 'Records the heads in audit_anchors and returns them; every later integrity check verifies that these checkpoints are still there. Keep the returned hashes outside the gateway too.',
    response: { 200: open, 201: open, ...ERRORS },
  }), async (request, reply) => {
    const heads = await chainHeads(app.db)
    const by = request.principal!.system
    for (const h of heads) {
      await app.db.query('INSERT INTO audit_anchors (chain, seq, hash, anchored_by) VALUES ($1, $2, $3, $4)', [h.chain, h.seq, h.hash, by])
    }
    reply.code(201)
    return { node: config.node.id, anchoredAt: new Date().toISOString(), anchors: heads.map((h) => ({ chain: h.chain, seq: h.seq, hash: h.hash, time: h.time })) }
  })

  app.get('/v1/audit/anchors', auditorRoute(app, 'audit.anchors', {
    summary: 'Anchors recorded so far (auditor)',
    response: { 200: open, 201: open, ...ERRORS },
  }), async () => {
    const { rows } = await app.db.query('SELECT chain, seq, hash, anchored_at, anchored_by FROM audit_anchors ORDER BY id DESC LIMIT 500')
    return { anchors: rows.map((r) => ({ chain: r.chain, seq: Number(r.seq), hash: r.hash, anchoredAt: (r.anchored_at as Date).toISOString(), anchoredBy: r.anchored_by })) }
  })
}

// A node with a parent compares its chains with the heads the parent holds for it (tiers
// checkpoint push): a tail cut here is visible there. Unreachable: a warning, not a failure.
async function readParentHeads(app: FastifyInstance): Promise<{ parentHeads: ParentHeads; parentProblem: string | null }> {
  if (!app.hasDecorator('tiers')) return { parentHeads: null, parentProblem: null }
  let parentProblem: string | null = null
  const parentHeads = await app.tiers.parentHeads().catch((e: Error) => {
    parentProblem = e.message
    return null
  })
  return { parentHeads, parentProblem }
}

async function listCheckpoints(db: Db, q: CheckpointQuery) {
  const cond: string[] = []
  const params: unknown[] = []
  if (q.chain) cond.push(`chain = $${params.push(q.chain)}`)
  if (q.from) cond.push(`time >= $${params.push(q.from)}`)
  if (q.to) cond.push(`time < $${params.push(q.to)}`)
  if (q.afterSeq !== undefined) cond.push(`seq > $${params.push(q.afterSeq)}`)
  const { rows } = await db.query(
    `SELECT checkpoint, sig, hash FROM audit_checkpoints ${cond.length ? `WHERE ${cond.join(' AND ')}` : ''}
     ORDER BY chain, seq LIMIT ${q.limit + 1}`,
    params,
  )
  const items = rows.slice(0, q.limit).map((r) => {
    const { sig: _s, ...checkpoint } = r.checkpoint
    return { checkpoint, sig: r.sig, hash: r.hash }
  })
  return { items, more: rows.length > q.limit }
}
