// `npm run sandbox`: the sandbox payment provider as its own process.
import { loadConfig } from '../../config.js';
import { createSandboxApp } from './server.js';

const { sandboxPort, sandboxHost } = loadConfig();
const server = createSandboxApp().listen(sandboxPort, sandboxHost, () => {
  console.log(`sandbox provider listening on http://${sandboxHost}:${sandboxPort}`);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => server.close(() => process.exit(0)));
}
