// Conditional sharing routes: consumers apply, providers decide, grants are listed and
// revoked. Every call is audited (the sealed log records who did what to which resource).
// One encapsulated plugin per resource (routes/); what they share is in routes/shared.ts.
import type { FastifyInstance } from 'fastify'
import applications from './routes/applications.js'
import decisions from './routes/decisions.js'
import grants from './routes/grants.js'
import overview from './routes/overview.js'
import type { PolicyRouteDeps } from './routes/shared.js'

export { checkPeriod, type ApplicationOutbox, type PolicyRouteDeps } from './routes/shared.js'

export async function policyRoutes(app: FastifyInstance, deps: PolicyRouteDeps) {
  // Here, so that every route's request has it (the tiers hook sets it on POST /v1/applications).
  app.decorateRequest('remoteApplication', null)
  await app.register(applications, deps)
  await app.register(decisions, deps)
  await app.register(grants, deps)
  await app.register(overview, deps)
}
