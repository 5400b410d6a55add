// The route step across tiers (docs/architecture.md "route: local upstream, or the next gateway up
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
// The owner's Tongban-Data-Notice (outside the evidence) is passed on by every hop unchanged,
// when it has the shape the owner writes (docs/disputes.md "Tongban-Data-Notice").
import { INTERNAL_HEADER, INTERNAL_SECRET } from '../exchange/request-id.js'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Problem, isProblem, type ProblemCode } from '../problems/problem.js'
import { codeFrom } from '../problems/codes.js'
import { problemBody } from '../problems/plugin.js'
import { buildAuditRecord } from '../audit/plugin.js'
import { decodeEvidence, digest, encodeEvidence } from '../evidence/evidence.js'
import { tierOf } from '../auth/principal.js'
import type { OperationBinding } from '../catalog/types.js'
import type { Answer, NextHop, Query, QueryTarget } from '../exchange/query.js'
import { EVIDENCE_CHAIN_HEADER, sendSealed } from '../exchange/plugin.js'
import { ASSERTION_HEADER, AssertionSigner, AssertionVerifier, type ConsumerClaims } from './assertion.js'
import type { NodeClient, HopResponse } from './node-client.js'
import { peerNodeOf } from './listener.js'
import type { RemoteCatalog, RemoteEntry } from './remote-catalog.js'
import { regionWithin, type Topology, type TopologyNode } from './topology.js'
import { own } from '../catalog/own.js'
import { DATA_NOTICE_HEADER, wellFormedNotice } from '../disputes/notices.js'

export const TIMEOUT_HEADER = 'tongban-timeout-ms'
// INTERNAL_HEADER marks the owner's in-process call of its own route, so that it is not
// routed again (and keeps the relayed request id: app.ts).

export type Target = QueryTarget | { kind: 'applications'; code: string }

/** The target as the relay routes and the assertion's `tgt` claim name it. */
export const targetPath = (t: Target): string =>
  t.kind === 'resources' ? `resources/${encodeURIComponent(t.code)}/${t.operation}` : t.kind === 'verify' ? `verify/${t.service}` : 'applications'

/** The owner's own public route for the target. */
const localRoute = (t: Target): string =>
  t.kind === 'resources' ? `/v1/resources/${encodeURIComponent(t.code)}/${t.operation}` : t.kind === 'verify' ? `/v1/verify/${t.service}` : '/v1/applications'

type Decision = { kind: 'local' } | { kind: 'hop'; hop: TopologyNode; entry?: RemoteEntry } | { kind: 'none' }


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
  private readonly secret = INTERNAL_SECRET
  private readonly self: string

  constructor(private readonly d: RelayDeps) {
    this.self = d.topology.self.id
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

  // ---- origin: the route step of the query engine (src/exchange/query.ts) ----

  /** The route step's question: where a target this node does not hold goes; null: nowhere. */
  route(t: QueryTarget, consumerRegion: string): NextHop | null {
    const d = this.decide(t, consumerRegion, 'origin')
    if (d.kind !== 'hop') return null
    return { hop: d.hop.id, ...(d.entry ? { entry: { code: d.entry.code, service: d.entry.entry.service } } : {}) }
  }

  /**
   * Relays a query to the next hop as its origin: the consumer assertion, the hop's answer
   * checked (JSON, its evidence over these very bytes). The engine seals this node's own leg.
   */
  async relay(next: NextHop, q: Query): Promise<Answer> {
    const hop = this.d.topology.get(next.hop)
    if (!hop) throw new Problem(502, 'HOP_UNAVAILABLE', `node ${next.hop} is not in this node's topology`, { hop: next.hop })
    // A node vouches for consumers of its own division only; the next hops would refuse.
    if (!regionWithin(q.principal.region, this.d.topology.self.region)) {
      throw new Problem(403, 'TIERS_CONSUMER_OUTSIDE_NODE', `node ${this.self} relays for consumers of region ${this.d.topology.self.region} only; a consumer of region ${q.principal.region} calls the node of its own division`)
    }
    const body = q.bodyBytes === undefined ? Buffer.from(JSON.stringify(q.body ?? {})) : Buffer.from(q.bodyBytes)
    const claims: ConsumerClaims = {
      sub: q.principal.system,
      dept: q.principal.department,
      region: q.principal.region,
      purpose: q.state.purpose ?? null,
      case: q.state.caseId ?? null,
      ...(q.state.operator ? { opr: q.state.operator } : {}),
      tgt: targetPath(q.target),
      bd: digest(body),
    }
    const chain = [this.d.signer.origin(hop.id, q.requestId, claims)]
    const res = await this.forward(hop, q.target, q.requestId, chain, body, this.d.app.config.tiers.hopTimeoutMs)
    const out = this.checkAnswer(res, hop, q.requestId)
    if (out.status >= 400) q.state.reason = out.code
    q.state.resource ??= ownerResource(out.chain)
    return { status: out.status, contentType: out.contentType, body: out.body, chain: out.chain, code: out.code, passOn: out.passOn }
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
  private checkAnswer(res: HopResponse, hop: TopologyNode, rid: string): { status: number; contentType: string; body: string; chain: string[]; code?: ProblemCode; passOn: Array<[string, string]> } {
    const contentType = String(res.headers['content-type'] ?? '')
    if (!/^application\/(problem\+)?json\b/.test(contentType) || res.status < 200 || res.status > 599) {
      throw new Problem(502, 'HOP_BAD_RESPONSE', `node ${hop.id} answered HTTP ${res.status} (${contentType || 'no content type'})`, { hop: hop.id })
    }
    let code: ProblemCode | undefined
    if (res.status >= 400) {
      let given: string | undefined
      try {
        const c = (JSON.parse(res.body) as { code?: unknown }).code
        if (typeof c === 'string') given = c
      } catch {
        /* checked below */
      }
      if (given?.startsWith('NODE_') || given === 'TIERS_SNAPSHOT_NOT_YOURS') {
        throw new Problem(502, 'HOP_REFUSED', `node ${hop.id} refused this node's call (${given})`, { hop: hop.id })
      }
      // Another node's code, as one of ours (one this node does not know: HTTP_<status>).
      code = codeFrom(given, res.status)
    }
    const own = typeof res.headers['tongban-evidence'] === 'string' ? (res.headers['tongban-evidence'] as string) : undefined
    if (res.status < 400 && !own) {
      throw new Problem(502, 'HOP_BAD_RESPONSE', `node ${hop.id} answered without its evidence: nothing is released unaudited`, { hop: hop.id })
    }
    if (own) {
      let ok = false
      try {
        const e = decodeEvidence(own)
        ok = e.record.requestId === rid && e.record.responseDigest === digest(res.body, e.v)
      } catch {
        ok = false
      }
      if (!ok) throw new Problem(502, 'HOP_BAD_EVIDENCE', `the evidence of node ${hop.id} is not for this request and answer`, { hop: hop.id })
    }
    const chain = own ? [own, ...split(res.headers[EVIDENCE_CHAIN_HEADER])] : split(res.headers[EVIDENCE_CHAIN_HEADER])
    return { status: res.status, contentType, body: res.body, chain, code, passOn: this.noticeFrom(res, hop, rid) }
  }

  /**
   * The owner's notice, to pass on: only on an answer that released data, and only in the
   * shape the owner writes. Anything else is dropped: a garbled or injected value goes no
   * further. A well-formed one a hop invented cannot be told apart here (docs/disputes.md).
   */
  private noticeFrom(res: HopResponse, hop: TopologyNode, rid: string): Array<[string, string]> {
    const given = res.headers[DATA_NOTICE_HEADER]
    if (given === undefined) return []
    const notice = res.status < 400 ? wellFormedNotice(given) : null
    if (notice !== null) return [[DATA_NOTICE_HEADER, notice]]
    // Not the value itself: it is the next hop's text, of any length.
    this.d.app.log.warn({ hop: hop.id, requestId: rid, status: res.status, length: String(given).length }, 'a malformed Tongban-Data-Notice from the next hop was dropped')
    return []
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
      return await this.sealAndSend(request, reply, out.status, out.contentType, out.body, out.chain, out.passOn)
    } catch (e) {
      return this.refuse(request, reply, isProblem(e) ? e : this.unexpected(request, e), sealHere)
    }
  }

  /** A node-facing refusal: sealed as this hop's leg, unless the owner's own pipeline already sealed it. */
  refuse(request: FastifyRequest, reply: FastifyReply, p: Problem, sealHere = true): Promise<FastifyReply> | FastifyReply {
    request.audit.reason = p.code
    const body = JSON.stringify(problemBody(request, p))
    if (!sealHere) return reply.code(p.status).type('application/problem+json').send(body)
    return this.sealAndSend(request, reply, p.status, 'application/problem+json', body, [])
  }

  private unexpected(request: FastifyRequest, e: unknown): Problem {
    if ((e as { validation?: unknown }).validation) return new Problem(400, 'INPUT_INVALID', 'the request does not match the schema')
    request.log.error({ err: e }, 'relay failed')
    return new Problem(500, 'INTERNAL', 'an unexpected error occurred; it has been logged')
  }

  /** Seals this hop's own leg (a relay leg is audited like any answer) and sends, with the next hops' headers passed on. */
  async sealAndSend(request: FastifyRequest, reply: FastifyReply, status: number, contentType: string, body: string, chain: string[], passOn: ReadonlyArray<readonly [string, string]> = []): Promise<FastifyReply> {
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
          version: app.sealer.version,
        }),
      )
      reply.header('tongban-evidence', encodeEvidence(evidence))
      if (chain.length) reply.header(EVIDENCE_CHAIN_HEADER, chain.join(', '))
      for (const [name, value] of passOn) reply.header(name, value)
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

  /**
   * The owner's side: a query runs through this node's own pipeline for the remote consumer
   * (its sharing rules, its record and evidence); an application through its own route.
   */
  private async runLocally(request: FastifyRequest, reply: FastifyReply, t: Target, c: ConsumerClaims): Promise<FastifyReply> {
    if (t.kind !== 'applications') {
      request.sealedByEngine = true
      const q: Query = {
        requestId: request.id,
        principal: request.principal!,
        target: t,
        context: { purpose: c.purpose, caseId: c.case, operator: c.opr ?? null },
        body: request.body,
        bodyBytes: request.rawBody ?? Buffer.alloc(0),
        owner: true,
        state: request.audit,
      }
      let sealed
      try {
        sealed = await this.d.app.exchange.run(q)
      } catch (e) {
        return this.d.app.withholdAnswer(request, reply, e)
      }
      // Its notes too: the owner's notice on a corrected subject travels back to the consumer.
      return sendSealed(reply, sealed, this.d.app.answerNotes)
    }
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
    return t.kind === 'resources' ? own(ops, t.operation) : t.kind === 'verify' ? ops.verify : undefined
  }

  /** The subject's keyed hash in this hop's record too ("who looked up this person?" at every node). */
  private hashSubject(request: FastifyRequest, binding?: OperationBinding): void {
    const body = request.body as Record<string, unknown> | null
    const field = binding?.subjectField ?? (typeof body?.idNumber === 'string' ? 'idNumber' : undefined)
    const value = field ? own(body, field) : undefined
    if (typeof value === 'string') request.audit.subject = this.d.app.hashSubject(value)
  }
}
