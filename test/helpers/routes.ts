// The routes of the running app, as its own onRoute hook saw them: subscribe before the app
// is built (fastify.initialization is published for every new instance).
import { subscribe } from 'node:diagnostics_channel'
import type { FastifyInstance, RouteOptions } from 'fastify'

const routesOf = new Map<FastifyInstance, RouteOptions[]>()
subscribe('fastify.initialization', (m) => {
  const app = (m as { fastify: FastifyInstance }).fastify
  const list: RouteOptions[] = []
  routesOf.set(app, list)
  app.addHook('onRoute', (r) => void list.push(r))
})

/** Every method + url of an app built after this module was imported (HEAD, OPTIONS left out). */
export function appRoutes(app: FastifyInstance): { method: string; url: string; route: RouteOptions }[] {
  const out: { method: string; url: string; route: RouteOptions }[] = []
  const seen = new Set<string>()
  for (const route of routesOf.get(app) ?? []) {
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) {
      if (method === 'HEAD' || method === 'OPTIONS' || seen.has(`${method} ${route.url}`)) continue
      seen.add(`${method} ${route.url}`)
      out.push({ method, url: route.url, route })
    }
  }
  return out
}

/** Tokens of the sample systems, one per role. */
export async function roleTokens(token: (clientId: string) => Promise<string>) {
  return {
    consumer: await token('jn-civil-affairs'),
    provider: await token('js-public-security'),
    admin: await token('js-catalog-admin'),
    auditor: await token('js-audit'),
    operator: await token('js-operator'),
  }
}

/** The token of the principal a route is meant for, so that a request gets past the role check. */
export function tokenFor(tokens: Awaited<ReturnType<typeof roleTokens>>, method: string, url: string): string {
  if (url.startsWith('/v1/audit')) return tokens.auditor
  if (url.startsWith('/v1/systems')) return tokens.operator
  if (url.startsWith('/v1/catalog') && method !== 'GET') return tokens.admin
  if (url.endsWith('/decision') || url.endsWith('/resolution')) return tokens.provider
  return tokens.consumer
}
