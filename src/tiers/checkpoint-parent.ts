// Checkpoints from the children, parent side (docs/audit.md: "checkpoints are also sent to
// the parent node, so a truncated chain is detectable too"). A child sends its signed
// checkpoints (every chain, in seq order, from where the parent stands); the parent keeps a
// verified, append-only copy of each child's chains and answers, to the child and to
// auditors, the heads it holds — what the child's own log must still contain.
//
// Accepted only if every checkpoint names the sending child, is signed (per `kid`) by a
// certificate that names that child and chains to the trusted CA, and extends what the
// parent holds: seq = held + 1 with prev = the held hash. A checkpoint at a seq already held
// with another hash is a fork (the child rewrote, or cut and regrew, its chain): refused with
// 409 CHECKPOINT_FORK, both hashes kept in tiers_checkpoint_conflicts, logged at error and
// sealed in the parent's audit log. One level only: a node's own chains are its parent's
// business, not its grandparent's.
import { X509Certificate } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { TLSSocket } from 'node:tls'
import { Problem } from '../problems/problem.js'
import { problemResponses } from '../problems/schema.js'
import { jcs } from '../evidence/jcs.js'
import { buildAuditRecord } from '../audit/plugin.js'
import { checkpointHash, type Checkpoint } from '../evidence/evidence.js'
import { CertificateSet, splitPem } from '../pki/certificate-set.js'
import { GENESIS } from '../audit/store.js'
import { isSuiteName, verifySignature } from '../pki/suites.js'
import { nodeIdOfCert } from './assertion.js'
import { peerNodeOf } from './listener.js'
import type { Topology } from './topology.js'
import type { Db } from '../stores/postgres.js'

export const CHECKPOINTS_PATH = '/v1/tiers/checkpoints'
export const HEADS_PATH = '/v1/tiers/checkpoints/heads'
export const MAX_PUSH = 2000

export interface PushedCheckpoint {
  checkpoint: Checkpoint
  sig: string
}

export interface CheckpointPush {
  v: 1
  node: string
  /** PEMs of the certificates named by the checkpoints' kids (the parent keeps them). */
  certificates: string[]
  checkpoints: PushedCheckpoint[]
}

export interface HeldHead {
  chain: string
  seq: number
  hash: string
}

const HEX64 = '^[0-9a-f]{64}$'
const checkpointSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['node', 'chain', 'seq', 'root', 'size', 'prev', 'time', 'alg', 'kid'],
  properties: {
    // Evidence v2 (SM3; docs/evidence.md): the checkpoint says so; absent in v1.
    v: { const: 2 },
    node: { type: 'string', pattern: '^[1-9][0-9]{5}$' },
    chain: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,128}$' },
    seq: { type: 'integer', minimum: 1 },
    root: { type: 'string', pattern: HEX64 },
    size: { type: 'integer', minimum: 1 },
    prev: { type: 'string', pattern: HEX64 },
    time: { type: 'string', format: 'date-time' },
    alg: { type: 'string', maxLength: 16 },
    kid: { type: 'string', pattern: '^[A-Za-z0-9_-]{20,64}$' },
  },
}
export const pushSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['v', 'node', 'certificates', 'checkpoints'],
  properties: {
    v: { const: 1 },
    node: { type: 'string', pattern: '^[1-9][0-9]{5}$' },
    certificates: { type: 'array', maxItems: 16, items: { type: 'string', maxLength: 16_384 } },
    checkpoints: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_PUSH,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['checkpoint', 'sig'],
        properties: { checkpoint: checkpointSchema, sig: { type: 'string', pattern: '^[A-Za-z0-9_-]{16,2048}$' } },
      },
    },
  },
}

/** The heads the parent holds for a child, every chain (or only `chains`). */
export async function heldHeads(db: Db | { query: Db['query'] }, node: string, chains?: string[]): Promise<HeldHead[]> {
  const { rows } = await db.query(
    `SELECT DISTINCT ON (chain) chain, seq, hash FROM tiers_child_checkpoints
     WHERE node = $1 ${chains ? 'AND chain = ANY($2)' : ''} ORDER BY chain, seq DESC`,
    chains ? [node, chains] : [node],
  )
  return rows.map((r) => ({ chain: r.chain, seq: Number(r.seq), hash: r.hash }))
}

export interface Accepted {
  accepted: number
  duplicates: number
  heads: HeldHead[]
}

/**
 * Verifies and stores a child's push. Throws a Problem on refusal (after recording a fork).
 * `log` gets the loud line of a fork; no personal data is involved (hashes and seqs only).
 */
export async function acceptCheckpoints(
  db: Db,
  o: { child: string; push: CheckpointPush; caPem: string; log: { error(o: object, m: string): void } },
): Promise<Accepted> {
  const { child, push } = o
  if (push.node !== child) throw new Problem(403, 'CHECKPOINT_NODE_MISMATCH', `the push names node ${push.node}, but the sender is node ${child}`)

  // Certificates: those sent, and those this child signed with before.
  const certs = new CertificateSet(o.caPem)
  const kids = new Set(push.checkpoints.map((c) => c.checkpoint.kid))
  const known = await db.query('SELECT kid, cert_pem FROM tiers_child_certificates WHERE node = $1 AND kid = ANY($2)', [child, [...kids]])
  for (const r of known.rows) certs.add(r.cert_pem)
  const fresh = new Map<string, string>()
  for (const pem of push.certificates) {
    try {
      const kid = certs.add(pem)
      fresh.set(kid, splitPem(pem)[0])
    } catch {
      throw new Problem(400, 'CHECKPOINT_UNTRUSTED', 'a certificate of the push cannot be read')
    }
  }
  const named = new Map<string, string | null>()
  for (const kid of kids) {
    const pem = certs.pem(kid)
    if (!pem) throw new Problem(400, 'CHECKPOINT_UNTRUSTED', `no certificate with kid ${kid}`)
    named.set(kid, nodeIdOfCert(new X509Certificate(pem)))
    if (named.get(kid) !== child) throw new Problem(403, 'CHECKPOINT_NODE_MISMATCH', `certificate ${kid} is node ${named.get(kid) ?? '?'}'s, not node ${child}'s`)
  }

  // Every checkpoint: the sender's node, a trusted certificate valid then, a good signature.
  const byChain = new Map<string, Array<PushedCheckpoint & { hash: string }>>()
  for (const p of push.checkpoints) {
    const cp = p.checkpoint
    const at = `${cp.chain}#${cp.seq}`
    if (cp.node !== child) throw new Problem(403, 'CHECKPOINT_NODE_MISMATCH', `checkpoint ${at} names node ${cp.node}, but the sender is node ${child}`)
    if (!isSuiteName(cp.alg)) throw new Problem(400, 'CHECKPOINT_UNTRUSTED', `checkpoint ${at}: unsupported signature suite ${cp.alg}`)
    const problem = certs.problem(cp.kid, cp.time)
    if (problem) throw new Problem(400, 'CHECKPOINT_UNTRUSTED', `checkpoint ${at}: certificate ${cp.kid} ${problem}`)
    if (!verifySignature(cp.alg, certs.pem(cp.kid)!, Buffer.from(jcs(cp)), Buffer.from(p.sig, 'base64url'))) {
      throw new Problem(400, 'CHECKPOINT_BAD_SIGNATURE', `checkpoint ${at}: the signature does not verify`)
    }
    let list = byChain.get(cp.chain)
    if (!list) byChain.set(cp.chain, (list = []))
    list.push({ ...p, hash: checkpointHash(cp) })
  }
  for (const [chain, list] of byChain) {
    list.sort((a, b) => a.checkpoint.seq - b.checkpoint.seq)
    for (let i = 1; i < list.length; i++) {
      const [a, b] = [list[i - 1], list[i]]
      if (b.checkpoint.seq !== a.checkpoint.seq + 1 || b.checkpoint.prev !== a.hash) {
        throw new Problem(400, 'CHECKPOINT_CHAIN_BROKEN', `the push is not one contiguous chain: ${chain}#${b.checkpoint.seq} does not follow #${a.checkpoint.seq}`)
      }
    }
  }

  // Against what is held: one push per child at a time (advisory lock). Chains are judged
  // one by one: a fork or a gap in one chain does not hold back the others.
  const chains = [...byChain.keys()]
  const conn = await db.connect()
  const rows: Array<PushedCheckpoint & { hash: string }> = []
  const conflicts: Array<{ chain: string; seq: number; held: string; offered: string; p: PushedCheckpoint }> = []
  const gaps: Array<{ chain: string; heldSeq: number; seq: number }> = []
  let duplicates = 0
  try {
    await conn.query('BEGIN')
    await conn.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`tongban-child-checkpoints:${child}`])
    const held = new Map((await heldHeads(conn, child, chains)).map((h) => [h.chain, h]))
    for (const [chain, list] of byChain) {
      const head = held.get(chain) ?? { chain, seq: 0, hash: GENESIS }
      // Seqs already held: the same checkpoint again is a duplicate, another one a fork.
      const old = list.filter((p) => p.checkpoint.seq <= head.seq)
      const forks = conflicts.length
      if (old.length) {
        const { rows: have } = await conn.query(
          'SELECT seq, hash FROM tiers_child_checkpoints WHERE node = $1 AND chain = $2 AND seq = ANY($3)',
          [child, chain, old.map((p) => p.checkpoint.seq)],
        )
        const hashAt = new Map(have.map((r) => [Number(r.seq), r.hash as string]))
        for (const p of old) {
          const h = hashAt.get(p.checkpoint.seq)
          if (h === p.hash) duplicates++
          else conflicts.push({ chain, seq: p.checkpoint.seq, held: h ?? '?', offered: p.hash, p })
        }
      }
      const next = list.filter((p) => p.checkpoint.seq > head.seq)
      if (!next.length || conflicts.length > forks) continue
      const first = next[0]
      if (first.checkpoint.seq > head.seq + 1) {
        gaps.push({ chain, heldSeq: head.seq, seq: first.checkpoint.seq })
      } else if (first.checkpoint.prev !== head.hash) {
        // The child's #head.seq (named by this prev) is not the one held: a fork there.
        conflicts.push({ chain, seq: head.seq, held: head.hash, offered: first.checkpoint.prev, p: first })
      } else {
        rows.push(...next)
      }
    }
    if (rows.length) {
      await conn.query(
        `INSERT INTO tiers_child_checkpoints (node, chain, seq, hash, prev, time, kid, checkpoint, sig)
         SELECT $1, x->'checkpoint'->>'chain', (x->'checkpoint'->>'seq')::bigint, x->>'hash', x->'checkpoint'->>'prev',
           (x->'checkpoint'->>'time')::timestamptz, x->'checkpoint'->>'kid', x->'checkpoint', x->>'sig'
         FROM jsonb_array_elements($2::jsonb) AS x`,
        [child, JSON.stringify(rows)],
      )
    }
    for (const c of conflicts) {
      // Both hashes kept, with the child's signed checkpoint that contradicts the held one.
      await conn.query(
        `INSERT INTO tiers_checkpoint_conflicts (node, chain, seq, held_hash, offered_hash, offered_checkpoint, offered_sig)
         SELECT $1, $2, $3, $4, $5, $6, $7
         WHERE NOT EXISTS (SELECT 1 FROM tiers_checkpoint_conflicts WHERE node = $1 AND chain = $2 AND seq = $3 AND offered_hash = $5)`,
        [child, c.chain, c.seq, c.held, c.offered, JSON.stringify(c.p.checkpoint), c.p.sig],
      )
    }
    await storeCertificates(conn, child, fresh)
    await conn.query('COMMIT')
  } catch (e) {
    await conn.query('ROLLBACK').catch(() => {})
    throw e
  } finally {
    conn.release()
  }

  const heads = await heldHeads(db, child, chains)
  if (conflicts.length) {
    const c = conflicts[0]
    o.log.error({ child, chain: c.chain, seq: c.seq, heldHash: c.held, offeredHash: c.offered, conflicts: conflicts.length }, 'tiers checkpoints: FORK - the child offers a checkpoint that contradicts one already held; refused and recorded')
    throw new Problem(409, 'CHECKPOINT_FORK', `node ${child} chain ${c.chain}: checkpoint #${c.seq} held here is ${c.held}, the child now names ${c.offered}; its chain was rewritten or cut`, {
      chain: c.chain, seq: c.seq, heldHash: c.held, offeredHash: c.offered, conflicts: conflicts.length, accepted: rows.length, heads,
    })
  }
  if (gaps.length) {
    const g = gaps[0]
    throw new Problem(409, 'CHECKPOINT_GAP', `checkpoint ${g.chain}#${g.seq} does not follow #${g.heldSeq}, the last one held`, { chain: g.chain, heldSeq: g.heldSeq, accepted: rows.length, heads })
  }
  return { accepted: rows.length, duplicates, heads }
}

async function storeCertificates(conn: { query: Db['query'] }, child: string, fresh: Map<string, string>): Promise<void> {
  for (const [kid, pem] of fresh) {
    await conn.query('INSERT INTO tiers_child_certificates (kid, node, cert_pem) VALUES ($1, $2, $3) ON CONFLICT (kid) DO NOTHING', [kid, child, pem])
  }
}

/** The node id of an mTLS node peer, or null for any other request (the consumer port). */
function nodePeer(request: FastifyRequest): string | null {
  const socket = request.raw.socket as TLSSocket | undefined
  if (!socket || !(socket as { encrypted?: boolean }).encrypted || !socket.authorized) return null
  return nodeIdOfCert(socket.getPeerCertificate() as unknown as { subject: Record<string, string> })
}

/** POST /v1/tiers/checkpoints (children, node listener) and GET …/heads (the child itself, auditors). */
export function registerCheckpointRoutes(app: FastifyInstance, topology: Topology): void {
  const childOf = (id: string) => topology.children.find((c) => c.id === id)

  // Pushes are not audited one by one (every few seconds per child); refusals are.
  const sealRefusal = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    if (reply.statusCode < 400) return payload
    const body = typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : ''
    try {
      await app.sealer.seal(buildAuditRecord({
        node: app.config.node.id, requestId: request.id, principal: null, audit: request.audit,
        status: reply.statusCode, requestBytes: request.rawBody, responseBody: body,
        defaults: { resource: 'tiers/checkpoints', operation: 'tiers.checkpoints' }, version: app.sealer.version,
      }))
    } catch (err) {
      request.log.error({ err }, 'tiers checkpoints: the record of a refused push is not durable')
    }
    return payload
  }

  app.post(CHECKPOINTS_PATH, {
    schema: { hide: true, body: pushSchema },
    bodyLimit: 8 * 1024 * 1024,
    onSend: sealRefusal,
  }, async (request) => {
    const peer = peerNodeOf(request)
    request.audit.operator = `tongban-node-${peer}`
    if (!childOf(peer)) throw new Problem(403, 'NODE_NOT_CHILD', `node ${peer} is not a child of node ${topology.self.id}`)
    const push = request.body as CheckpointPush
    const r = await acceptCheckpoints(app.db, { child: peer, push, caPem: app.identity.casPem, log: request.log })
    request.log.info({ child: peer, accepted: r.accepted, duplicates: r.duplicates }, 'tiers checkpoints: received from child')
    return { node: topology.self.id, child: peer, ...r }
  })

  app.get<{ Querystring: { node: string } }>(HEADS_PATH, {
    onRequest: (request, reply, done) => {
      if (nodePeer(request)) return done()
      app.authenticate(request, reply, (err) => (err ? done(err) : app.requireRole('auditor')(request, reply, done)))
    },
    config: { audit: { resource: 'tiers/checkpoints', operation: 'tiers.checkpoint-heads' } },
    schema: {
      tags: ['tiers'],
      summary: 'The checkpoint heads this node holds for a child (auditor, or the child itself on the node listener)',
      description: 'The newest checkpoint of every chain of the child, as the child sent it (signed, verified here). The child\'s own audit log must still contain each of them: its integrity check compares them (a cut tail is `truncated`). `conflicts` counts refused checkpoints that contradicted one held (CHECKPOINT_FORK).',
      security: [{ bearer: [] }],
      querystring: {
        type: 'object',
        additionalProperties: false,
        required: ['node'],
        properties: { node: { type: 'string', pattern: '^[1-9][0-9]{5}$' } },
      },
      response: { 200: { type: 'object', additionalProperties: true }, ...problemResponses(400, 401, 403, 404) },
    },
  }, async (request) => {
    const node = request.query.node
    const peer = nodePeer(request)
    if (peer) {
      request.audit.operator = `tongban-node-${peer}`
      if (peer !== node) throw new Problem(403, 'NODE_NOT_CHILD', `node ${peer} may read its own heads only`)
    }
    if (!childOf(node)) throw new Problem(404, 'TIERS_NODE_UNKNOWN', `node ${node} is not a child of node ${topology.self.id}`)
    const { rows } = await app.db.query(
      `SELECT DISTINCT ON (chain) chain, seq, hash, time, received_at, checkpoint, sig FROM tiers_child_checkpoints
       WHERE node = $1 ORDER BY chain, seq DESC`,
      [node],
    )
    const [{ n }] = (await app.db.query('SELECT count(*)::int AS n FROM tiers_checkpoint_conflicts WHERE node = $1', [node])).rows
    return {
      node: topology.self.id,
      child: node,
      heads: rows.map((r) => ({
        chain: r.chain, seq: Number(r.seq), hash: r.hash, time: (r.time as Date).toISOString(),
        receivedAt: (r.received_at as Date).toISOString(), checkpoint: r.checkpoint, sig: r.sig,
      })),
      conflicts: n,
    }
  })
}
