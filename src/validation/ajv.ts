// The gateway's Ajv for the JSON Schemas of resource operations (schemas/): the domain
// formats and keywords (GB 11643, GB 32100, periods), every error reported.
import { Ajv, type ValidateFunction } from 'ajv'
import { domainFormats, domainKeywords } from './formats.js'

const ajv = new Ajv({ allErrors: true, strict: false, formats: domainFormats, keywords: domainKeywords })

export const compileSchema = (schema: object): ValidateFunction => ajv.compile(schema)
