// The auditor's side (issue 5; README.md, docs/audit.md): search, record + evidence, integrity,
// checkpoints and heads, anchors, subject access report, stats and export (routes/, one
// encapsulated plugin per resource; what they share is in routes/shared.ts), the stats
// rollup, the node certificate record. (The console moved to the workbench, src/workbench.) Every route needs
// the auditor role, and every call is itself sealed in the audit log — without the raw
// subject (routes/subject-input.ts).
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { RollupRunner } from './rollup.js'
import { recordNodeCertificate } from './node-certificate.js'
import records from './routes/records.js'
import integrity from './routes/integrity.js'
import subjects from './routes/subjects.js'
import stats from './routes/stats.js'
import exportRoute from './routes/export.js'
import { reportNames } from './routes/names.js'

export default fp(
  async function auditor(root: FastifyInstance) {
    // The stats rollup (rollup.ts): a timer on every replica, one at a time working
    // (advisory lock). Stats stay exact whether it is current or not.
    const rollup = new RollupRunner(root.db, root.log)
    root.decorate('auditRollup', rollup)
    root.addHook('onReady', async () => rollup.start())
    root.addHook('onClose', async () => rollup.stop())
    await root.register(async function auditorRoutes(app: FastifyInstance) {
      const names = reportNames(app)
      await app.register(records)
      await app.register(integrity)
      await app.register(subjects, { names })
      await app.register(stats, { names })
      await app.register(exportRoute, { names })
      app.addHook('onReady', () => recordNodeCertificate(app))
    })
  },
  { name: 'auditor', dependencies: ['audit', 'auth', 'catalog', 'policy', 'node-identity'] },
)
