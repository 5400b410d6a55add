// The import rules of the house (docs/architecture.md): which folder never imports which.
// Checked in CI by `npm run check:imports` (dependency-cruiser), a test of its own
// (test/architecture/imports.test.ts). A rule names what a folder is for; a violation is a
// step reaching back into an earlier one, or a base layer reaching up.
const S = '^src/'
/** Everything under src/ except the folders named. */
const srcExcept = (...folders) => `^src/(?!(${folders.join('|')})/)[^/]+/`

module.exports = {
  forbidden: [
    {
      name: 'no-dev-in-product',
      comment: 'dev/ (dev PKI, demo tree, synthetic data, simulators) is never part of the gateway; only the CLI’s development commands use it',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^dev/' },
    },
    {
      name: 'gb-is-a-leaf',
      comment: 'the national standards (GB 11643, GB 32100, GB/T 2260) depend on nothing of the gateway',
      severity: 'error',
      from: { path: '^src/gb/' },
      to: { path: srcExcept('gb') },
    },
    {
      name: 'evidence-is-the-wire-format',
      comment: 'the evidence format is shared by the gateway, the SDK, tiers and bulk: it may use the signature suites, nothing else',
      severity: 'error',
      from: { path: '^src/evidence/' },
      to: { path: srcExcept('evidence', 'pki') },
    },
    {
      name: 'sdk-stands-alone',
      comment: 'the SDK (packages/client) is its own package handed to departments: Node built-ins and its own files, nothing of the gateway, no dependency',
      severity: 'error',
      from: { path: '^packages/client/' },
      to: { pathNot: '^packages/client/', dependencyTypesNot: ['core'] },
    },
    {
      name: 'gateway-does-not-use-the-sdk',
      comment: 'the gateway never runs the client SDK; only the CLI (a client of a node) uses it',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^packages/client/' },
    },
    {
      name: 'validation-is-low',
      comment: 'schema formats and keywords build on the standards only',
      severity: 'error',
      from: { path: '^src/validation/' },
      to: { path: srcExcept('validation', 'gb') },
    },
    {
      name: 'problems-are-low',
      comment: 'the Problem type and its codes are used everywhere, so they use almost nothing',
      severity: 'error',
      from: { path: '^src/problems/' },
      to: { path: srcExcept('problems', 'gb', 'validation') },
    },
    {
      name: 'config-is-low',
      comment: 'configuration is read before any step exists: it never imports a step',
      severity: 'error',
      from: { path: '^src/config/' },
      to: { path: srcExcept('config', 'gb', 'validation') },
    },
    {
      name: 'catalog-before-the-pipeline',
      comment: 'the catalogue is data the pipeline reads: it never imports a pipeline step',
      severity: 'error',
      from: { path: '^src/catalog/' },
      to: { path: '^src/(exchange|policy|tiers|bulk|auditor|audit)/' },
    },
    {
      name: 'audit-write-path-alone',
      comment: 'the write path (record, seal, store) knows nothing of the read side or of the steps that feed it',
      severity: 'error',
      from: { path: '^src/audit/' },
      to: { path: '^src/(auditor|exchange|policy|tiers|bulk|catalog)/' },
    },
    {
      name: 'auditor-reads-only',
      comment: 'the auditor side reads the log: it never imports the query pipeline',
      severity: 'error',
      from: { path: '^src/auditor/' },
      to: { path: '^src/(exchange|policy|tiers|bulk)/' },
    },
    {
      name: 'policy-before-routing-results',
      comment: 'the authorize step never imports the query engine or bulk (the engine calls policy, not the reverse)',
      severity: 'error',
      from: { path: '^src/policy/' },
      to: { path: '^src/(exchange|bulk|auditor)/' },
    },
    {
      name: 'exchange-asks-the-router',
      comment: 'the engine asks the tier router through its TierRouter contract (app.tiers.router), it never imports tiers',
      severity: 'error',
      from: { path: '^src/exchange/' },
      to: { path: '^src/(tiers|bulk|auditor)/' },
    },
    {
      name: 'tiers-not-policy',
      comment: 'tiers carries queries and messages; the application workflow lives in policy and uses tiers, not the reverse',
      severity: 'error',
      from: { path: '^src/tiers/' },
      to: { path: '^src/(policy|bulk|auditor)/' },
    },
    {
      name: 'bulk-is-a-top',
      comment: 'bulk verification is composed in app.ts and the CLI only',
      severity: 'error',
      from: { path: S, pathNot: '^src/(bulk|cli)/|^src/app\\.ts$' },
      to: { path: '^src/bulk/' },
    },
    {
      name: 'no-cli-in-product',
      comment: 'the command line uses the gateway, never the other way round',
      severity: 'error',
      from: { path: S, pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.json'] },
  },
}
