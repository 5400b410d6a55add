// The auditor console (issue 5, item 8): a static page at /console/audit (plain ES modules,
// no build step) that calls the JSON APIs with the auditor's bearer token. uPlot is served
// from node_modules: no CDN, the gateway may have no internet. The page holds no data and
// no credentials of its own; the token stays in the tab's sessionStorage.
import type { FastifyInstance } from 'fastify'
import fastifyStatic from '@fastify/static'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

export async function registerConsole(app: FastifyInstance): Promise<void> {
  const root = join(app.config.root, 'src/console/static')
  const uplot = join(dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist')
  const setHeaders = (res: { setHeader(name: string, value: string): void }) => {
    res.setHeader('content-security-policy', CSP)
    res.setHeader('x-content-type-options', 'nosniff')
    res.setHeader('referrer-policy', 'no-referrer')
    res.setHeader('cache-control', 'no-cache')
  }
  await app.register(fastifyStatic, { root, prefix: '/console/audit/', decorateReply: false, index: ['index.html'], setHeaders, schemaHide: true })
  await app.register(fastifyStatic, {
    root: uplot,
    prefix: '/console/vendor/uplot/',
    decorateReply: false,
    allowedPath: (path) => ['/uPlot.esm.js', '/uPlot.min.css'].includes(path),
    setHeaders,
    schemaHide: true,
  })
  app.get('/console/audit', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/console/audit/', 302))
  app.get('/console', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/console/audit/', 302))
}
