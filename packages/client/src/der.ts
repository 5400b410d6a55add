// A minimal DER reader: enough ASN.1 to walk a PKCS#12 file (RFC 7292). Definite lengths
// only (DER, as OpenSSL and the province CA write it); BER's indefinite length is refused
// by name.

export interface Der {
  /** The identifier octet (0x30 SEQUENCE, 0x04 OCTET STRING, 0xa0 [0], …). */
  tag: number
  /** The contents octets. */
  value: Buffer
  /** The whole element, tag and length included. */
  raw: Buffer
}

export const TAG = { INTEGER: 0x02, OCTET_STRING: 0x04, OID: 0x06, SEQUENCE: 0x30, SET: 0x31, CONTEXT_0: 0xa0, CONTEXT_0_PRIMITIVE: 0x80 } as const

export function readDer(buf: Buffer, at = 0): Der {
  if (at + 2 > buf.length) throw new Error('DER: truncated')
  const tag = buf[at]
  if ((tag & 0x1f) === 0x1f) throw new Error('DER: multi-byte tags are not used in PKCS#12')
  let len = buf[at + 1]
  let start = at + 2
  if (len === 0x80) throw new Error('DER: indefinite length (BER) is not supported: convert with `openssl pkcs12` first')
  if (len & 0x80) {
    const n = len & 0x7f
    if (n > 4 || start + n > buf.length) throw new Error('DER: bad length')
    len = 0
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]
    start += n
  }
  if (start + len > buf.length) throw new Error('DER: truncated')
  return { tag, value: buf.subarray(start, start + len), raw: buf.subarray(at, start + len) }
}

/** The elements inside a constructed element (SEQUENCE, SET, [n]). */
export function children(d: Der): Der[] {
  const out: Der[] = []
  for (let at = 0; at < d.value.length; ) {
    const c = readDer(d.value, at)
    out.push(c)
    at += c.raw.length
  }
  return out
}

export function expect(d: Der | undefined, tag: number, what: string): Der {
  if (!d || d.tag !== tag) throw new Error(`PKCS#12: ${what} expected`)
  return d
}

export function oid(d: Der): string {
  const v = expect(d, TAG.OID, 'an OID').value
  const parts = [Math.floor(v[0] / 40), v[0] % 40]
  let n = 0
  for (let i = 1; i < v.length; i++) {
    n = n * 128 + (v[i] & 0x7f)
    if (!(v[i] & 0x80)) {
      parts.push(n)
      n = 0
    }
  }
  return parts.join('.')
}

export function integer(d: Der): number {
  const v = expect(d, TAG.INTEGER, 'an INTEGER').value
  if (v.length > 6) throw new Error('PKCS#12: integer too large')
  return v.reduce((n, b) => n * 256 + b, 0)
}

/** An OCTET STRING's bytes; a constructed one (BER-style, still definite) is joined. */
export function octets(d: Der): Buffer {
  if (d.tag === TAG.OCTET_STRING || d.tag === TAG.CONTEXT_0_PRIMITIVE) return d.value
  if (d.tag === 0x24 || d.tag === TAG.CONTEXT_0) return Buffer.concat(children(d).map(octets))
  throw new Error('PKCS#12: an OCTET STRING expected')
}
