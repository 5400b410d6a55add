// GET /v1/problems/codes: every problem code with its Chinese and English words and what to
// do, so a screen shows a refusal as words, not as a code. Public (a code means nothing
// secret) and cacheable: it changes only with a new release of the gateway.
import type { FastifyInstance } from 'fastify'
import { PROBLEM_CODES, STATUS_FALLBACK } from './codes.js'

const entry = {
  type: 'object',
  properties: {
    code: { type: 'string' },
    status: { type: 'array', items: { type: 'integer' } },
    zh: { type: 'string', description: '中文说明' },
    en: { type: 'string' },
    action: { type: 'string', description: 'what the caller (or its operator) should do' },
  },
}

// Built once: the list is part of the release.
const body = {
  codes: Object.entries(PROBLEM_CODES).map(([code, c]) => ({ code, status: [...c.status], zh: c.zh, en: c.en, action: c.action })),
  fallback: { code: STATUS_FALLBACK.code, status: [], zh: STATUS_FALLBACK.zh, en: STATUS_FALLBACK.en, action: STATUS_FALLBACK.action },
}

export default async function problemCodes(app: FastifyInstance) {
  app.get('/v1/problems/codes', {
    schema: {
      tags: ['ops'],
      summary: 'Every problem code with its zh/en title and action (public, cacheable)',
      description: '`fallback` describes `HTTP_<status>`, the code of an answer that came without one of its own.',
      response: { 200: { type: 'object', properties: { codes: { type: 'array', items: entry }, fallback: entry } } },
    },
  }, async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=3600')
    return body
  })
}
