// RFC 9457 problem details: every error the gateway answers is one of these, with a
// stable machine `code` that clients may switch on (listed in ./codes.ts).
import type { ProblemCode } from './codes.js'

export type { ProblemCode } from './codes.js'

export class Problem extends Error {
  readonly status: number
  readonly code: ProblemCode
  readonly detail?: string
  readonly extra?: Record<string, unknown>

  constructor(status: number, code: ProblemCode, detail?: string, extra?: Record<string, unknown>) {
    super(detail ?? code)
    this.status = status
    this.code = code
    this.detail = detail
    this.extra = extra
  }
}

export const isProblem = (e: unknown): e is Problem => e instanceof Problem
