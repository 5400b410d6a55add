// The route step across tiers (DESIGN.md §3 "route: local upstream, or the next gateway up
// or down the tier tree", §6). A query for a resource this node does not own goes to the
// next hop: down to the child below which the owner published it (catalogue sync), else up
// to the parent; so it climbs to the common ancestor and descends to the owner.
//
//   origin (consumer's node)  authenticates the consumer, validates, signs the consumer
//                             assertion, relays, seals its own leg (the exchange route's
//                             onSend), answers with the owner's body bytes unchanged.
//   intermediate hop          authenticates the previous hop (mTLS + assertion chain),
//                             enforces nothing it does not own, appends its hop assertion,
//                             relays, seals its own leg here.
//   owner                     runs its ordinary pipeline for the consumer (sharing rules,
//                             grants of the consumer's department, quota, upstream, item
//                             filter, seal) through an in-process call of its own route.
//
// Every hop answers its own evidence in `Tongban-Evidence` and the evidence of the hops
// after it, nearest first and the owner's last, in `Tongban-Evidence-Chain` (§4.1 format
// each, ", "-separated). All of them are over the same body bytes and the same request id.
import { randomBytes } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Problem, isProblem } from '../problems/problem.js'
import { problemBody } from '../problems/plugin.js'
import { buildAuditRecord } from '../audit/plugin.js'
import { decodeEvidence, digest, encodeEvidence } from '../evidence/evidence.js'
import { tierOf } from '../auth/principal.js'
import type { OperationBinding } from '../catalog/types.js'
import { ASSERTION_HEADER, AssertionSigner, AssertionVerifier, type ConsumerClaims } from './assertion.js'
import type { NodeClient, HopResponse } from './node-client.js'
import { peerNodeOf } from './listener.js'
import type { RemoteCatalog, RemoteEntry } from './remote-catalog.js'
import { regionWithin, type Topology, type TopologyNode } from './topology.js'

export const EVIDENCE_CHAIN_HEADER = 'tongban-evidence-chain'
export const TIMEOUT_HEADER = 'tongban-timeout-ms'
/** Marks the owner's in-process call of its own route, so that it is not routed again. */
const INTERNAL_HEADER = 'tongban-internal-relay'

export type Target =
  | { kind: 'resources'; code: string; operation: string }
  | { kind: 'verify'; service: string }
  | { kind: 'applications'; code: string }

/** The target as the relay routes and the assertion's `tgt` claim name it. */
export const targetPath = (t: Target): string =>
  t.kind === 'resources' ? `resources/${encodeURIComponent(t.code)}/${t.operation}` : t.kind === 'verify' ? `verify/${t.service}` : 'applications'

/** The owner's own public route for the target. */
const localRoute = (t: Target): string =>
  t.kind === 'resources' ? `/v1/resources/${encodeURIComponent(t.code)}/${t.operation}` : t.kind === 'verify' ? `/v1/verify/${t.service}` : '/v1/applications'

type Decision = { kind: 'local' } | { kind: 'hop'; hop: TopologyNode; entry?: RemoteEntry } | { kind: 'none' }

const CODE = /^[0-9]{6}\/[0-9]{5}$/
const SERVICE = /^[a-z][a-z0-9-]{0,31}$/
const OPERATION = /^[a-z][a-z0-9-]{0,31}$/

const split = (v: string | string[] | undefined): string[] =>
  (Array.isArray(v) ? v.join(',') : v ?? '').split(',').map((s) => s.trim()).filter(Boolean)

export interface RelayDeps {
  app: FastifyInstance
  topology: Topology
  client: NodeClient
  signer: AssertionSigner
  verifier: AssertionVerifier
  remote: RemoteCatalog
}

/** A relayed answer as the origin receives it, checked (relayQuery). */
export interface RelayedAnswer {
  status: number
  contentType: string
  body: string
  /** Evidence of the hops after this node, nearest first, the owner's last. */
  chain: string[]
  code?: string
  /** The next hop it went to. */
  hop: string
}

// The Relay of each app, for the batch worker (src/batch), which relays items as an origin
// without an HTTP request of its own; the tiers plugin creates it.
const relays = new WeakMap<object, Relay>()
export const relayOf = (app: object): Relay | undefined => relays.get(app)

/**
 * The resource the owner answered from, as its evidence (the last of the chain) names it:
 * a hop that routed verify/{service} upwards did not know the code, its record should.
 */
function ownerResource(chain: string[]): string | undefined {
  const last = chain[chain.length - 1]
  if (!last) return undefined
  try {
    const r = decodeEvidence(last).record.resource
    return typeof r === 'string' ? r : undefined
  } catch {
    return undefined
  }
}

export class Relay {
  private readonly secret = randomBytes(32).toString('hex')
  private readonly self: string

  constructor(private readonly d: RelayDeps) {
    this.self = d.topology.self.id
    relays.set(d.app, this)
  }

  /** TLS connections this node has opened to a next hop so far (keep-alive: reused between calls). */
  connectionsTo(hop: string): number {
    return this.d.client.connections(hop)
  }

  // ---- where does it go? ----

  decide(t: Target, consumerRegion: string, from: 'origin' | 'parent' | 'child'): Decision {
    const { catalog } = this.d.app
    let entry: RemoteEntry | undefined
    if (t.kind === 'verify') {
      if (catalog.forVerifyService(t.service, consumerRegion)) return { kind: 'local' }
      entry = this.d.remote.forVerifyService(t.service, consumerRegion)
    } else {
      if (catalog.get(t.code)) return { kind: 'local' }
      entry = this.d.remote.get(t.code, consumerRegion)
    }
    if (entry) {
      const hop = this.d.topology.children.find((c) => c.id === entry!.via) ?? this.d.topology.childToward(entry.node)
      if (hop) return { kind: 'hop', hop, entry }
    }
    // Not here and not below: up, unless it came from above (then nobody below has it).
    if (from !== 'parent' && this.d.topology.parent) return { kind: 'hop', hop: this.d.topology.parent }
    return { kind: 'none' }
  }

  // ---- origin: the route step of the consumer-facing routes ----

  /** The target of a consumer-facing request, or null when it is not one the relay handles. */
  private publicTarget(request: FastifyRequest): Target | null {
    const url = request.routeOptions.url ?? ''
    const params = (request.params ?? {}) as Record<string, string | undefined>
    if (url.startsWith('/v1/resources/')) {
      const code = params.code ?? `${params.category}/${params.seq}`
      const operation = params.operation ?? ''
      return CODE.test(code) && OPERATION.test(operation) ? { kind: 'resources', code, operation } : null
    }
    if (url.startsWith('/v1/verify/')) {
      const service = params.service ?? url.slice('/v1/verify/'.length)
      return SERVICE.test(service) ? { kind: 'verify', service } : null
    }
    if (url === '/v1/applications') {
      const code = (request.body as { resource?: unknown } | null)?.resource
      return typeof code === 'string' && CODE.test(code) ? { kind: 'applications', code } : null
    }
    return null
  }

  /**
   * preHandler added to the consumer-facing query and application routes (plugin.ts): when
   * the resource is not this node's, relays it and answers (true); otherwise lets the route
   * run (false).
   */
  readonly originHook = async (request: FastifyRequest, reply: FastifyReply): Promise<boolean> => {
    if (request.headers[INTERNAL_HEADER] === this.secret) return false
    const principal = request.principal
    if (!principal) return false
    const t = this.publicTarget(request)
    if (!t) return false
    const d = this.decide(t, principal.region, 'origin')
    if (d.kind !== 'hop') return false

    request.audit.resource = t.kind === 'verify' ? d.entry?.code : t.code
    // A node vouches for consumers of its own division only; the next hops would refuse.
    if (!regionWithin(principal.region, this.d.topology.self.region)) {
      throw new Problem(403, 'TIERS_CONSUMER_OUTSIDE_NODE', `node ${this.self} relays for consumers of region ${this.d.topology.self.region} only; a consumer of region ${principal.region} calls the node of its own division`)
    }
    if (t.kind === 'resources') request.audit.operation = t.operation
    else if (t.kind === 'verify') request.audit.operation = 'verify'
    const binding = this.bindingOf(t, d.entry)
    this.hashSubject(request, binding)
    if (binding && t.kind !== 'applications') this.validateLocally(d.entry!, t, request.body)
    else if (t.kind === 'verify') this.validateVerifyLocally(t.service, request.body)

    const body = request.rawBody ?? Buffer.from(JSON.stringify(request.body ?? {}))
    const claims: ConsumerClaims = {
      sub: principal.system,
      dept: principal.department,
      region: principal.region,
      purpose: request.audit.purpose ?? null,
      case: request.audit.caseId ?? null,
      ...(request.audit.operator ? { opr: request.audit.operator } : {}),
      tgt: targetPath(t),
      bd: digest(body),
    }
    const chain = [this.d.signer.origin(d.hop.id, request.id, claims)]
    let out
    try {
      const res = await this.forward(d.hop, t, request.id, chain, body, this.d.app.config.tiers.hopTimeoutMs)
      out = this.checkAnswer(res, d.hop, request.id)
    } catch (e) {
      const after = isProblem(e) ? e.extra?.retryAfter : undefined
      if (typeof after === 'number') reply.header('retry-after', String(after))
      throw e
    }
    if (out.status >= 400) request.audit.reason = out.code
    request.audit.resource ??= ownerResource(out.chain)
    if (out.chain.length) reply.header(EVIDENCE_CHAIN_HEADER, out.chain.join(', '))
    // The exchange route's onSend seals this node's own leg over exactly these bytes.
    reply.code(out.status).type(out.contentType)
    reply.send(out.body)
    return true
  }

  /**
   * One query as the origin, outside a consumer's HTTP request (a batch item): the same
   * decision, consumer assertion, next hop, budget and answer checks as originHook, for a
   * consumer of this node. The caller seals this node's own leg. null when this node owns
   * the target or nobody is asked (no hop).
   */
  async relayQuery(
    t: Exclude<Target, { kind: 'applications' }>,
    q: { requestId: string; principal: { system: string; department: string; region: string }; purpose: string; caseId: string; operator?: string | null; body: Buffer },
  ): Promise<RelayedAnswer | null> {
    const d = this.decide(t, q.principal.region, 'origin')
    if (d.kind !== 'hop') return null
    if (!regionWithin(q.principal.region, this.d.topology.self.region)) {
      throw new Problem(403, 'TIERS_CONSUMER_OUTSIDE_NODE', `node ${this.self} relays for consumers of region ${this.d.topology.self.region} only`)
    }
    const claims: ConsumerClaims = {
      sub: q.principal.system,
      dept: q.principal.department,
      region: q.principal.region,
      purpose: q.purpose,
      case: q.caseId,
      ...(q.operator ? { opr: q.operator } : {}),
      tgt: targetPath(t),
      bd: digest(q.body),
    }
    const chain = [this.d.signer.origin(d.hop.id, q.requestId, claims)]
    const res = await this.forward(d.hop, t, q.requestId, chain, q.body, this.d.app.config.tiers.hopTimeoutMs)
    return { ...this.checkAnswer(res, d.hop, q.requestId), hop: d.hop.id }
  }

  // ---- next hop ----

  private async forward(hop: TopologyNode, t: Target, rid: string, chain: string[], body: Buffer, budgetMs: number): Promise<HopResponse> {
    return this.d.client.send(hop, {
      method: 'POST',
      path: `/v1/tiers/relay/${targetPath(t)}`,
      headers: {
        'tongban-request-id': rid,
        [ASSERTION_HEADER]: chain.join(', '),
        [TIMEOUT_HEADER]: String(Math.max(1, Math.floor(budgetMs))),
      },
      body,
      timeoutMs: budgetMs,
    })
  }

  /**
   * What the next hop answered, checked: JSON, and when it releases data its own evidence
   * for this request over these very bytes. A refusal of the node channel itself (NODE_*)
   * is this hop's problem, not the consumer's credentials: 502 HOP_REFUSED.
   */
  private checkAnswer(res: HopResponse, hop: TopologyNode, rid: string): { status: number; contentType: string; body: string; chain: string[]; code?: string } {
    const contentType = String(res.headers['content-type'] ?? '')
    if (!/^application\/(problem\+)?json\b/.test(contentType) || res.status < 200 || res.status > 599) {
      throw new Problem(502, 'HOP_BAD_RESPONSE', `node ${hop.id} answered HTTP ${res.status} (${contentType || 'no content type'})`, { hop: hop.id })
    }
    let code: string | undefined
    if (res.status >= 400) {
      try {
        const c = (JSON.parse(res.body) as { code?: unknown }).code
        if (typeof c === 'string') code = c
      } catch {
        /* checked below */
      }
      if (code?.startsWith('NODE_') || code === 'TIERS_SNAPSHOT_NOT_YOURS') {
        throw new Problem(502, 'HOP_REFUSED', `node ${hop.id} refused this node's call (${code})`, { hop: hop.id })
      }
      code ??= `HTTP_${res.status}`
    }
    const own = typeof res.headers['tongban-evidence'] === 'string' ? (res.headers['tongban-evidence'] as string) : undefined
    if (res.status < 400 && !own) {
      throw new Problem(502, 'HOP_BAD_RESPONSE', `node ${hop.id} answered without its evidence: nothing is released unaudited`, { hop: hop.id })
    }
    if (own) {
      let ok = false
      try {
        const e = decodeEvidence(own)
        ok = e.record.requestId === rid && e.record.responseDigest === digest(res.body)
      } catch {
        ok = false
      }
      if (!ok) throw new Problem(502, 'HOP_BAD_EVIDENCE', `the evidence of node ${hop.id} is not for this request and answer`, { hop: hop.id })
    }
    return { status: res.status, contentType, body: res.body, chain: own ? [own, ...split(res.headers[EVIDENCE_CHAIN_HEADER])] : split(res.headers[EVIDENCE_CHAIN_HEADER]), code }
  }

  // ---- the node-facing side: /v1/tiers/relay/… on the node listener ----

  async handle(request: FastifyRequest, reply: FastifyReply, target: () => Target): Promise<FastifyReply> {
    const { app, topology, verifier } = this.d
    let sealHere = true
    try {
      const peer = peerNodeOf(request)
      if (!topology.isNeighbour(peer)) {
        throw new Problem(403, 'NODE_NOT_NEIGHBOUR', `node ${peer} is not a neighbour of node ${this.self}: relays pass parent and children only`)
      }
      const t = target()
      if (t.kind !== 'verify') request.audit.resource = t.code
      request.audit.operation = t.kind === 'resources' ? t.operation : t.kind === 'verify' ? 'verify' : 'application.submit'
      const raw = request.rawBody ?? Buffer.alloc(0)
      const header = request.headers[ASSERTION_HEADER]
      const v = verifier.verify(Array.isArray(header) ? header.join(', ') : header, {
        self: this.self,
        peer,
        rid: request.id,
        tgt: targetPath(t),
        bodyDigest: digest(raw),
      })
      const c = v.consumer
      request.principal = { system: c.sub, department: c.dept, region: c.region, tier: tierOf(c.region), roles: ['consumer'] }
      if (c.purpose) request.audit.purpose = c.purpose
      if (c.case) request.audit.caseId = c.case
      if (c.opr) request.audit.operator = c.opr
      await this.noReplay(v.jti, v.exp, v.iat)

      const d = this.decide(t, c.region, peer === topology.parent?.id ? 'parent' : 'child')
      if (d.kind === 'none') {
        throw new Problem(404, 'RESOURCE_NOT_FOUND', `no node at or below node ${this.self} holds ${t.kind === 'verify' ? `verify/${t.service} for region ${c.region}` : `resource ${t.code}`}`)
      }
      if (d.kind === 'local') {
        // The owner: its own route, its own rules, its own record and evidence.
        sealHere = false
        return await this.runLocally(request, reply, t, c)
      }
      if (t.kind === 'verify' && d.entry) request.audit.resource = d.entry.code
      this.hashSubject(request, this.bindingOf(t, d.entry))
      const header0 = request.headers[TIMEOUT_HEADER]
      const given = Number(Array.isArray(header0) ? header0[0] : header0)
      const budget = Number.isFinite(given) && given > 0 ? Math.min(given, 120_000) : app.config.tiers.hopTimeoutMs
      // Leave this hop time to answer before its caller gives up: the hop nearest the
      // trouble is the one that reports it.
      const next = Math.min(app.config.tiers.hopTimeoutMs, budget - Math.max(50, Math.round(budget * 0.1)))
      const parts = split(Array.isArray(header) ? header.join(',') : header)
      const chain = [...parts, this.d.signer.hop(d.hop.id, request.id, parts[parts.length - 1])]
      const res = await this.forward(d.hop, t, request.id, chain, raw, next)
      const out = this.checkAnswer(res, d.hop, request.id)
      if (out.status >= 400) request.audit.reason = out.code
      request.audit.resource ??= ownerResource(out.chain)
      return await this.sealAndSend(request, reply, out.status, out.contentType, out.body, out.chain)
    } catch (e) {
      const p = isProblem(e) ? e : this.unexpected(request, e)
      request.audit.reason = p.code
      const body = JSON.stringify(problemBody(request, p))
      if (!sealHere) {
        reply.code(p.status).type('application/problem+json')
        return reply.send(body)
      }
      return this.sealAndSend(request, reply, p.status, 'application/problem+json', body, [])
    }
  }

  private unexpected(request: FastifyRequest, e: unknown): Problem {
    if ((e as { validation?: unknown }).validation) return new Problem(400, 'INPUT_INVALID', 'the request does not match the schema')
    request.log.error({ err: e }, 'relay failed')
    return new Problem(500, 'INTERNAL', 'an unexpected error occurred; it has been logged')
  }

  /** Seals this hop's own leg (a relay leg is audited like any answer) and sends. */
  async sealAndSend(request: FastifyRequest, reply: FastifyReply, status: number, contentType: string, body: string, chain: string[]): Promise<FastifyReply> {
    const { app } = this.d
    try {
      const evidence = await app.sealer.seal(
        buildAuditRecord({
          node: app.config.node.id,
          requestId: request.id,
          principal: request.principal,
          audit: request.audit,
          status,
          requestBytes: request.rawBody,
          responseBody: body,
        }),
      )
      reply.header('tongban-evidence', encodeEvidence(evidence))
      if (chain.length) reply.header(EVIDENCE_CHAIN_HEADER, chain.join(', '))
      reply.code(status).type(contentType)
      return reply.send(body)
    } catch (e) {
      request.log.error({ err: e }, 'audit record of a relay leg not durable; answer withheld')
      const p = new Problem(503, 'AUDIT_UNAVAILABLE', 'the audit record could not be made durable; nothing was released')
      reply.code(503).type('application/problem+json')
      return reply.send(JSON.stringify(problemBody(request, p)))
    }
  }

  /** True on the owner's in-process call of its own route (runOwnRoute): not to be routed again. */
  isInternal(request: FastifyRequest): boolean {
    return request.headers[INTERNAL_HEADER] === this.secret
  }

  /** An in-process call of this node's own consumer route for a remote consumer (relay owner, application messages). */
  async runOwnRoute(url: string, rid: string, c: Pick<ConsumerClaims, 'sub' | 'dept' | 'region' | 'purpose' | 'case' | 'opr'>, payload: Buffer, extra: Record<string, string> = {}) {
    const headers: Record<string, string> = {
      ...extra,
      authorization: `Bearer ${this.tokenFor(c)}`,
      'content-type': 'application/json',
      'tongban-request-id': rid,
      [INTERNAL_HEADER]: this.secret,
    }
    if (c.purpose) headers['tongban-purpose'] = c.purpose
    if (c.case) headers['tongban-case-id'] = c.case
    if (c.opr) headers['tongban-operator'] = c.opr
    return this.d.app.inject({ method: 'POST', url, headers, payload })
  }

  /** The owner's side: an in-process call of its own consumer route for the remote consumer. */
  private async runLocally(request: FastifyRequest, reply: FastifyReply, t: Target, c: ConsumerClaims): Promise<FastifyReply> {
    const res = await this.runOwnRoute(localRoute(t), request.id, c, request.rawBody ?? Buffer.alloc(0))
    const evidence = res.headers['tongban-evidence']
    if (typeof evidence === 'string') reply.header('tongban-evidence', evidence)
    reply.code(res.statusCode).type(String(res.headers['content-type'] ?? 'application/json'))
    return reply.send(res.payload)
  }

  private readonly tokens = new Map<string, { token: string; until: number }>()

  /**
   * An access token of this node for the remote consumer, consumer role only: it lets the
   * owner's own route run for them. It never leaves the process; kept a few minutes per
   * consumer so that the owner signs once, not once per relayed call.
   */
  private tokenFor(c: Pick<ConsumerClaims, 'sub' | 'dept' | 'region'>): string {
    const key = `${c.sub}|${c.dept}|${c.region}`
    const now = Date.now()
    const hit = this.tokens.get(key)
    if (hit && hit.until > now) return hit.token
    const token = this.d.app.jwt.sign({ sub: c.sub, dept: c.dept, region: c.region, tier: tierOf(c.region), roles: ['consumer'] })
    if (this.tokens.size > 10_000) this.tokens.clear()
    this.tokens.set(key, { token, until: now + Math.min(300, this.d.app.config.token.ttlSeconds / 2) * 1000 })
    return token
  }

  /** The last link's jti, once; a link issued before the replay store's epoch is refused (auth/replay-store.ts). */
  async noReplay(jti: string, exp: number, iat: number): Promise<void> {
    const ttl = Math.max(1000, (exp + 60) * 1000 - Date.now())
    let verdict
    try {
      verdict = await this.d.app.replay.claim(`tiers:jti:${jti}`, iat * 1000, ttl)
    } catch {
      throw new Problem(503, 'REPLAY_CHECK_UNAVAILABLE', 'the replay store (Redis) is unavailable; relayed calls are refused meanwhile')
    }
    if (verdict === 'replayed') throw new Problem(401, 'NODE_ASSERTION_REPLAYED', 'this node assertion was already used')
    if (verdict === 'before-epoch') {
      throw new Problem(401, 'NODE_ASSERTION_BEFORE_REPLAY_WINDOW', 'this node assertion was issued before the replay store began (it restarted)')
    }
  }

  // ---- what the hop knows of the resource ----

  private bindingOf(t: Target, entry?: RemoteEntry): OperationBinding | undefined {
    const ops = entry?.entry.service?.operations
    if (!ops) return undefined
    return t.kind === 'resources' ? ops[t.operation] : t.kind === 'verify' ? ops.verify : undefined
  }

  /** The subject's keyed hash in this hop's record too ("who looked up this person?" at every node). */
  private hashSubject(request: FastifyRequest, binding?: OperationBinding): void {
    const body = request.body as Record<string, unknown> | null
    const field = binding?.subjectField ?? (typeof body?.idNumber === 'string' ? 'idNumber' : undefined)
    const value = field ? body?.[field] : undefined
    if (typeof value === 'string') request.audit.subject = this.d.app.hashSubject(value)
  }

  /**
   * verify/{service} for an owner above, whose catalogue entry this node has not seen: the
   * service's request schema is the same on every node (schemas/verify/), so a malformed
   * id number is refused here, not three hops away.
   */
  private validateVerifyLocally(service: string, body: unknown): void {
    const engine = (this.d.app as { exchange?: { validatorFor(rel: string): ((b: unknown) => boolean) & { errors?: unknown } } }).exchange
    if (!engine) return
    let validate
    try {
      validate = engine.validatorFor(`verify/${service}.request.schema.json`)
    } catch {
      return // no such schema on this node: the owner validates
    }
    if (!validate(body)) {
      throw Object.assign(new Error('body does not match the schema'), { validation: validate.errors, validationContext: 'body' })
    }
  }

  /** Input checks before anything leaves, with the owner's published schema when this node has it. */
  private validateLocally(entry: RemoteEntry, t: Target, body: unknown): void {
    const op = t.kind === 'resources' ? t.operation : 'verify'
    const engine = (this.d.app as { exchange?: { validateRequest(r: unknown, op: string, body: unknown): void } }).exchange
    if (!engine) return
    try {
      engine.validateRequest(entry.entry, op, body)
    } catch (e) {
      if ((e as { validation?: unknown }).validation) throw e
      // The schema file is not on this node: the owner validates.
    }
  }
}
