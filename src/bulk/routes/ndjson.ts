// NDJSON uploads: read as a stream, line by line, with the size and count enforced while
// reading (Fastify's bodyLimit does not apply to stream parsers). The exact bytes are kept
// for the submission's audit record.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { IncomingMessage } from 'node:http'
import { StringDecoder } from 'node:string_decoder'
import { Problem } from '../../problems/problem.js'
import { NDJSON } from './shared.js'

export function addNdjsonParser(app: FastifyInstance) {
  const { config } = app
  const maxItems = config.batch.maxItems
  app.addContentTypeParser(NDJSON, async (request: FastifyRequest, payload: IncomingMessage) => {
    const limit = request.routeOptions.bodyLimit ?? config.batch.maxBytes
    const declared = Number(request.headers['content-length'])
    if (Number.isFinite(declared) && declared > limit) throw new Problem(413, 'INPUT_TOO_LARGE', `the upload is larger than ${limit} bytes`)
    const decoder = new StringDecoder('utf8')
    const chunks: Buffer[] = []
    const items: unknown[] = []
    let size = 0
    let line = 0
    let tail = ''
    const take = (text: string) => {
      line++
      const s = text.trim()
      if (!s) return
      if (items.length >= maxItems) throw new Problem(413, 'BATCH_TOO_MANY_ITEMS', `a batch holds at most ${maxItems} items`)
      try {
        items.push(JSON.parse(s))
      } catch {
        throw new Problem(400, 'INPUT_MALFORMED_NDJSON', `line ${line} is not valid JSON`)
      }
    }
    for await (const chunk of payload as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > limit) throw new Problem(413, 'INPUT_TOO_LARGE', `the upload is larger than ${limit} bytes`)
      chunks.push(chunk)
      const parts = (tail + decoder.write(chunk)).split('\n')
      tail = parts.pop()!
      for (const p of parts) take(p)
    }
    tail += decoder.end()
    take(tail)
    request.rawBody = Buffer.concat(chunks)
    return { items }
  })
}
