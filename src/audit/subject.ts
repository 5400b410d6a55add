// Subjects (id numbers, credit codes) enter the audit log only as a keyed hash: an auditor
// holding the raw value can still find "who looked up X", nobody can read X back.
import { createHmac } from 'node:crypto'

export type SubjectHasher = (value: string) => string

export function subjectHasher(key: Buffer): SubjectHasher {
  return (value) =>
    'hmac-sha256:' + createHmac('sha256', key).update(value.trim().toUpperCase()).digest('hex')
}
