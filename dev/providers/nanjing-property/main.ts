// Process entry of the simulated 南京市不动产登记中心.
// Env: PORT (default 7106), HOST (default 127.0.0.1), SIM_DELAY_MS (hold every answer),
// SIM_FAULT_HEADERS=1 (honour x-sim-delay-ms; test rigs only).
import { runSimulator } from '../simulator.js'
import { buildNanjingPropertyProvider } from './app.js'

await runSimulator(buildNanjingPropertyProvider, 7106, 'Nanjing property registry')
