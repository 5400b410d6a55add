// Where a command writes: standard output and error, or (in tests) anything that collects
// the lines. Each call is one line.
export interface Io {
  out(text: string): void
  err(text: string): void
}

export const stdio: Io = {
  out: (text) => process.stdout.write(text + '\n'),
  err: (text) => process.stderr.write(text + '\n'),
}
