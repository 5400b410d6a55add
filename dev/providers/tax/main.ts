// Process entry of the simulated 税务 service.
// Env: PORT (default 7103), HOST (default 127.0.0.1), SIM_DELAY_MS (hold every answer),
// SIM_FAULT_HEADERS=1 (honour x-sim-delay-ms; test rigs only).
import { runSimulator } from '../simulator.js'
import { buildTaxProvider } from './app.js'

await runSimulator(buildTaxProvider, 7103, 'tax provider')
