import { createSandboxApp } from './server.js';

const port = Number(process.env.SANDBOX_PORT ?? 3100);
const server = createSandboxApp().listen(port, '127.0.0.1', () => {
  console.log(`sandbox provider listening on http://127.0.0.1:${port}`);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => server.close(() => process.exit(0)));
}
