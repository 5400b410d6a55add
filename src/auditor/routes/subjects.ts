// The subject access report: who accessed this person's or enterprise's data. The subject
// comes in the Tongban-Subject header or a JSON body (or as its keyed hash), never the URL.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Problem } from '../../problems/problem.js'
import { subjectReport } from '../subject-report.js'
import { auditorHeaders, auditorRoute, ERRORS, filterProperties, open, refusedSubject, requireOrderedRange } from './shared.js'
import { hashRaw, refuseRawInQuery, SUBJECT_HEADER, takeSubject, type Subject } from './subject-input.js'
import type { Names } from './names.js'
import { createSigner } from '../../pki/suites.js'
import { signStatement, statementHtml, STATEMENT_SIGNATURE_HEADER } from '../statement.js'

const reportQuery = {
  from: filterProperties.from,
  to: filterProperties.to,
  includeAuditorLookups: { type: 'boolean', default: false },
}
interface ReportQuery { from?: string; to?: string; includeAuditorLookups?: boolean }

export default async function subjects(app: FastifyInstance, opts: { names: Names }) {
  const { config } = app
  const report = async (request: FastifyRequest, s: Subject, q: ReportQuery) => {
    requireOrderedRange(q.from, q.to)
    request.audit.subject = s.hash
    return subjectReport(app.readDb, { hash: s.hash, masked: s.masked, from: q.from, to: q.to, includeAuditorLookups: q.includeAuditorLookups, node: { id: config.node.id, name: config.node.name }, names: await opts.names() })
  }

  app.get('/v1/audit/subjects/report', auditorRoute(app, 'audit.subject-report', {
    summary: 'Who accessed this person\'s or enterprise\'s data? (auditor)',
    description: 'The subject is given in the `Tongban-Subject` header (a citizen id number or a credit code; never in the URL) or as `subjectHash`. The answer is signed like every audited response (Tongban-Evidence), so it can be handed to the citizen or enterprise as it is.',
    headers: { type: 'object', properties: { ...auditorHeaders.properties, [SUBJECT_HEADER]: { type: 'string', minLength: 1, maxLength: 64 } } },
    querystring: { type: 'object', additionalProperties: false, properties: { ...reportQuery, subjectHash: filterProperties.subjectHash, subject: refusedSubject } },
    response: { 200: open, ...ERRORS },
  }), async (request) => {
    const q = request.query as ReportQuery & { subject?: string; subjectHash?: string }
    refuseRawInQuery(q)
    const raw = request.headers[SUBJECT_HEADER]
    if (typeof raw === 'string' && q.subjectHash) throw new Problem(400, 'INPUT_INVALID', 'give Tongban-Subject or subjectHash, not both')
    const s = typeof raw === 'string' ? hashRaw(app, raw) : q.subjectHash ? { hash: q.subjectHash } : null
    if (!s) throw new Problem(400, 'AUDIT_SUBJECT_MISSING', 'give the subject in the Tongban-Subject header (or subjectHash)')
    return report(request, s, q)
  })

  const signer = createSigner(config.audit.alg, app.identity.signing.keyPem)
  app.get('/v1/audit/subjects/statement', auditorRoute(app, 'audit.subject-statement', {
    summary: 'The subject report as a signed statement to hand over (auditor; HTML in Chinese)',
    description: 'The report of GET /v1/audit/subjects/report as an HTML document in Chinese, with a detached signature by the node\'s key over its exact bytes in the `Tongban-Statement-Signature` header (`alg=…; kid=…; sha256=…; sig=…`, base64url). How to verify it: docs/audit.md, "Signed statements". The subject as for the report (header `Tongban-Subject` or `subjectHash`).',
    headers: { type: 'object', properties: { ...auditorHeaders.properties, [SUBJECT_HEADER]: { type: 'string', minLength: 1, maxLength: 64 } } },
    querystring: { type: 'object', additionalProperties: false, properties: { ...reportQuery, format: { type: 'string', enum: ['html'], default: 'html' }, subjectHash: filterProperties.subjectHash, subject: refusedSubject } },
    response: { 200: { type: 'string', description: 'text/html; charset=utf-8' }, ...ERRORS },
  }), async (request, reply) => {
    const q = request.query as ReportQuery & { subject?: string; subjectHash?: string }
    refuseRawInQuery(q)
    const raw = request.headers[SUBJECT_HEADER]
    if (typeof raw === 'string' && q.subjectHash) throw new Problem(400, 'INPUT_INVALID', 'give Tongban-Subject or subjectHash, not both')
    const s = typeof raw === 'string' ? hashRaw(app, raw) : q.subjectHash ? { hash: q.subjectHash } : null
    if (!s) throw new Problem(400, 'AUDIT_SUBJECT_MISSING', 'give the subject in the Tongban-Subject header (or subjectHash)')
    const bytes = Buffer.from(statementHtml(await report(request, s, q)), 'utf8')
    reply.type('text/html; charset=utf-8').header(STATEMENT_SIGNATURE_HEADER, signStatement(bytes, signer, app.identity.signing.kid))
    return bytes
  })

  app.post('/v1/audit/subjects/report', auditorRoute(app, 'audit.subject-report', {
    summary: 'Who accessed this person\'s or enterprise\'s data? (auditor; subject in the body)',
    body: { type: 'object', additionalProperties: false, properties: { ...reportQuery, subject: { type: 'string', minLength: 1, maxLength: 64 }, subjectHash: filterProperties.subjectHash } },
    response: { 200: open, ...ERRORS },
  }), async (request) => {
    const b = request.body as ReportQuery & { subject?: string; subjectHash?: string }
    const s = takeSubject(app, request, b) ?? (b.subjectHash ? { hash: b.subjectHash } : null)
    if (!s) throw new Problem(400, 'AUDIT_SUBJECT_MISSING', 'give subject (or subjectHash)')
    return report(request, s, b)
  })
}
