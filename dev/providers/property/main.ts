// Process entry of the simulated 自然资源 real-estate registry service.
// Env: PORT (default 7102), HOST (default 127.0.0.1), SIM_DELAY_MS (hold every answer),
// SIM_FAULT_HEADERS=1 (honour x-sim-delay-ms; test rigs only).
import { runSimulator } from '../simulator.js'
import { buildPropertyProvider } from './app.js'

await runSimulator(buildPropertyProvider, 7102, 'real-estate registry')
