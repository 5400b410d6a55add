// What a submission names (a verification service, or a resource and operation) resolved
// to this node's resource, or, in a tier tree, to a target the relay forwards.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Problem } from '../../problems/problem.js'
import type { CatalogResource } from '../../catalog/repository.js'
import type { Relay } from '../../tiers/relay.js'
import { own as ownValue } from '../../catalog/own.js'
import { me, type BatchRouteDeps } from './shared.js'

export type Resolved =
  | { resource: CatalogResource; code: string; operation: string; service: string | null; remote?: undefined }
  | { resource?: undefined; code: string; operation: string; service: string | null; remote: { hop: string; owner: string | null } }

export type Named = { service?: string; resource?: string; operation?: string }

const SERVICE = /^[a-z][a-z0-9-]{0,31}$/
const CODE = /^[0-9]{6}\/[0-9]{5}$/

// Not here: relayed when the relay has a next hop for it (the owner is below, or the code
// may be held above); the owner decides every item as it would a single query.
function remoteTarget(deps: BatchRouteDeps, request: FastifyRequest, t: Parameters<Relay['decide']>[0]) {
  if (!deps.relay) return null
  const d = deps.relay.decide(t, me(request).region, 'origin')
  return d.kind === 'hop' ? { hop: d.hop.id, owner: d.entry?.node ?? null, code: d.entry?.code } : null
}

function byService(app: FastifyInstance, deps: BatchRouteDeps, request: FastifyRequest, service: string): Resolved {
  const resource = app.catalog.forVerifyService(service, me(request).region)
  if (resource) return { resource, code: resource.code, operation: 'verify', service }
  const r = SERVICE.test(service) ? remoteTarget(deps, request, { kind: 'verify', service }) : null
  if (!r) throw new Problem(404, 'SERVICE_UNKNOWN', `no verification service ${service.slice(0, 64)} for this region`)
  // The owner's code when it published below this node; else the target (owner above).
  return { code: r.code ?? `verify/${service}`, operation: 'verify', service, remote: { hop: r.hop, owner: r.owner } }
}

export function resolveTarget(app: FastifyInstance, deps: BatchRouteDeps, request: FastifyRequest, d: Named): Resolved {
  if (d.service) {
    if (d.resource) throw new Problem(400, 'INPUT_INVALID', 'give either service or resource, not both')
    return byService(app, deps, request, d.service)
  }
  if (!d.resource || !d.operation) throw new Problem(400, 'INPUT_INVALID', 'give service, or resource and operation')
  const resource = app.catalog.get(d.resource)
  if (!resource) {
    const r = CODE.test(d.resource) && SERVICE.test(d.operation)
      ? remoteTarget(deps, request, { kind: 'resources', code: d.resource, operation: d.operation })
      : null
    if (!r) throw new Problem(404, 'RESOURCE_NOT_FOUND', 'no such resource in the catalogue')
    return { code: d.resource, operation: d.operation, service: null, remote: { hop: r.hop, owner: r.owner } }
  }
  if (!resource.service || !ownValue(resource.service.operations, d.operation)) throw new Problem(404, 'RESOURCE_OPERATION_UNKNOWN', `resource ${resource.code} has no operation ${d.operation.slice(0, 64)}`)
  return { resource, code: resource.code, operation: d.operation, service: resource.service.verifyService ?? null }
}
