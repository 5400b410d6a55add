import canonicalize from 'canonicalize'

// canonicalize types a CommonJS `module.exports = fn` as `export default`; under NodeNext the
// default import is that function at run time, but TypeScript sees the module namespace.
const serialize = canonicalize as unknown as (input: unknown) => string | undefined

/** RFC 8785 canonical JSON (what every hash and signature in the audit log covers). */
export function jcs(value: unknown): string {
  const out = serialize(value)
  if (out === undefined) throw new Error('jcs: value has no JSON representation')
  return out
}
