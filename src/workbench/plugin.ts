// The workbench (工作台, issue 15): the people's UI, a Vue 3 + Element Plus single-page app
// built by Vite from web/workbench/ into dist/workbench/ (scripts/build-workbench.mjs; npm
// start and npm test build it when the sources are newer). Served at /workbench: hashed
// assets with a year's cache, every other path under /workbench answers index.html (client
// routes). The words of
// every problem code come from GET /v1/problems/codes (src/problems/codes-route.ts).
import type { FastifyInstance, FastifyReply } from 'fastify'
import fastifyStatic from '@fastify/static'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Problem } from '../problems/problem.js'

// Content-Security-Policy, nosniff, no-referrer: src/ops/security-headers.ts, one policy for
// the whole node (the workbench's inline styles included).

/** The client routes of web/workbench/src/App.vue. */
export const SCREENS = ['catalogue', 'applications', 'notifications', 'audit', 'overview', 'disputes'] as const

export default async function workbench(app: FastifyInstance): Promise<void> {
  const root = join(app.config.root, 'dist/workbench')
  const indexFile = join(root, 'index.html')

  await app.register(fastifyStatic, {
    root: join(root, 'assets'),
    prefix: '/workbench/assets/',
    decorateReply: false,
    schemaHide: true,
    // File names carry their content hash: never changes, cache for a year.
    maxAge: '365d',
    immutable: true,
  })

  // index.html is read once (it names the hashed assets); no-cache so a new build is picked up.
  let index: string | null = null
  const page = async (_request: unknown, reply: FastifyReply) => {
    if (index === null) {
      if (!existsSync(indexFile)) throw new Problem(503, 'WORKBENCH_NOT_BUILT', 'the workbench is not built: run node scripts/build-workbench.mjs (npm start and npm test do it)')
      index = readFileSync(indexFile, 'utf8')
    }
    reply.header('cache-control', 'no-cache')
    return reply.type('text/html; charset=utf-8').send(index)
  }
  app.get('/workbench', { schema: { hide: true } }, page)
  app.get('/workbench/', { schema: { hide: true } }, page)
  // Client routes (/workbench/catalogue/101001/00001 …); /workbench/auth/* is the sign-in's.
  for (const screen of SCREENS) {
    app.get(`/workbench/${screen}`, { schema: { hide: true } }, page)
    app.get(`/workbench/${screen}/*`, { schema: { hide: true } }, page)
  }
}
