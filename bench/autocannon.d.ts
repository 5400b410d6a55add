// autocannon ships no types; the benchmark reads its result object field by field.
declare module 'autocannon' {
  const autocannon: (opts: Record<string, unknown>) => any
  export default autocannon
}
