// `npm run sandbox`: the sandbox payment provider as its own process.
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../config.js';
import { createSandboxApp } from './server.js';

const config = loadConfig();
const sandbox = createSandboxApp({
  dataDir: config.sandboxDataDir,
  settleMs: config.sandboxSettleMs,
  hangMs: config.sandboxHangMs,
  returnMs: config.sandboxReturnMs,
  latencyMs: config.sandboxLatencyMs,
  log: (line) => console.log(line),
});
const server = sandbox.app.listen(config.sandboxPort, config.sandboxHost, (error) => {
  if (error) throw error;
  // The port actually bound, so that SANDBOX_PORT=0 tells its caller where to go.
  const { port } = server.address() as AddressInfo;
  console.log(`sandbox provider listening on http://${config.sandboxHost}:${port}`);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => void shutDown());
}

async function shutDown(): Promise<void> {
  const stopped = new Promise((resolve) => server.close(resolve));
  // Answers held requests, so that the server's close is not kept waiting for them.
  await sandbox.close();
  await stopped;
  process.exit(0);
}
