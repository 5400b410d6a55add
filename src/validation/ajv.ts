// The only place the gateway constructs Ajv. Every instance knows the domain formats and
// keywords (formats.ts) and the standard formats (ajv-formats), and compiles each schema
// once: the cache is keyed by the schema's text, so the same schema built afresh (per app,
// per route, per copy of a file) is not compiled again. `addUsedSchema: false` keeps
// compiled schemas out of the instance's registry, so two files carrying the same $id (a
// catalogue file and its edited copy) never collide.
import { Ajv, type AnySchema, type Options, type ValidateFunction } from 'ajv'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import { domainFormats, domainKeywords } from './formats.js'

export interface Validators {
  /** The validator of `schema`, compiled on first use. Throws if the schema does not compile. */
  compile<T = unknown>(schema: AnySchema): ValidateFunction<T>
}

const shared: Options = { addUsedSchema: false, formats: domainFormats, keywords: domainKeywords }

function validators(ajv: Ajv): Validators {
  // By object first: callers that validate per entry pass the same schema object each time.
  const byObject = new WeakMap<object, ValidateFunction>()
  const byText = new Map<string, ValidateFunction>()
  return {
    compile<T>(schema: AnySchema): ValidateFunction<T> {
      const key = typeof schema === 'object' ? schema : { schema }
      let v = byObject.get(key)
      if (!v) {
        const text = JSON.stringify(schema)
        v = byText.get(text) ?? ajv.compile(schema)
        byText.set(text, v)
        byObject.set(key, v)
      }
      return v as ValidateFunction<T>
    },
  }
}

const build = (make: (o: Options) => Ajv, options: Options): Validators => {
  const ajv = make({ ...shared, ...options })
  addFormats.default(ajv)
  return validators(ajv)
}

/**
 * Requests at the door (Fastify route validation, admin route parts, snapshots from child
 * nodes): untrusted input, so the first error only (allErrors is a DoS vector), no type
 * coercion (JSON arrives typed), schema defaults filled in, as Fastify's own compiler does.
 */
export const requestValidators = build((o) => new Ajv(o), {
  allErrors: false,
  coerceTypes: false,
  useDefaults: true,
  removeAdditional: false,
  strict: false,
})

/**
 * Every error at once, nothing changed in the data: resource operation bodies (the problem
 * handler looks through all errors for a domain-format code) and the configuration (each
 * bad setting named in one pass). Not strict: the configuration schema carries `x-env`
 * annotations, and operation schemas are compiled without their `$schema`.
 */
export const reportingValidators = build((o) => new Ajv(o), { allErrors: true, strict: false })

// Query strings are text: their integers and booleans need coercion, and a single value of
// a list parameter becomes a list. Fastify takes one compiler per route, so a route with a
// query string (the auditor's) validates its all-string headers with it too.
export const queryValidators = build((o) => new Ajv(o), { coerceTypes: 'array', useDefaults: true, allErrors: false, strict: false })

// Catalogue files: strict, so a typo in an admin's keyword or format is refused, with the
// failing subschema in each error (its description explains a pattern); type and tuple
// checks would only warn on the console, so they are off. One instance per draft the
// catalogue's schema files may declare.
const catalogueOptions: Options = { allErrors: true, verbose: true, strictTypes: false, strictTuples: false }
const catalogueDraft07 = build((o) => new Ajv(o), catalogueOptions)
const catalogueDraft2020 = build((o) => new Ajv2020(o), catalogueOptions)

const DRAFT_2020 = 'https://json-schema.org/draft/2020-12/schema'

/** The catalogue instance for the draft `schema.$schema` declares (draft-07 unless 2020-12). */
export const catalogueValidators = (schema: object): Validators =>
  (schema as { $schema?: unknown }).$schema === DRAFT_2020 ? catalogueDraft2020 : catalogueDraft07
