// RFC 8785 JSON Canonicalization Scheme, what every hash and signature of the evidence
// covers. JSON.stringify already writes strings and numbers as RFC 8785 wants them
// (ECMAScript serialisation); the scheme adds object members sorted by UTF-16 code units,
// which is what Array.prototype.sort does with no comparator.

/** The canonical JSON text of a value; throws on what JSON cannot represent. */
export function jcs(value: unknown): string {
  const out = write(value)
  if (out === undefined) throw new Error('jcs: value has no JSON representation')
  return out
}

function write(v: unknown): string | undefined {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v)
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error('jcs: a number that is not finite')
    return JSON.stringify(v)
  }
  if (typeof v === 'object') {
    const json = (v as { toJSON?: () => unknown }).toJSON
    if (typeof json === 'function') return write(json.call(v))
    if (Array.isArray(v)) return `[${v.map((x) => write(x) ?? 'null').join(',')}]`
    const members: string[] = []
    for (const k of Object.keys(v).sort()) {
      const s = write((v as Record<string, unknown>)[k])
      if (s !== undefined) members.push(`${JSON.stringify(k)}:${s}`)
    }
    return `{${members.join(',')}}`
  }
  return undefined // undefined, functions, symbols: left out, as JSON.stringify does
}
