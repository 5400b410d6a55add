// The auditor's side (issue 5; DESIGN.md §1, §4, §8): search, record + evidence, integrity,
// checkpoints and heads, anchors, subject access report, stats, export, and the console at
// /console/audit. Every route needs the auditor role, and every call is itself sealed in
// the audit log (config.audit) — without the raw subject: a raw identifier is only ever
// taken from a JSON body or the Tongban-Subject header (never the URL, which lands in
// access logs), hashed at once, and replaced by its keyed hash before the request digest
// is taken.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { PassThrough } from 'node:stream'
import { Ajv } from 'ajv'
import addFormats from 'ajv-formats'
import { Problem } from '../problems/problem.js'
import { problemResponses } from '../problems/schema.js'
import { checkIdNumber } from '../gb/id-number.js'
import { checkCreditCode } from '../gb/credit-code.js'
import { buildAuditRecord } from '../audit/plugin.js'
import { encodeEvidence, type Evidence } from '../evidence/evidence.js'
import { buildTree, leafHash } from '../evidence/merkle.js'
import { jcs } from '../evidence/jcs.js'
import { certThumbprint } from '../pki/thumbprint.js'
import { DEFAULT_PAGE, KINDS, MAX_PAGE, searchRecords, type ResourceResolver, type SearchFilters } from './search.js'
import { chainHeads, verifyDatabase } from './integrity.js'
import { computeStats, defaultFrom, StatsCache } from './stats.js'
import { RollupRunner } from './rollup.js'
import { maskSubject, subjectReport, type ReportNames } from './subject-report.js'
import { exportBundle, ExportTooLargeError } from './bundle.js'
import { registerConsole } from '../console/plugin.js'
import { refusePersonalData } from '../exchange/context.js'

export const SUBJECT_HEADER = 'tongban-subject'
export const HTTP_EXPORT_MAX_RECORDS = 100_000

const CASE_ID = '^[A-Za-z0-9_.:/-]{1,64}$'
const HASH = '^[0-9a-f]{64}$'
const SUBJECT_HASH = '^hmac-sha256:[0-9a-f]{64}$'
const text = (max = 128) => ({ type: 'string', minLength: 1, maxLength: max })

const filterProperties = {
  from: { type: 'string', format: 'date-time', description: 'records at or after (RFC 3339)' },
  to: { type: 'string', format: 'date-time', description: 'records before (RFC 3339)' },
  department: { ...text(32), description: 'consumer department (统一社会信用代码)' },
  system: { ...text(64), description: 'consumer system (client id)' },
  region: { ...text(6), description: 'consumer region (GB/T 2260)' },
  provider: { ...text(32), description: 'provider department code: the resources it owns' },
  resource: { ...text(32), description: 'resource code, e.g. 101001/00001' },
  service: { ...text(32), description: 'verification service, e.g. identity' },
  operation: { ...text(64), description: 'operation, e.g. verify, catalog.update, grant.revoke' },
  kind: { type: 'string', enum: [...KINDS], description: 'query (data queries), admin (catalogue, applications, grants, keys), login (token endpoint), audit (auditors\' own calls)' },
  decision: { type: 'string', enum: ['allowed', 'denied', 'failed'] },
  reason: { ...text(64), description: 'reason code, e.g. POLICY_NO_GRANT' },
  purpose: { ...text(32), description: 'purpose code' },
  caseId: { ...text(64), description: 'case (办件) number' },
  operator: { ...text(64), description: 'the civil servant (Tongban-Operator)' },
  node: text(16),
  requestId: text(64),
  clientRequestId: { ...text(64), description: 'the caller\'s own Tongban-Request-Id (its retries share it)' },
  chain: { ...text(128), description: 'replica chain' },
  grant: text(64),
  subjectHash: { type: 'string', pattern: SUBJECT_HASH, description: 'the keyed subject hash, as found in a record' },
} as const

const pageProperties = {
  limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: DEFAULT_PAGE, description: `page size (hard cap ${MAX_PAGE})` },
  cursor: { type: 'string', maxLength: 512, description: 'nextCursor of the previous page' },
  order: { type: 'string', enum: ['desc', 'asc'], default: 'desc' },
} as const

const recordSchema = { type: 'object', additionalProperties: true, description: 'the audit record exactly as hashed into its leaf' }
const hitSchema = {
  type: 'object',
  properties: { chain: { type: 'string' }, seq: { type: 'integer' }, idx: { type: 'integer' }, leaf: { type: 'string' }, record: recordSchema },
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
const open = { type: 'object', additionalProperties: true }
const auditorHeaders = {
  type: 'object',
  properties: {
    'tongban-case-id': { type: 'string', pattern: CASE_ID, description: 'optional: the auditor\'s own case (e.g. an inspection file number), recorded with the call' },
  },
}
const ERRORS = problemResponses(400, 401, 403, 503)

const SUBJECT_IN_URL = 'a raw subject identifier must not be sent in the URL (it would land in access logs): use POST with a JSON body or the Tongban-Subject header'

export function resolver(app: FastifyInstance): ResourceResolver {
  return {
    byProvider: (dept) => app.catalog.list().filter((r) => r.provider.code === dept).map((r) => r.code),
    byService: (service) => app.catalog.list().filter((r) => r.service?.verifyService === service).map((r) => r.code),
  }
}

// Query strings are text: their integers and booleans are coerced (and a single `head`
// becomes a list); bodies and headers are validated as they are, as everywhere else.
const coercing = new Ajv({ coerceTypes: 'array', useDefaults: true, allErrors: false, strict: false })
const exact = new Ajv({ coerceTypes: false, useDefaults: true, allErrors: false, strict: false })
addFormats.default(coercing)
addFormats.default(exact)
const validatorCompiler = ({ schema, httpPart }: { schema: object; httpPart?: string }) =>
  (httpPart === 'querystring' ? coercing : exact).compile(schema)

export default fp(
  async function auditor(root: FastifyInstance) {
    // The stats rollup (rollup.ts): a timer on every replica, one at a time working
    // (advisory lock). Stats stay exact whether it is current or not.
    const rollup = new RollupRunner(root.db, root.log)
    root.decorate('auditRollup', rollup)
    root.addHook('onReady', async () => rollup.start())
    root.addHook('onClose', async () => rollup.stop())
    await root.register(auditorRoutes)
  },
  { name: 'auditor', dependencies: ['audit', 'auth', 'catalog', 'policy', 'node-identity'] },
)

async function auditorRoutes(app: FastifyInstance) {
    app.setValidatorCompiler(validatorCompiler)
    const { config, identity } = app
    const auditorOnly = [app.authenticate, app.requireRole('auditor')]
    const resolve = resolver(app)
    const statsCache = new StatsCache()

    // Names for reports: departments and systems from the registry, resources, purposes.
    let directory: { at: number; departments: Map<string, string>; systems: Map<string, string> } | null = null
    const names = async (): Promise<ReportNames> => {
      if (!directory || Date.now() - directory.at > 60_000) {
        const { rows } = await app.db.query('SELECT client_id, name, department_code, department_name FROM systems')
        directory = {
          at: Date.now(),
          departments: new Map(rows.map((r) => [r.department_code, r.department_name])),
          systems: new Map(rows.map((r) => [r.client_id, r.name])),
        }
      }
      const d = directory
      return {
        resource: (code) => app.catalog.get(code)?.name,
        department: (code) => d.departments.get(code),
        system: (id) => d.systems.get(id),
        purpose: (code) => app.purposes.get(code)?.name,
      }
    }

    /** Raw identifier → keyed hash; a typo must not read as "nobody looked this person up". */
    const hashRaw = (raw: string) => {
      const v = raw.trim().toUpperCase()
      if (!checkIdNumber(v).ok && !checkCreditCode(v).ok) {
        throw new Problem(400, 'AUDIT_SUBJECT_INVALID', 'the subject is neither a valid GB 11643 citizen id number nor a valid GB 32100 credit code')
      }
      return { hash: app.hashSubject(v), masked: maskSubject(v) }
    }

    // The auditor's own case id, if given, goes into the record of the call.
    const context = async (request: FastifyRequest) => {
      const caseId = request.headers['tongban-case-id']
      if (typeof caseId !== 'string') return
      refusePersonalData(caseId, 'INPUT_CASE_ID_PERSONAL_DATA', 'Tongban-Case-Id')
      request.audit.caseId = caseId
    }

    // A body with a raw subject: the request digest is taken over the body with the
    // subject replaced by its keyed hash (an unkeyed digest of an id number is reversible).
    const takeSubject = (request: FastifyRequest, body: { subject?: string; subjectHash?: string }) => {
      if (body.subject === undefined) {
        if (body.subjectHash) request.audit.subject = body.subjectHash
        return null
      }
      if (body.subjectHash) throw new Problem(400, 'INPUT_INVALID', 'give subject or subjectHash, not both')
      const s = hashRaw(body.subject)
      request.audit.subject = s.hash
      const { subject: _raw, ...rest } = body
      request.rawBody = Buffer.from(JSON.stringify({ ...rest, subjectHash: s.hash }))
      return s
    }

    const refuseRawInQuery = (q: Record<string, unknown>) => {
      if (q.subject !== undefined) throw new Problem(400, 'AUDIT_SUBJECT_IN_URL', SUBJECT_IN_URL)
    }

    const filtersOf = (q: Record<string, any>): SearchFilters => {
      const f: SearchFilters = {}
      for (const k of Object.keys(filterProperties) as (keyof SearchFilters)[]) if (q[k] !== undefined) (f as any)[k] = q[k]
      return f
    }

    // What every auditor route shares: the role, the auditor's own case id into the record,
    // and the OpenAPI tag, security and context headers (a route may override the headers).
    const AUDITOR_SCHEMA = { tags: ['audit'], security: [{ bearer: [] }], headers: auditorHeaders }
    const auditorRoute = (operation: string) => ({
      onRequest: auditorOnly,
      preHandler: context,
      config: { audit: { resource: 'audit', operation } },
    })

    // ---- search --------------------------------------------------------------------
    app.get('/v1/audit/records', {
      ...auditorRoute('audit.search'),
      schema: {
        ...AUDITOR_SCHEMA,
        summary: 'Search the audit log (auditor)',
        description: `Filters combine with AND. Newest first by default; stable order (time, chain, seq, idx); pass \`nextCursor\` back as \`cursor\`. Searching by a raw subject id is POST /v1/audit/records/search (never in the URL); \`subjectHash\` may be given here.`,
        querystring: { type: 'object', additionalProperties: false, properties: { ...filterProperties, ...pageProperties, subject: { type: 'string', description: 'refused: AUDIT_SUBJECT_IN_URL' } } },
        response: { 200: searchResponse, ...ERRORS },
      },
    }, async (request) => {
      const q = request.query as Record<string, any>
      refuseRawInQuery(q)
      if (q.subjectHash) request.audit.subject = q.subjectHash
      return searchRecords(app.db, resolve, filtersOf(q), { limit: q.limit, cursor: q.cursor, order: q.order })
    })

    app.post('/v1/audit/records/search', {
      ...auditorRoute('audit.search'),
      schema: {
        ...AUDITOR_SCHEMA,
        summary: 'Search the audit log, also by a raw subject id (auditor)',
        description: 'As GET /v1/audit/records, with the filters in a JSON body. `subject` is a citizen id number (GB 11643) or a credit code (GB 32100); the gateway searches by its keyed hash and never stores or logs the raw value.',
        body: { type: 'object', additionalProperties: false, properties: { ...filterProperties, ...pageProperties, subject: { type: 'string', minLength: 1, maxLength: 64 } } },
        response: { 200: searchResponse, ...ERRORS },
      },
    }, async (request) => {
      const b = request.body as Record<string, any>
      const s = takeSubject(request, b)
      const f = filtersOf(b)
      if (s) f.subjectHash = s.hash
      return searchRecords(app.db, resolve, f, { limit: b.limit, cursor: b.cursor, order: b.order })
    })

    // ---- one record with its evidence ----------------------------------------------
    app.get<{ Params: { id: string } }>('/v1/audit/records/:id', {
      ...auditorRoute('audit.record'),
      schema: {
        ...AUDITOR_SCHEMA,
        summary: 'One audit record by request id, with its evidence (auditor)',
        description: 'The record exactly as hashed, where it is (chain, seq, idx), its Tongban-Evidence (the same object a consumer received: inclusion path and signed checkpoint), and whether it verifies now. A request id used more than once lists the other positions in `alsoAt`.',
        params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } },
        response: { 200: open, ...problemResponses(400, 401, 403, 404, 503) },
      },
    }, async (request) => {
      const { rows } = await app.db.query(
        'SELECT chain, seq, idx, leaf, record FROM audit_records WHERE request_id = $1 ORDER BY time, chain, seq, idx LIMIT 20',
        [request.params.id],
      )
      if (!rows[0]) throw new Problem(404, 'AUDIT_RECORD_NOT_FOUND', 'no audit record with this request id')
      const r = rows[0]
      const [{ rows: leaves }, { rows: cps }] = await Promise.all([
        app.db.query('SELECT idx, leaf FROM audit_records WHERE chain = $1 AND seq = $2 ORDER BY idx', [r.chain, r.seq]),
        app.db.query('SELECT checkpoint, sig, hash FROM audit_checkpoints WHERE chain = $1 AND seq = $2', [r.chain, r.seq]),
      ])
      const cp = cps[0]
      const leafOk = leafHash(jcs(r.record)).toString('hex') === r.leaf
      let evidence: Evidence | null = null
      let rootOk = false
      if (cp) {
        const { sig, ...checkpoint } = cp.checkpoint
        const tree = buildTree(leaves.map((l) => Buffer.from(l.leaf, 'hex')))
        rootOk = tree.root.toString('hex') === checkpoint.root && leaves.length === checkpoint.size && leaves.every((l, i) => l.idx === i)
        if (r.idx < tree.size) {
          evidence = { v: 1, record: r.record, index: r.idx, size: tree.size, path: tree.path(r.idx).map((h) => h.toString('hex')), checkpoint, sig: cp.sig ?? sig }
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
    })

    // ---- integrity -----------------------------------------------------------------
    app.get('/v1/audit/integrity', {
      ...auditorRoute('audit.integrity'),
      schema: {
        ...AUDITOR_SCHEMA,
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
      },
    }, async (request) => {
      const q = request.query as { from?: string; to?: string; all?: boolean; chain?: string; head?: string | string[] }
      const to = q.to ? new Date(q.to) : q.all ? undefined : new Date()
      const from = q.from ? new Date(q.from) : q.all ? undefined : new Date(Date.now() - 86400_000)
      if (from && to && from >= to) throw new Problem(400, 'AUDIT_RANGE_INVALID', '`from` must be before `to`')
      // A node with a parent compares its chains with the heads the parent holds for it
      // (tiers checkpoint push): a tail cut here is visible there. Unreachable: a warning.
      let parentHeads: Awaited<ReturnType<FastifyInstance['tiers']['parentHeads']>> = null
      let parentProblem: string | null = null
      if (app.hasDecorator('tiers')) {
        parentHeads = await app.tiers.parentHeads().catch((e: Error) => {
          parentProblem = e.message
          return null
        })
      }
      const report = await verifyDatabase(app.db, {
        from, to, chain: q.chain,
        heads: q.head === undefined ? [] : Array.isArray(q.head) ? q.head : [q.head],
        parentHeads: parentHeads ?? undefined,
        caPem: identity.caPem,
        certificates: [identity.certPem],
      })
      if (parentProblem) report.warnings.push(`the heads held by the parent node could not be read (${parentProblem}): a cut tail is only visible against anchors`)
      if (!report.ok) request.audit.reason = `AUDIT_INTEGRITY_${report.firstFailure!.kind.toUpperCase().replaceAll('-', '_')}`
      return {
        from: from?.toISOString() ?? null, to: to?.toISOString() ?? null, ...report,
        parentHeads: parentHeads ? { node: parentHeads.parent, heads: parentHeads.heads.length } : null,
      }
    })

    // ---- checkpoints, heads, anchors ----------------------------------------------
    app.get('/v1/audit/checkpoints', {
      ...auditorRoute('audit.checkpoints'),
      schema: {
        ...AUDITOR_SCHEMA,
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
      },
    }, async (request) => {
      const q = request.query as { chain?: string; from?: string; to?: string; afterSeq?: number; limit: number }
      const cond: string[] = []
      const params: unknown[] = []
      if (q.chain) cond.push(`chain = $${params.push(q.chain)}`)
      if (q.from) cond.push(`time >= $${params.push(q.from)}`)
      if (q.to) cond.push(`time < $${params.push(q.to)}`)
      if (q.afterSeq !== undefined) cond.push(`seq > $${params.push(q.afterSeq)}`)
      const { rows } = await app.db.query(
        `SELECT checkpoint, sig, hash FROM audit_checkpoints ${cond.length ? `WHERE ${cond.join(' AND ')}` : ''}
         ORDER BY chain, seq LIMIT ${q.limit + 1}`,
        params,
      )
      const items = rows.slice(0, q.limit).map((r) => {
        const { sig: _s, ...checkpoint } = r.checkpoint
        return { checkpoint, sig: r.sig, hash: r.hash }
      })
      return { items, more: rows.length > q.limit }
    })

    app.get('/v1/audit/heads', {
      ...auditorRoute('audit.heads'),
      schema: {
        ...AUDITOR_SCHEMA,
        summary: 'The newest signed checkpoint of every chain (auditor)',
        description: 'Keep these hashes outside the gateway (or record them with POST /v1/audit/anchors): a later integrity check given them as `head` detects a cut tail.',
        response: { 200: open, ...ERRORS },
      },
    }, async () => ({ node: config.node.id, heads: await chainHeads(app.db) }))

    const anchorsRoute = {
      onRequest: auditorOnly,
      preHandler: context,
      schema: { ...AUDITOR_SCHEMA, response: { 200: open, 201: open, ...ERRORS } },
    }
    app.post('/v1/audit/anchors', {
      ...anchorsRoute,
      config: { audit: { resource: 'audit', operation: 'audit.anchor' } },
      schema: { ...anchorsRoute.schema, summary: 'Anchor the current head of every chain (auditor)', description: 'Records the heads in audit_anchors and returns them; every later integrity check verifies that these checkpoints are still there. Keep the returned hashes outside the gateway too.' },
    }, async (request, reply) => {
      const heads = await chainHeads(app.db)
      const by = request.principal!.system
      for (const h of heads) {
        await app.db.query('INSERT INTO audit_anchors (chain, seq, hash, anchored_by) VALUES ($1, $2, $3, $4)', [h.chain, h.seq, h.hash, by])
      }
      reply.code(201)
      return { node: config.node.id, anchoredAt: new Date().toISOString(), anchors: heads.map((h) => ({ chain: h.chain, seq: h.seq, hash: h.hash, time: h.time })) }
    })
    app.get('/v1/audit/anchors', {
      ...anchorsRoute,
      config: { audit: { resource: 'audit', operation: 'audit.anchors' } },
      schema: { ...anchorsRoute.schema, summary: 'Anchors recorded so far (auditor)' },
    }, async () => {
      const { rows } = await app.db.query('SELECT chain, seq, hash, anchored_at, anchored_by FROM audit_anchors ORDER BY id DESC LIMIT 500')
      return { anchors: rows.map((r) => ({ chain: r.chain, seq: Number(r.seq), hash: r.hash, anchoredAt: (r.anchored_at as Date).toISOString(), anchoredBy: r.anchored_by })) }
    })

    // ---- subject access report -----------------------------------------------------
    const reportQuery = {
      from: filterProperties.from,
      to: filterProperties.to,
      includeAuditorLookups: { type: 'boolean', default: false },
    }
    const report = async (request: FastifyRequest, s: { hash: string; masked?: string }, q: { from?: string; to?: string; includeAuditorLookups?: boolean }) => {
      if (q.from && q.to && Date.parse(q.from) >= Date.parse(q.to)) throw new Problem(400, 'AUDIT_RANGE_INVALID', '`from` must be before `to`')
      request.audit.subject = s.hash
      return subjectReport(app.db, { hash: s.hash, masked: s.masked, from: q.from, to: q.to, includeAuditorLookups: q.includeAuditorLookups, node: { id: config.node.id, name: config.node.name }, names: await names() })
    }
    app.get('/v1/audit/subjects/report', {
      ...auditorRoute('audit.subject-report'),
      schema: {
        ...AUDITOR_SCHEMA,
        summary: 'Who accessed this person\'s or enterprise\'s data? (auditor)',
        description: 'The subject is given in the `Tongban-Subject` header (a citizen id number or a credit code; never in the URL) or as `subjectHash`. The answer is signed like every audited response (Tongban-Evidence), so it can be handed to the citizen or enterprise as it is.',
        headers: { type: 'object', properties: { ...auditorHeaders.properties, [SUBJECT_HEADER]: { type: 'string', minLength: 1, maxLength: 64 } } },
        querystring: { type: 'object', additionalProperties: false, properties: { ...reportQuery, subjectHash: filterProperties.subjectHash, subject: { type: 'string', description: 'refused: AUDIT_SUBJECT_IN_URL' } } },
        response: { 200: open, ...ERRORS },
      },
    }, async (request) => {
      const q = request.query as Record<string, any>
      refuseRawInQuery(q)
      const raw = request.headers[SUBJECT_HEADER]
      if (typeof raw === 'string' && q.subjectHash) throw new Problem(400, 'INPUT_INVALID', 'give Tongban-Subject or subjectHash, not both')
      const s = typeof raw === 'string' ? hashRaw(raw) : q.subjectHash ? { hash: q.subjectHash as string } : null
      if (!s) throw new Problem(400, 'AUDIT_SUBJECT_MISSING', 'give the subject in the Tongban-Subject header (or subjectHash)')
      return report(request, s, q)
    })
    app.post('/v1/audit/subjects/report', {
      ...auditorRoute('audit.subject-report'),
      schema: {
        ...AUDITOR_SCHEMA,
        summary: 'Who accessed this person\'s or enterprise\'s data? (auditor; subject in the body)',
        body: { type: 'object', additionalProperties: false, properties: { ...reportQuery, subject: { type: 'string', minLength: 1, maxLength: 64 }, subjectHash: filterProperties.subjectHash } },
        response: { 200: open, ...ERRORS },
      },
    }, async (request) => {
      const b = request.body as Record<string, any>
      const s = takeSubject(request, b) ?? (b.subjectHash ? { hash: b.subjectHash as string } : null)
      if (!s) throw new Problem(400, 'AUDIT_SUBJECT_MISSING', 'give subject (or subjectHash)')
      return report(request, s, b)
    })

    // ---- stats ---------------------------------------------------------------------
    app.get('/v1/audit/stats', {
      ...auditorRoute('audit.stats'),
      schema: {
        ...AUDITOR_SCHEMA,
        summary: 'Volumes, denial rates by reason, latency percentiles; by day, resource, department, region and tier (auditor)',
        description: `Days are in ${'Asia/Shanghai'}; the default range is the 7 calendar days up to \`to\` (default: now), its day included. \`kind\` defaults to query (data queries). Latency is the time from a request's arrival (its ULID request id) to its answer; caller-chosen request ids give none. Whole days come from the daily rollup (audit_daily) plus what was sealed since its last pass; \`plan\` in the answer says how it was computed. Results are cached for 15 s (10 min for ranges that ended).`,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...filterProperties,
            kind: { ...filterProperties.kind, default: 'query' },
            subject: { type: 'string', description: 'refused: AUDIT_SUBJECT_IN_URL' },
          },
        },
        response: { 200: open, ...ERRORS },
      },
    }, async (request) => {
      const q = request.query as Record<string, any>
      refuseRawInQuery(q)
      const to = q.to ?? new Date().toISOString()
      const from = q.from ?? defaultFrom(to)
      if (Date.parse(from) >= Date.parse(to)) throw new Problem(400, 'AUDIT_RANGE_INVALID', '`from` must be before `to`')
      if (Date.parse(to) - Date.parse(from) > 400 * 86400_000) throw new Problem(400, 'AUDIT_RANGE_TOO_LARGE', 'at most 400 days per call')
      const filters = { ...filtersOf(q), from, to }
      const key = JSON.stringify(filters)
      const hit = statsCache.get(key)
      if (hit) return hit
      const n = await names()
      const value = await computeStats(app.db, { filters, resolver: resolve, names: { resource: n.resource, department: n.department } })
      statsCache.set(key, value)
      return value
    })

    // ---- export --------------------------------------------------------------------
    app.get('/v1/audit/export', {
      ...auditorRoute('audit.export'),
      schema: {
        ...AUDITOR_SCHEMA,
        summary: 'Export an offline-verifiable bundle (auditor)',
        description: `The batches whose checkpoint time is in [from, to), whole, with their checkpoints, the node certificates and the CA chain, as NDJSON (see docs/audit.md). Verify with \`tongban audit verify <file> --ca ca.crt.pem\`. Up to ${HTTP_EXPORT_MAX_RECORDS} records here (the audit record of this call then binds the exact bytes); larger ranges with \`tongban audit export\`.`,
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['from', 'to'],
          properties: { from: filterProperties.from, to: filterProperties.to, chain: filterProperties.chain },
        },
        response: { ...problemResponses(400, 401, 403, 413, 503) },
      },
    }, async (request, reply: FastifyReply) => {
      const q = request.query as { from: string; to: string; chain?: string }
      if (Date.parse(q.from) >= Date.parse(q.to)) throw new Problem(400, 'AUDIT_RANGE_INVALID', '`from` must be before `to`')
      const sink = new PassThrough()
      const chunks: Buffer[] = []
      sink.on('data', (d: Buffer) => chunks.push(d))
      try {
        await exportBundle(app.db, sink, {
          node: config.node.id, from: new Date(q.from), to: new Date(q.to), chain: q.chain,
          certificates: [identity.certPem], caChain: [identity.caPem], maxRecords: HTTP_EXPORT_MAX_RECORDS, compress: false,
        })
      } catch (e) {
        if (e instanceof ExportTooLargeError) throw new Problem(413, 'AUDIT_EXPORT_TOO_LARGE', `${e.message}; use tongban audit export`)
        throw e
      }
      const name = `audit-${config.node.id}-${q.from.slice(0, 10)}-${q.to.slice(0, 10)}.tongban-audit.jsonl`
      reply.type('application/x-ndjson; charset=utf-8').header('content-disposition', `attachment; filename="${name}"`)
      return Buffer.concat(chunks).toString('utf8')
    })

    // ---- key and certificate events ------------------------------------------------
    // The certificate that signs this node's checkpoints is kept (by kid) so that old
    // checkpoints stay verifiable after a rotation; the first time a certificate signs
    // here is a sealed admin event (node.certificate).
    app.addHook('onReady', async () => {
      try {
        const kid = certThumbprint(identity.certPem)
        const { rows } = await app.db.query(
          'INSERT INTO audit_certificates (kid, cert_pem) VALUES ($1, $2) ON CONFLICT (kid) DO NOTHING RETURNING kid',
          [kid, identity.certPem],
        )
        if (rows.length) {
          const record = buildAuditRecord({
            node: config.node.id,
            requestId: `node-certificate-${kid.slice(0, 16)}-${Date.now()}`,
            principal: null,
            audit: { resource: `certificate:${kid}`, consumer: { department: config.node.id, system: config.replicaId, region: config.node.region } },
            status: 200,
            requestBytes: identity.certPem,
            responseBody: JSON.stringify({ kid, subject: identity.cert.subject, validFrom: identity.cert.validFrom, validTo: identity.cert.validTo }),
            defaults: { operation: 'node.certificate' },
          })
          app.sealer.seal(record).catch((err) => app.log.error({ err }, 'certificate event not sealed'))
        }
      } catch (err) {
        app.log.warn({ err }, 'node certificate not recorded in audit_certificates (the database may be away); retried at the next start')
      }
    })

    await registerConsole(app)
}

