// The query steps after authentication and context, for one resource operation: subject
// hash, authorize (policy), route to the upstream, call it, check its answer, filter items.
// Used by the HTTP routes and by batch jobs alike; the seal step is the caller's.
import { Ajv, type ValidateFunction } from 'ajv'
import { Problem } from '../problems/problem.js'
import type { Config } from '../config/index.js'
import type { AuditContext } from '../audit/plugin.js'
import type { Principal } from '../auth/principal.js'
import type { CatalogResource } from '../catalog/repository.js'
import type { Authorization } from '../policy/authorize.js'
import { loadSchemaFile } from '../catalog/files.js'
import { domainFormats, domainKeywords } from '../validation/formats.js'
import { filterItems } from './filter.js'
import { Upstreams } from './upstream.js'
import { own } from '../catalog/own.js'

export interface QueryContext {
  requestId: string
  principal: Principal
  /** Filled in as the query goes: it becomes the audit record. Purpose and case id are set. */
  audit: AuditContext
}

export interface QueryDeps {
  config: Config
  hashSubject(value: string): string
  authorize(resource: CatalogResource, principal: Principal, purpose: string): Promise<Authorization>
}

export const stripId = ({ $id: _id, $schema: _s, ...rest }: Record<string, unknown>) => rest

export class QueryEngine {
  readonly upstreams = new Upstreams()
  private readonly ajv = new Ajv({ allErrors: true, strict: false, formats: domainFormats, keywords: domainKeywords })
  private readonly compiled = new Map<string, ValidateFunction>()

  constructor(private readonly deps: QueryDeps) {}

  /** Schemas of resource operations, compiled once per file. */
  validatorFor(rel: string): ValidateFunction {
    let v = this.compiled.get(rel)
    if (!v) {
      v = this.ajv.compile(stripId(loadSchemaFile(this.deps.config.files.schemasDir, rel)))
      this.compiled.set(rel, v)
    }
    return v
  }

  /** Throws a Fastify-style validation error (mapped to INPUT_* codes) when the body is off. */
  validateRequest(resource: CatalogResource, operation: string, body: unknown): void {
    const binding = own(resource.service?.operations, operation)
    if (!binding) return
    const validate = this.validatorFor(binding.requestSchema)
    if (!validate(body)) {
      throw Object.assign(new Error('body does not match the schema'), { validation: validate.errors, validationContext: 'body' })
    }
  }

  async run(ctx: QueryContext, resource: CatalogResource, operation: string, body: any): Promise<Record<string, unknown>> {
    const { config } = this.deps
    const binding = own(resource.service?.operations, operation)
    ctx.audit.resource = resource.code
    ctx.audit.operation = operation
    if (!binding || !resource.service) throw new Problem(404, 'RESOURCE_OPERATION_UNKNOWN', `resource ${resource.code} has no operation ${operation}`)
    const subjectValue = binding.subjectField ? own(body, binding.subjectField) : undefined
    if (typeof subjectValue === 'string') ctx.audit.subject = this.deps.hashSubject(subjectValue)

    const { items, grantId } = await this.deps.authorize(resource, ctx.principal, ctx.audit.purpose!)
    if (grantId) ctx.audit.grant = grantId
    const upstream = resource.service.upstream
    const baseUrl = own(config.upstreams, upstream.name)
    if (!baseUrl) throw new Problem(502, 'UPSTREAM_NOT_CONFIGURED', `upstream ${upstream.name} has no address on this node`, { hop: upstream.name })
    const answer = await this.upstreams.call({
      baseUrl,
      binding: upstream,
      body: JSON.stringify(body),
      headers: {
        'tongban-request-id': ctx.requestId,
        'tongban-purpose': ctx.audit.purpose!,
        'tongban-case-id': ctx.audit.caseId!,
        'tongban-consumer': ctx.principal.department,
      },
      idempotent: binding.idempotent,
    })
    if (!this.validatorFor(binding.responseSchema)(answer)) {
      throw new Problem(502, 'UPSTREAM_BAD_RESPONSE', `upstream ${upstream.name} answered outside its schema`, { hop: upstream.name })
    }
    return filterItems(answer, items)
  }

  close(): Promise<void> {
    return this.upstreams.close()
  }
}
