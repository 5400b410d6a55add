// `tongban <command>`: the operator's and integrator's command line.
import { run as pki } from './pki.js'
import { run as catalog } from './catalog.js'
import { run as evidence } from './evidence.js'
import { run as token } from './token.js'
import { run as prepare } from './prepare-command.js'

const COMMANDS: Record<string, [(args: string[]) => Promise<number>, string]> = {
  prepare: [prepare, 'make this node ready: dev PKI, audit key, database, systems, catalogue'],
  pki: [pki, 'dev PKI: init | issue | request | revoke'],
  systems: [async (a) => (await import('./systems.js')).run(a), 'departmental systems at a running node: register | renew | revoke | list'],
  catalog: [catalog, 'catalogue files: validate | import | list'],
  token: [token, 'get an access token for a departmental system'],
  evidence: [evidence, 'verify a response and its Tongban-Evidence offline'],
  audit: [async (a) => (await import('./audit.js')).run(a), 'audit log: export | verify | integrity | anchor | retention'],
  node: [async (a) => (await import('./node.js')).run(a), 'a running node: status (readiness, identity, certificate, queues)'],
  batch: [async (a) => (await import('./batch.js')).run(a), 'bulk verification: submit | status | results | cancel'],
}

const HELP = `Usage: tongban <command> [options]

Commands:
${Object.entries(COMMANDS).map(([name, [, about]]) => `  ${name.padEnd(10)}${about}`).join('\n')}

Run \`tongban <command> --help\` for a command's options.
Exit codes: 0 ok, 1 failure, 2 usage error.`

const [name, ...args] = process.argv.slice(2)
if (!name || name === '--help' || name === '-h' || name === 'help') {
  console.log(HELP)
  process.exit(name ? 0 : 2)
}
const command = COMMANDS[name]
if (!command) {
  console.error(`tongban: unknown command ${name}\n\n${HELP}`)
  process.exit(2)
}
process.exitCode = await command[0](args)
