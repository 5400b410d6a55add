// Preloaded into a gateway process by the fault tests (node --expose-gc --import …): on
// SIGUSR2 it collects garbage and prints one line
//   PROBE {"heapUsedMiB":…,"rssMiB":…,"handles":…,"sockets":…,"resources":{…}}
// to stderr, so a test can watch heap and handle counts of a real process over a run.
const gc = (globalThis as { gc?: () => void }).gc

process.on('SIGUSR2', () => {
  gc?.()
  gc?.()
  const resources: Record<string, number> = {}
  for (const r of (process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo()) {
    resources[r] = (resources[r] ?? 0) + 1
  }
  const handles = (process as unknown as { _getActiveHandles(): object[] })._getActiveHandles()
  const m = process.memoryUsage()
  const line = {
    heapUsedMiB: +(m.heapUsed / 2 ** 20).toFixed(2),
    rssMiB: +(m.rss / 2 ** 20).toFixed(1),
    handles: handles.length,
    sockets: handles.filter((h) => h.constructor?.name === 'Socket').length,
    resources,
  }
  process.stderr.write(`PROBE ${JSON.stringify(line)}\n`)
})
