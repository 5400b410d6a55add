// Process entry of the simulated 学历证书 verification service.
// Env: PORT (default 7104), HOST (default 127.0.0.1), SIM_DELAY_MS (hold every answer),
// SIM_FAULT_HEADERS=1 (honour x-sim-delay-ms; test rigs only).
import { runSimulator } from '../simulator.js'
import { buildDegreeProvider } from './app.js'

await runSimulator(buildDegreeProvider, 7104, 'degree provider')
