// A streamed answer (bulk results download) is audited over the bytes actually sent: they
// are hashed as they pass, and the record is sealed when the source ends. The last chunk is
// held back until the record is durable, so the answer is only ever complete once it is
// audited; if the record cannot be made durable the stream fails and the client sees a cut
// download, never a whole unaudited one. A stream cut early (source error, client gone) is
// recorded as interrupted, over the bytes released until then.
import { createHash } from 'node:crypto'
import { pipeline, Transform, type Readable } from 'node:stream'
import { hashOfVersion, type EvidenceVersion } from '../evidence/evidence.js'

export interface StreamSeal {
  /** Seals the record of the complete answer; the stream ends once this resolves. */
  complete(digest: string): Promise<unknown>
  /** Records an answer cut short (error given when the source failed). */
  interrupted(digest: string, err: Error | null): void
}

export function sealedStream(source: Readable, version: EvidenceVersion, s: StreamSeal): Readable {
  const alg = hashOfVersion(version)
  const hash = createHash(alg)
  let held: Buffer | null = null
  let settled = false
  const release = (t: Transform, b: Buffer) => {
    hash.update(b)
    t.push(b)
  }
  const out = new Transform({
    transform(chunk: Buffer | string, _enc, cb) {
      if (held) release(this, held)
      held = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)
      cb()
    },
    flush(cb) {
      settled = true
      if (held) hash.update(held)
      s.complete(`${alg}:${hash.digest('hex')}`).then(
        () => {
          if (held) this.push(held)
          cb()
        },
        (e: Error) => cb(e),
      )
    },
    destroy(err, cb) {
      if (!settled) {
        settled = true
        s.interrupted(`${alg}:${hash.digest('hex')}`, err)
      }
      cb(err)
    },
  })
  pipeline(source, out, () => {})
  return out
}
