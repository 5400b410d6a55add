// Search (GET with the filters in the query, POST with them in a body, also by a raw
// subject) and one record with its evidence.
import type { FastifyInstance } from 'fastify'
import { Problem } from '../../problems/problem.js'
import { problemResponses } from '../../problems/schema.js'
import type { Db } from '../../stores/postgres.js'
import { encodeEvidence, hashOfVersion, versionOf, type Evidence } from '../../evidence/evidence.js'
import { buildTree, leafHash } from '../../evidence/merkle.js'
import { jcs } from '../../evidence/jcs.js'
import { searchRecords, type SearchResult } from '../search.js'
import { auditorRoute, ERRORS, filterProperties, includeOwnProperty, open, searchFiltersOf, pageProperties, refusedSubject, resolver } from './shared.js'
import { refuseRawInQuery, takeSubject } from './subject-input.js'

const recordSchema = { type: 'object', additionalProperties: true, description: 'the audit record exactly as hashed into its leaf' }
const named = { type: ['object', 'null'], properties: { code: { type: 'string' }, name: { type: ['string', 'null'] } } }
const hitSchema = {
  type: 'object',
  properties: {
    chain: { type: 'string' }, seq: { type: 'integer' }, idx: { type: 'integer' }, leaf: { type: 'string' }, record: recordSchema,
    consumer: { ...named, description: "the record's consumer department by name (beside the record: the record stays exactly as hashed)" },
    provider: { ...named, description: "the provider of the record's resource (the catalogue), by name" },
  },
}

/** Names beside each hit (never inside the record, which must stay as hashed). */
async function withNames(app: FastifyInstance, result: SearchResult) {
  const providerOf = (resource: string | null) => (resource ? app.catalog.get(resource)?.provider.code ?? null : null)
  const dept = await app.departments.resolve(result.items.flatMap((i) => [i.record.consumer?.department, providerOf(i.record.resource)]))
  return { ...result, items: result.items.map((i) => ({ ...i, consumer: dept(i.record.consumer?.department), provider: dept(providerOf(i.record.resource)) })) }
}
const searchResponse = {
  type: 'object',
  properties: {
    items: { type: 'array', items: hitSchema },
    nextCursor: { type: ['string', 'null'] },
    limit: { type: 'integer' },
    order: { type: 'string' },
  },
}

export default async function records(app: FastifyInstance) {
  const resolve = resolver(app)

  app.get('/v1/audit/records', auditorRoute(app, 'audit.search', {
    summary: 'Search the audit log (auditor)',
    description: `Filters combine with AND. The calling auditor's own audit calls (audit.*) are hidden unless \`includeOwn=true\`. Newest first by default; stable order (time, chain, seq, idx); pass \`nextCursor\` back as \`cursor\`. Searching by a raw subject id is POST /v1/audit/records/search (never in the URL); \`subjectHash\` may be given here.`,
    querystring: { type: 'object', additionalProperties: false, properties: { ...filterProperties, ...includeOwnProperty, ...pageProperties, subject: refusedSubject } },
    response: { 200: searchResponse, ...ERRORS },
  }), async (request) => {
    const q = request.query as Record<string, any>
    refuseRawInQuery(q)
    if (q.subjectHash) request.audit.subject = q.subjectHash
    return withNames(app, await searchRecords(app.readDb, resolve, searchFiltersOf(q, request.principal!.system), { limit: q.limit, cursor: q.cursor, order: q.order }))
  })

  app.post('/v1/audit/records/search', auditorRoute(app, 'audit.search', {
    summary: 'Search the audit log, also by a raw subject id (auditor)',
    description: 'As GET /v1/audit/records, with the filters in a JSON body. `subject` is a citizen id number (GB 11643) or a credit code (GB 32100); the gateway searches by its keyed hash and never stores or logs the raw value.',
    body: { type: 'object', additionalProperties: false, properties: { ...filterProperties, ...includeOwnProperty, ...pageProperties, subject: { type: 'string', minLength: 1, maxLength: 64 } } },
    response: { 200: searchResponse, ...ERRORS },
  }), async (request) => {
    const b = request.body as Record<string, any>
    const s = takeSubject(app, request, b)
    const f = searchFiltersOf(b, request.principal!.system)
    if (s) f.subjectHash = s.hash
    return withNames(app, await searchRecords(app.readDb, resolve, f, { limit: b.limit, cursor: b.cursor, order: b.order }))
  })

  app.get<{ Params: { id: string } }>('/v1/audit/records/:id', auditorRoute(app, 'audit.record', {
    summary: 'One audit record by request id, with its evidence (auditor)',
    description: 'The record exactly as hashed, where it is (chain, seq, idx), its Tongban-Evidence (the same object a consumer received: inclusion path and signed checkpoint), and whether it verifies now. A request id used more than once lists the other positions in `alsoAt`.',
    params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } },
    response: { 200: open, ...problemResponses(400, 401, 403, 404, 503) },
  }), async (request) => {
    const found = await recordWithEvidence(app.readDb, request.params.id)
    const [named] = (await withNames(app, { items: [found as any], nextCursor: null, limit: 1, order: 'desc' })).items
    return { ...found, consumer: named.consumer, provider: named.provider }
  })
}

/** The first record with this request id, its evidence rebuilt from its batch, and what verifies. */
async function recordWithEvidence(db: Db, requestId: string) {
  const { rows } = await db.query(
    'SELECT chain, seq, idx, leaf, record FROM audit_records WHERE request_id = $1 ORDER BY time, chain, seq, idx LIMIT 20',
    [requestId],
  )
  if (!rows[0]) throw new Problem(404, 'AUDIT_RECORD_NOT_FOUND', 'no audit record with this request id')
  const r = rows[0]
  const [{ rows: leaves }, { rows: cps }] = await Promise.all([
    db.query('SELECT idx, leaf FROM audit_records WHERE chain = $1 AND seq = $2 ORDER BY idx', [r.chain, r.seq]),
    db.query('SELECT checkpoint, sig, hash FROM audit_checkpoints WHERE chain = $1 AND seq = $2', [r.chain, r.seq]),
  ])
  const cp = cps[0]
  const version = cp ? versionOf(cp.checkpoint) : 1
  const alg = hashOfVersion(version)
  const leafOk = leafHash(jcs(r.record), alg).toString('hex') === r.leaf
  let evidence: Evidence | null = null
  let rootOk = false
  if (cp) {
    const { sig, ...checkpoint } = cp.checkpoint
    const tree = buildTree(leaves.map((l) => Buffer.from(l.leaf, 'hex')), alg)
    rootOk = tree.root.toString('hex') === checkpoint.root && leaves.length === checkpoint.size && leaves.every((l, i) => l.idx === i)
    if (r.idx < tree.size) {
      evidence = { v: version, record: r.record, index: r.idx, size: tree.size, path: tree.path(r.idx).map((h) => h.toString('hex')), checkpoint, sig: cp.sig ?? sig }
    }
  }
  return {
    record: r.record,
    chain: r.chain,
    seq: Number(r.seq),
    idx: r.idx,
    leaf: r.leaf,
    checkpointHash: cp?.hash ?? null,
    evidence,
    evidenceHeader: evidence ? encodeEvidence(evidence) : null,
    verified: { leaf: leafOk, root: rootOk, checkpoint: !!cp },
    ...(rows.length > 1 ? { alsoAt: rows.slice(1).map((x) => ({ chain: x.chain, seq: Number(x.seq), idx: x.idx })) } : {}),
  }
}
