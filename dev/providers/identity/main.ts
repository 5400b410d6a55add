// Process entry of the simulated identity service.
// Env: PORT (default 7101), HOST (default 127.0.0.1), SIM_DELAY_MS (hold every answer),
// SIM_FAULT_HEADERS=1 (honour x-sim-delay-ms; test rigs only).
import { runSimulator } from '../simulator.js'
import { buildIdentityProvider } from './app.js'

await runSimulator(buildIdentityProvider, 7101, 'identity provider')
