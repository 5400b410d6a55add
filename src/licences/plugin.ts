// Electronic licences (电子证照, docs/licences.md): POST /v1/licences/verify and
// POST /v1/licences/lookup. Both run the query engine (src/exchange/query.ts) on the licence
// library's catalogue resources, so context, resolve, subject, validate, authorize, call,
// filter and seal are the same steps as for every query:
// - verify asks the status resource (unconditional) about the licence number, then checks
//   the seal, its certificate and the library's answer (verifier.ts) and seals the verdict
//   (not the library's answer) as the answer;
// - lookup is the list resource (conditional: a grant is needed), answered as the engine
//   answers it.
import { readFileSync } from 'node:fs'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Problem } from '../problems/problem.js'
import { problemResponses } from '../problems/schema.js'
import { problemBody } from '../problems/plugin.js'
import { checkIdNumber } from '../gb/id-number.js'
import { checkCreditCode } from '../gb/credit-code.js'
import { loadSchemaFile } from '../catalog/files.js'
import { contextHeadersSchema } from '../exchange/context.js'
import { queryOf, sendSealed } from '../exchange/plugin.js'
import { stripId, type Answer, type Query, type SealedAnswer } from '../exchange/query.js'
import { derToPem, type LicenceDocument } from './document.js'
import { parseSm2Certificate } from '../pki/sm2-x509.js'
import { parseTrustAnchors, todayInChina, verifyLicence, type LibraryStatus, type SealTrustAnchor } from './verifier.js'
import { verdictSchema, verifyBodySchema } from './schemas.js'

const ERRORS = problemResponses(400, 401, 403, 404, 413, 415, 429, 502, 503, 504)
const LIST_REQUEST = 'licences/list.request.schema.json'

interface VerifyBody {
  licence?: LicenceDocument
  licenceNumber?: string
  holderId: string
  holderName?: string
}

/** A holder id must be a valid GB 11643 id number or GB 32100 credit code; else the problem to refuse with. */
function holderIdProblem(id: unknown): Problem | null {
  if (typeof id !== 'string') return null // the schema check reports it
  const person = checkIdNumber(id)
  if (person.ok) return null
  const org = checkCreditCode(id)
  if (org.ok) return null
  const p = /^[0-9]{17}[0-9X]$/.test(id) ? person : org
  return new Problem(400, p.code, `holderId: ${p.reason}`)
}

function readAnchors(file: string, log: FastifyInstance['log']): SealTrustAnchor[] {
  try {
    return parseTrustAnchors(readFileSync(file, 'utf8'))
  } catch (e) {
    // Fail closed: without trust anchors every seal is untrusted, and the node says why.
    log.warn({ err: e, file }, 'no seal trust anchors: every licence seal is LICENCE_SEAL_UNTRUSTED')
    return []
  }
}

const serialOf = (doc: LicenceDocument | undefined): string | undefined => {
  try {
    return doc ? parseSm2Certificate(derToPem(Buffer.from(doc.seal.certificate, 'base64'))).serialHex : undefined
  } catch {
    return undefined
  }
}

export default fp(
  async function licences(app: FastifyInstance) {
    const { config } = app
    const engine = app.exchange
    const anchors = readAnchors(config.licences.sealCaFile, app.log)
    const consumerOnly = [app.authenticate, app.requireRole('consumer')]
    const verifyBody = verifyBodySchema(config.files.schemasDir)

    const run = async (request: FastifyRequest, reply: FastifyReply, steps: (q: Query) => Promise<SealedAnswer>) => {
      request.sealedByEngine = true
      let sealed: SealedAnswer
      try {
        sealed = await steps(queryOf(request, { kind: 'resources', code: '', operation: '' }))
      } catch (e) {
        return app.withholdAnswer(request, reply, e)
      }
      return sendSealed(reply, sealed, app.answerNotes)
    }

    app.post('/v1/licences/verify', {
      onRequest: consumerOnly,
      attachValidation: true,
      config: { audit: { operation: 'verify' } },
      schema: {
        tags: ['licences'],
        summary: 'Verify an electronic licence (电子证照核验): seal, seal certificate, status at the library, holder',
        description: 'A verification that ran answers 200 with every check and an overall `valid`; `code` names the first failed check (docs/licences.md). A licence number the library does not hold answers 404 LICENCE_NOT_FOUND.',
        security: [{ bearer: [] }],
        headers: contextHeadersSchema,
        body: verifyBody,
        response: { 200: verdictSchema, ...ERRORS },
      },
    }, (request, reply) => run(request, reply, async (q) => {
      const body = request.body as VerifyBody
      const doc = body?.licence
      const licenceNumber = doc?.number ?? body?.licenceNumber
      q.target = { kind: 'resources', code: config.licences.statusResource, operation: 'status' }
      q.state.operation = 'verify'
      // The library is asked about the number, for this holder, and about the seal
      // certificate the document carries: the engine validates, authorizes and calls.
      if (!q.routeValidation && typeof licenceNumber === 'string') {
        const serial = serialOf(doc)
        q.body = { licenceNumber, holderId: body.holderId, ...(serial ? { sealCertificateSerial: serial } : {}) }
        q.routeValidation = holderIdProblem(body.holderId)
      }
      const asked = await engine.answer(q)
      if (asked.status !== 200) return engine.seal(q, asked)
      const library = JSON.parse(asked.body) as LibraryStatus
      let answer: Answer
      if (!doc && !library.found) {
        q.state.reason = 'LICENCE_NOT_FOUND'
        const p = new Problem(404, 'LICENCE_NOT_FOUND', 'the licence library holds no licence with this number')
        answer = { status: 404, contentType: 'application/problem+json', body: JSON.stringify(problemBody({ id: q.requestId }, p)), code: p.code, chain: [] }
      } else {
        const today = todayInChina()
        const verdict = verifyLicence({ document: doc, licenceNumber: licenceNumber!, holderId: body.holderId, holderName: body.holderName, library, anchors, today })
        answer = { status: 200, contentType: 'application/json; charset=utf-8', body: reply.code(200).serialize({ ...verdict, checkedOn: today }) as string, chain: [] }
      }
      return engine.seal(q, answer)
    }))

    app.post('/v1/licences/lookup', {
      onRequest: consumerOnly,
      attachValidation: true,
      config: { audit: { operation: 'list' } },
      schema: {
        tags: ['licences'],
        summary: "Fetch a holder's electronic licences (电子证照调取), under a grant of the library's list resource",
        description: 'Needs Tongban-Purpose and Tongban-Case-Id and an approved grant of the lookup resource (有条件共享): without one, 403 POLICY_NO_GRANT.',
        security: [{ bearer: [] }],
        headers: contextHeadersSchema,
        body: stripId(loadSchemaFile(config.files.schemasDir, LIST_REQUEST)),
        response: { 200: stripId(loadSchemaFile(config.files.schemasDir, 'licences/list.response.schema.json')), ...ERRORS },
      },
    }, (request, reply) => run(request, reply, async (q) => {
      q.target = { kind: 'resources', code: config.licences.lookupResource, operation: 'list' }
      q.routeBodySchema = LIST_REQUEST
      q.serialize = (a) => reply.code(200).serialize(a) as string
      if (!q.routeValidation) q.routeValidation = holderIdProblem((request.body as { holderId?: unknown })?.holderId)
      return engine.seal(q, await engine.answer(q))
    }))
  },
  { name: 'licences', dependencies: ['exchange'] },
)
