// Domain formats for JSON Schemas: `format: gb11643` (resident id number) and
// `format: gb32100` (unified social credit code); and domain keywords for rules across
// fields (`x-tongban-period`: a period's start not after its end). The problem handler maps
// a failure to the precise code (INPUT_INVALID_ID_NUMBER, INPUT_UNKNOWN_REGION,
// INPUT_PERIOD_REVERSED, …). Every ajv that compiles request schemas registers both.
import { checkIdNumber } from '../gb/id-number.js'
import { checkCreditCode } from '../gb/credit-code.js'
import { periodKeyword } from './period.js'

export const domainFormats = {
  gb11643: { type: 'string', validate: (s: string) => checkIdNumber(s).ok },
  gb32100: { type: 'string', validate: (s: string) => checkCreditCode(s).ok },
} as const

export const domainKeywords = [periodKeyword]
