// Every error leaves as RFC 9457 problem+json with a stable code and the request id:
// our own Problems as they are, Fastify's parser and validation errors mapped to input codes,
// and anything unexpected as a logged 500 that reveals nothing.
import fp from 'fastify-plugin'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { Problem } from './problem.js'
import { problemSchema } from './schema.js'
import { validationProblem } from './validation.js'
import problemCodes from './codes-route.js'

const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  406: 'Not Acceptable', 409: 'Conflict', 410: 'Gone', 413: 'Content Too Large', 415: 'Unsupported Media Type',
  429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable',
  504: 'Gateway Timeout',
}

/** The problem+json body; only the request id is read from the request. */
export function problemBody(request: { id: string }, p: Problem) {
  return {
    type: `urn:tongban:problem:${p.code}`,
    title: TITLES[p.status] ?? 'Error',
    status: p.status,
    code: p.code,
    ...(p.detail ? { detail: p.detail } : {}),
    requestId: request.id,
    ...p.extra,
  }
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, p: Problem) {
  if (request.audit) request.audit.reason = p.code
  const body = problemBody(request, p)
  if (p.status === 401) reply.header('www-authenticate', 'Bearer')
  return reply.code(p.status).type('application/problem+json').send(JSON.stringify(body))
}

function fromFastify(request: FastifyRequest, e: FastifyError): Problem {
  if (e.validation) return validationProblem(request.body, e.validation, e.validationContext ?? 'body')
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new Problem(413, 'INPUT_TOO_LARGE', 'request body is too large')
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new Problem(415, 'INPUT_UNSUPPORTED_MEDIA_TYPE', 'send application/json')
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new Problem(400, 'INPUT_EMPTY_BODY', 'request body is empty')
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new Problem(400, 'INPUT_INVALID', 'content-length does not match the body')
  }
  if (e instanceof SyntaxError || e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || /JSON/.test(e.message)) {
    return new Problem(400, 'INPUT_MALFORMED_JSON', 'request body is not valid JSON')
  }
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return new Problem(e.statusCode, 'INPUT_INVALID', 'the request is not acceptable')
  }
  return new Problem(500, 'INTERNAL', 'an unexpected error occurred; it has been logged')
}

export default fp(
  async function problems(app) {
    app.addSchema(problemSchema)
    app.setErrorHandler((error: FastifyError, request, reply) => {
      const p = error instanceof Problem ? error : fromFastify(request, error)
      // A Problem is a known failure with its code (a store or upstream away): one lean line;
      // its stack says nothing. Anything unexpected is logged with its stack.
      if (p.status >= 500) request.log.error(error instanceof Problem ? { code: p.code, detail: p.detail } : { err: error, code: p.code }, 'request failed')
      else request.log.info({ code: p.code }, 'request refused')
      return sendProblem(request, reply, p)
    })
    app.setNotFoundHandler((request, reply) =>
      sendProblem(request, reply, new Problem(404, 'NOT_FOUND', 'no such route')),
    )
    await app.register(problemCodes)
  },
  { name: 'problems' },
)
