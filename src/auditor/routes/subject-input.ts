// A raw subject (citizen id number or credit code) is only ever taken from a JSON body or
// the Tongban-Subject header, never the URL (which lands in access logs); it is hashed at
// once, and replaced by its keyed hash before the request digest is taken.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Problem } from '../../problems/problem.js'
import { checkIdNumber } from '../../gb/id-number.js'
import { checkCreditCode } from '../../gb/credit-code.js'
import { maskSubject } from '../subject-report.js'

export const SUBJECT_HEADER = 'tongban-subject'

export interface Subject {
  hash: string
  masked?: string
}

const SUBJECT_IN_URL = 'a raw subject identifier must not be sent in the URL (it would land in access logs): use POST with a JSON body or the Tongban-Subject header'

export function refuseRawInQuery(q: { subject?: unknown }): void {
  if (q.subject !== undefined) throw new Problem(400, 'AUDIT_SUBJECT_IN_URL', SUBJECT_IN_URL)
}

/** Raw identifier → keyed hash; a typo must not read as "nobody looked this person up". */
export function hashRaw(app: FastifyInstance, raw: string): Required<Subject> {
  const v = raw.trim().toUpperCase()
  if (!checkIdNumber(v).ok && !checkCreditCode(v).ok) {
    throw new Problem(400, 'AUDIT_SUBJECT_INVALID', 'the subject is neither a valid GB 11643 citizen id number nor a valid GB 32100 credit code')
  }
  return { hash: app.hashSubject(v), masked: maskSubject(v) }
}

// A body with a raw subject: the request digest is taken over the body with the subject
// replaced by its keyed hash (an unkeyed digest of an id number is reversible).
export function takeSubject(app: FastifyInstance, request: FastifyRequest, body: { subject?: string; subjectHash?: string }): Required<Subject> | null {
  if (body.subject === undefined) {
    if (body.subjectHash) request.audit.subject = body.subjectHash
    return null
  }
  if (body.subjectHash) throw new Problem(400, 'INPUT_INVALID', 'give subject or subjectHash, not both')
  const s = hashRaw(app, body.subject)
  request.audit.subject = s.hash
  const { subject: _raw, ...rest } = body
  request.rawBody = Buffer.from(JSON.stringify({ ...rest, subjectHash: s.hash }))
  return s
}
