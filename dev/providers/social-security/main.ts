// Process entry of the simulated 人社 social insurance service.
// Env: PORT (default 7105), HOST (default 127.0.0.1), SIM_DELAY_MS (hold every answer),
// SIM_FAULT_HEADERS=1 (honour x-sim-delay-ms; test rigs only).
import { runSimulator } from '../simulator.js'
import { buildSocialSecurityProvider } from './app.js'

await runSimulator(buildSocialSecurityProvider, 7105, 'social security provider')
