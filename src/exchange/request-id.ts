// Request ids: monotonic ULIDs (26 Crockford base32 characters: 48-bit time, 80 random
// bits, incremented within one millisecond), as the `ulid` package's monotonicFactory makes
// them, but without its crypto call per character: randomness comes from a pooled buffer
// refilled 4 KiB at a time, which took a few per cent of the gateway's CPU (bench/).
import { randomBytes, randomFillSync } from 'node:crypto'

const ENCODING = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
const pool = Buffer.allocUnsafe(4096)
let at = pool.length
const random = new Uint8Array(16)
let lastTime = -1
let timePart = ''

function fillRandom(): void {
  if (at + 16 > pool.length) {
    randomFillSync(pool)
    at = 0
  }
  // 256 is a multiple of 32: every base32 digit is equally likely.
  for (let i = 0; i < 16; i++) random[i] = pool[at + i] & 31
  at += 16
}

function encodeTime(ms: number): string {
  let s = ''
  for (let i = 0; i < 10; i++) {
    s = ENCODING[ms % 32] + s
    ms = Math.floor(ms / 32)
  }
  return s
}

/** A new ULID, greater than every one this process made before. */
export function ulid(): string {
  const now = Date.now()
  if (now > lastTime) {
    lastTime = now
    timePart = encodeTime(now)
    fillRandom()
  } else {
    // Same millisecond (or the clock stepped back): the random part counts up.
    let i = 15
    while (i >= 0 && random[i] === 31) random[i--] = 0
    if (i < 0) {
      // 2^80 ids in one millisecond cannot happen; move to the next millisecond anyway.
      lastTime++
      timePart = encodeTime(lastTime)
      fillRandom()
    } else {
      random[i]++
    }
  }
  let s = timePart
  for (let i = 0; i < 16; i++) s += ENCODING[random[i]]
  return s
}

/** A client's own request id, when well-formed: kept as `clientRequestId`, never as the request id. */
export const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{8,64}$/

/**
 * Marks this process's in-process calls of its own routes (the relay owner, application
 * messages): they carry the request id of the query they serve. Never leaves the process.
 */
export const INTERNAL_HEADER = 'tongban-internal-relay'
export const INTERNAL_SECRET = randomBytes(32).toString('hex')
