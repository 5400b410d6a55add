// Node-facing relay routes: they answer on the node listener only (peerNodeOf, in relay.ts,
// refuses the rest). Each checks its target's shape before the relay looks it up.
import type { FastifyInstance } from 'fastify'
import { Problem } from '../../problems/problem.js'
import type { Target } from '../relay.js'
import type { TierLink } from '../node-channel.js'

const RESOURCE_CODE = /^[0-9]{6}\/[0-9]{5}$/
const NAME = /^[a-z][a-z0-9-]{0,31}$/

export function registerRelayRoutes(app: FastifyInstance, { relay }: TierLink): void {
  const nodeRoute = { schema: { hide: true }, bodyLimit: app.config.http.bodyLimit, config: { sealsItself: true } }
  type ResourceParams = { code: string; operation: string }
  app.post<{ Params: ResourceParams }>('/v1/tiers/relay/resources/:code/:operation', nodeRoute, (request, reply) =>
    relay.handle(request, reply, () => {
      const { code, operation } = request.params
      if (!RESOURCE_CODE.test(code) || !NAME.test(operation)) throw new Problem(404, 'RESOURCE_NOT_FOUND', 'no such resource')
      return { kind: 'resources', code, operation }
    }))
  app.post<{ Params: { service: string } }>('/v1/tiers/relay/verify/:service', nodeRoute, (request, reply) =>
    relay.handle(request, reply, () => {
      if (!NAME.test(request.params.service)) throw new Problem(404, 'SERVICE_UNKNOWN', 'no such verification service')
      return { kind: 'verify', service: request.params.service }
    }))
  app.post('/v1/tiers/relay/applications', nodeRoute, (request, reply) =>
    relay.handle(request, reply, (): Target => {
      const code = (request.body as { resource?: unknown } | null)?.resource
      if (typeof code !== 'string' || !RESOURCE_CODE.test(code)) throw new Problem(400, 'INPUT_INVALID', 'resource must be a resource code')
      return { kind: 'applications', code }
    }))
}
