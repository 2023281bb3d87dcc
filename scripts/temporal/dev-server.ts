import { spawn } from 'node:child_process';
import { createConnection } from 'node:net';

export interface DevServer {
  address: string;
  stop(): Promise<void>;
}

/**
 * The Temporal CLI's dev server (SQLite, with its Web UI), run as a child whose output is dropped
 * but for errors: started by the SDK instead, it prints its own banner (with the address of its
 * internal metrics) into `npm start`'s. Resolves once its frontend takes connections.
 */
export async function startDevServer(options: {
  executable: string;
  ip: string;
  port: number;
  uiPort: number;
  dbFilename: string;
  namespace: string;
}): Promise<DevServer> {
  const child = spawn(
    options.executable,
    [
      'server',
      'start-dev',
      '--ip',
      options.ip,
      '--port',
      String(options.port),
      '--ui-port',
      String(options.uiPort),
      '--db-filename',
      options.dbFilename,
      '--namespace',
      options.namespace,
      '--log-level',
      'error',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`the Temporal dev server exited with ${code}`))),
  );
  exited.catch(() => undefined);
  const deadline = Date.now() + 60_000;
  while (!(await accepts(options.ip, options.port))) {
    if (child.exitCode !== null) await exited;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the Temporal dev server did not listen on ${options.ip}:${options.port} within 60 s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    address: `${options.ip}:${options.port}`,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
