// Client-chosen names (an operation in the URL, a catalogue entry's upstream, a header)
// index plain objects parsed from JSON: only own properties count, so `constructor` or
// `__proto__` is an unknown name, not something of Object.prototype's.
export const own = <T>(o: Readonly<Record<string, T>> | null | undefined, name: string): T | undefined =>
  o != null && Object.hasOwn(o, name) ? o[name] : undefined
