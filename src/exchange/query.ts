// The query pipeline (docs/architecture.md), one query from its context to its sealed record.
// `QueryEngine.answer` and `run` read top to bottom as the steps: context, resolve (this
// node's catalogue, or the route step asks the tier router for the next hop), validate
// (against the schema of what was found), authorize, call (the upstream, or the next hop),
// filter, seal. The HTTP routes (plugin.ts), bulk items (src/bulk) and a
// relayed query at its owner (src/tiers/relay.ts) all build one `Query` and hand it here;
// what the steps learn goes into `query.state`, which becomes the audit record.
import type { ValidateFunction } from 'ajv'
import { Problem, isProblem, type ProblemCode } from '../problems/problem.js'
import { problemBody } from '../problems/plugin.js'
import type { Config } from '../config/index.js'
import { buildAuditRecord, type AuditContext } from '../audit/plugin.js'
import type { Evidence, AuditRecord, EvidenceVersion } from '../evidence/evidence.js'
import type { Principal } from '../auth/principal.js'
import type { CatalogResource } from '../catalog/repository.js'
import type { OperationBinding } from '../catalog/types.js'
import type { Authorization } from '../policy/authorize.js'
import type { Purpose } from '../policy/purposes.js'
import { loadSchemaFile } from '../catalog/files.js'
import { reportingValidators } from '../validation/ajv.js'
import { checkContext, type RawContext } from './context.js'
import { validationProblem } from '../problems/validation.js'
import { filterItems } from './filter.js'
import { Upstreams } from './upstream.js'

/** What a query asks for: a verification service, or an operation of a catalogue resource. */
export type QueryTarget = { kind: 'verify'; service: string } | { kind: 'resources'; code: string; operation: string }

/** One query, built once by whoever received it and passed through every step. */
export interface Query {
  requestId: string
  principal: Principal
  target: QueryTarget
  /** The context as the caller stated it (headers, a batch's row, a relay assertion). */
  context: RawContext
  body: unknown
  /** The exact request bytes: the record holds their digest. */
  bodyBytes?: Buffer | string
  /** The route's own schema check, when the route ran one (Fastify, attachValidation). */
  routeValidation?: Error | null
  /** The request schema (path under schemas/) the route already checked the body against. */
  routeBodySchema?: string
  /** This node answers as the owner (a query relayed to it): it never routes it on. */
  owner?: boolean
  /** The request state: filled in step by step, it becomes the audit record. */
  state: AuditContext
  /** Serializes a 200 answer (the route's response schema); JSON.stringify otherwise. */
  serialize?: (answer: unknown) => string
}

/** An answer before it is sealed: the exact bytes, and for relayed ones the hops' evidence. */
export interface Answer {
  status: number
  contentType: string
  body: string
  /** The problem code of a refusal or failure. */
  code?: ProblemCode
  /** Evidence of the hops after this node, nearest first, the owner's last. */
  chain: string[]
  /** Headers of the hops after this node passed on unchanged, outside the evidence (Tongban-Data-Notice). */
  passOn?: ReadonlyArray<readonly [name: string, value: string]>
  /** Seconds, for Retry-After. */
  retryAfter?: number
}

export interface SealedAnswer extends Answer {
  evidence: Evidence
}

/** Where a target this node does not hold goes: the route step's question to the tier router. */
export interface NextHop {
  hop: string
  /** The owner's catalogue entry, when it was published below this node (no upstream binding). */
  entry?: { code: string; service?: { operations: Record<string, OperationBinding> } }
}

/** The tier router (src/tiers/relay.ts): asked for targets this node does not hold. */
export interface TierRouter {
  route(target: QueryTarget, consumerRegion: string): NextHop | null
  relay(next: NextHop, q: Query): Promise<Answer>
}

/** Whether (and when) a failed attempt is tried again: bulk items wait out rate limits. */
export type RetryPolicy = (p: Problem, attempt: number, idempotent: boolean) => Promise<boolean>

export interface QueryDeps {
  config: Config
  catalog: {
    get(code: string): CatalogResource | undefined
    forVerifyService(service: string, region: string): CatalogResource | undefined
    verifyServices(): string[]
  }
  purposes: Map<string, Purpose>
  hashSubject(value: string): string
  authorize(resource: CatalogResource, principal: Principal, purpose: string): Promise<Authorization>
  sealer: { seal(record: AuditRecord): Promise<Evidence>; readonly version?: EvidenceVersion }
  router?: TierRouter | null
  log: { error(o: object, m?: string): void }
  /** Breaker state changes per departmental upstream (metrics). */
  onUpstreamCircuit?: (upstream: string, state: 'closed' | 'open' | 'half-open') => void
}

export const stripId = ({ $id: _id, $schema: _s, ...rest }: Record<string, unknown>) => rest

const JSON_TYPE = 'application/json; charset=utf-8'
const PROBLEM_TYPE = 'application/problem+json'

/** Where the resolve step found the target. */
type Found = { kind: 'local'; resource: CatalogResource } | { kind: 'hop'; next: NextHop }

export class QueryEngine {
  readonly upstreams: Upstreams
  private readonly compiled = new Map<string, ValidateFunction>()

  constructor(private readonly deps: QueryDeps) {
    this.upstreams = new Upstreams({ ...deps.config.upstreamBreaker, onState: deps.onUpstreamCircuit })
  }

  /** The pipeline. Never throws for the query's own faults: a refusal is an answer, sealed too. */
  async run(q: Query, retry?: RetryPolicy): Promise<SealedAnswer> {
    const answer = await this.answer(q, retry)
    return this.seal(q, answer)
  }

  /** Every step but the seal (bulk items decide whether a failure is sealed or retried later). */
  async answer(q: Query, retry?: RetryPolicy): Promise<Answer> {
    try {
      this.context(q)
      const found = this.resolve(q)
      const binding = this.bindingOf(q, found)
      // Before validation: a refused query still says whose data it asked for (keyed hash).
      this.subject(q, binding)
      this.validate(q, found, binding)
      for (let attempt = 0; ; attempt++) {
        try {
          if (found.kind === 'hop') return await this.callNextHop(q, found.next)
          const { items } = await this.authorize(q, found.resource)
          const answer = await this.call(q, found.resource, binding!)
          return this.ok(q, this.filter(answer, items))
        } catch (e) {
          if (!retry || !isProblem(e)) throw e
          const idempotent = binding?.idempotent ?? (q.target.kind === 'verify')
          if (!(await retry(e, attempt, idempotent))) throw e
        }
      }
    } catch (e) {
      return this.refusal(q, e)
    }
  }

  // ---- the steps, in order ----

  /** context: purpose, case id, operator (README.md), into the state before anything can fail. */
  private context(q: Query): void {
    q.state.operation ??= q.target.kind === 'verify' ? 'verify' : q.target.operation
    checkContext(q.context, this.deps.purposes, q.state)
  }

  /** resolve: this node's catalogue entry for the target; else ask the tier router for the next hop. */
  private resolve(q: Query): Found {
    const t = q.target
    const { catalog, router } = this.deps
    const resource = t.kind === 'verify' ? catalog.forVerifyService(t.service, q.principal.region) : catalog.get(t.code)
    if (resource) {
      q.state.resource = resource.code
      return { kind: 'local', resource }
    }
    const next = q.owner || !router ? null : router.route(t, q.principal.region)
    if (next) {
      q.state.resource = t.kind === 'resources' ? t.code : next.entry?.code
      return { kind: 'hop', next }
    }
    if (t.kind === 'resources') throw new Problem(404, 'RESOURCE_NOT_FOUND', 'no such resource in the catalogue')
    if (!catalog.verifyServices().includes(t.service)) throw new Problem(404, 'SERVICE_UNKNOWN', `no verification service ${t.service.slice(0, 64)}`)
    throw new Problem(404, 'RESOURCE_NOT_FOUND', `no resource answers verify/${t.service} for this region`)
  }

  private bindingOf(q: Query, found: Found): OperationBinding | undefined {
    const ops = found.kind === 'local' ? found.resource.service?.operations : found.next.entry?.service?.operations
    const op = q.target.kind === 'verify' ? 'verify' : q.target.operation
    const binding = ops && Object.hasOwn(ops, op) ? ops[op] : undefined
    if (found.kind === 'local' && (!binding || !found.resource.service)) {
      throw new Problem(404, 'RESOURCE_OPERATION_UNKNOWN', `resource ${found.resource.code} has no operation ${op}`)
    }
    return binding
  }

  /**
   * validate: the route's own schema check (a verify route's body, the context headers),
   * then the body against the operation's request schema (for a next hop, when this node
   * has it): nothing malformed leaves the node.
   */
  private validate(q: Query, found: Found, binding: OperationBinding | undefined): void {
    if (q.routeValidation) throw q.routeValidation
    const rel = binding?.requestSchema ?? (found.kind === 'hop' && q.target.kind === 'verify' ? `verify/${q.target.service}.request.schema.json` : undefined)
    // A verify route checked the body against this very schema: not again.
    if (!rel || rel === q.routeBodySchema) return
    let check: ValidateFunction
    try {
      check = this.validatorFor(rel)
    } catch (e) {
      // A next hop's schema file that is not on this node: the owner validates.
      if (found.kind === 'hop') return
      throw e
    }
    if (!check(q.body)) throw validationProblem(q.body, check.errors ?? [])
  }

  /** The subject's keyed hash ("who looked up this person?"), never the raw value. */
  private subject(q: Query, binding: OperationBinding | undefined): void {
    const body = q.body as Record<string, unknown> | null
    if (body === null || typeof body !== 'object') return
    // A hop that does not know the owner's binding still hashes an id number.
    const field = binding?.subjectField ?? (binding ? undefined : 'idNumber')
    const value = field && Object.hasOwn(body, field) ? body[field] : undefined
    if (typeof value === 'string') q.state.subject = this.deps.hashSubject(value)
  }

  /** call, across tiers: the next hop answers (the tier router); this node seals its own leg over the same bytes. */
  private async callNextHop(q: Query, next: NextHop): Promise<Answer> {
    return this.deps.router!.relay(next, q)
  }

  /** authorize: share type, grant, items, purpose, rate limit and quota (src/policy). */
  private async authorize(q: Query, resource: CatalogResource): Promise<Authorization> {
    const a = await this.deps.authorize(resource, q.principal, q.state.purpose!)
    if (a.grantId) q.state.grant = a.grantId
    return a
  }

  /** call: the providing department's system, and its answer checked against its schema. */
  private async call(q: Query, resource: CatalogResource, binding: OperationBinding): Promise<unknown> {
    const upstream = resource.service!.upstream
    const baseUrl = Object.hasOwn(this.deps.config.upstreams, upstream.name) ? this.deps.config.upstreams[upstream.name] : undefined
    if (!baseUrl) throw new Problem(502, 'UPSTREAM_NOT_CONFIGURED', `upstream ${upstream.name} has no address on this node`, { hop: upstream.name })
    const answer = await this.upstreams.call({
      baseUrl,
      binding: upstream,
      body: JSON.stringify(q.body),
      headers: {
        'tongban-request-id': q.requestId,
        'tongban-purpose': q.state.purpose!,
        'tongban-case-id': q.state.caseId!,
        'tongban-consumer': q.principal.department,
      },
      idempotent: binding.idempotent,
    })
    if (!this.validatorFor(binding.responseSchema)(answer)) {
      throw new Problem(502, 'UPSTREAM_BAD_RESPONSE', `upstream ${upstream.name} answered outside its schema`, { hop: upstream.name })
    }
    return answer
  }

  /** filter: least data — only the items the authorization released leave the node. */
  private filter(answer: unknown, items: ReadonlySet<string>): Record<string, unknown> {
    return filterItems(answer, items)
  }

  /** seal: the record, in a Merkle batch, durable before the answer is released. */
  async seal(q: Query, a: Answer): Promise<SealedAnswer> {
    const record = (answer: Answer) => buildAuditRecord({
      node: this.deps.config.node.id,
      requestId: q.requestId,
      principal: q.principal,
      audit: q.state,
      status: answer.status,
      requestBytes: q.bodyBytes,
      responseBody: answer.body,
      version: this.deps.sealer.version,
    })
    let r = record(a)
    // A value the log cannot hold exactly (NUL, half a surrogate pair) was escaped in the
    // record: nothing is released under it; the refusal is sealed instead (docs/audit.md).
    if (r.escaped && q.state.reason !== 'INPUT_UNREPRESENTABLE') {
      a = this.refusal(q, new Problem(400, 'INPUT_UNREPRESENTABLE', 'a value of this request (NUL or an unpaired UTF-16 surrogate) cannot be recorded in the audit log'))
      r = record(a)
    }
    return { ...a, evidence: await this.deps.sealer.seal(r) }
  }

  // ---- answers ----

  private ok(q: Query, answer: Record<string, unknown>): Answer {
    return { status: 200, contentType: JSON_TYPE, body: q.serialize ? q.serialize(answer) : JSON.stringify(answer), chain: [] }
  }

  /** A refusal or failure as problem+json; anything unexpected is logged and answered 500. */
  private refusal(q: Query, e: unknown): Answer {
    let p: Problem
    if (isProblem(e)) p = e
    else if ((e as { validation?: unknown[] }).validation) p = validationProblem(q.body, (e as { validation: any[] }).validation, (e as { validationContext?: string }).validationContext)
    else {
      this.deps.log.error({ err: e, requestId: q.requestId }, 'query failed unexpectedly')
      p = new Problem(500, 'INTERNAL', 'an unexpected error occurred; it has been logged')
    }
    q.state.reason = p.code
    const retryAfter = typeof p.extra?.retryAfter === 'number' ? p.extra.retryAfter : undefined
    return { status: p.status, contentType: PROBLEM_TYPE, body: JSON.stringify(problemBody({ id: q.requestId }, p)), code: p.code, chain: [], retryAfter }
  }

  /** Schemas of resource operations, compiled once per file. */
  validatorFor(rel: string): ValidateFunction {
    let v = this.compiled.get(rel)
    if (!v) {
      v = reportingValidators.compile(stripId(loadSchemaFile(this.deps.config.files.schemasDir, rel)))
      this.compiled.set(rel, v)
    }
    return v
  }

  close(): Promise<void> {
    return this.upstreams.close()
  }
}
