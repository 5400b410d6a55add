// Process entry of the simulated licence library (电子证照库).
// Env: PORT (default 7107), HOST (default 127.0.0.1), TONGBAN_PKI_DIR (the seals: certs),
// SIM_DELAY_MS (hold every answer), SIM_FAULT_HEADERS=1 (honour x-sim-delay-ms; test rigs only).
import path from 'node:path'
import { runSimulator } from '../simulator.js'
import { buildLicenceLibrary, devLicenceLibrary } from './app.js'

const library = await devLicenceLibrary(path.resolve(process.env.TONGBAN_PKI_DIR || path.join(import.meta.dirname, '../../../certs')))
await runSimulator((o) => buildLicenceLibrary({ ...o, library }), 7107, 'licence library')
