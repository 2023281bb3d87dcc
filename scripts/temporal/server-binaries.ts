import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** The server the CLI v1.5.1 dev server embeds: the topology runs what the tests ran. */
export const TEMPORAL_SERVER_VERSION = 'v1.29.1';
export const TEMPORAL_UI_VERSION = 'v2.42.1';

export interface TemporalServerBinaries {
  /** The Temporal server (`server … start`). */
  server: string;
  /** temporal-sql-tool: creates and migrates the server's databases. */
  sqlTool: string;
  /** The server module's PostgreSQL schemas: `temporal/` and `visibility/`, each with `versioned/`. */
  schemaDir: string;
  /** The Temporal UI server, its web assets inside. */
  ui: string;
}

/**
 * The full Temporal server, its SQL tool and schemas, and the UI server, built from the Go module
 * proxy into the cache the first time (a few minutes) and found there afterwards. Both binaries are
 * named `server`, so each version has a folder of its own.
 */
export function ensureTemporalServerBinaries(
  cacheDir: string,
  log: (line: string) => void = console.error,
): TemporalServerBinaries {
  const serverDir = join(cacheDir, `temporal-server-${TEMPORAL_SERVER_VERSION}`);
  const uiDir = join(cacheDir, `temporal-ui-${TEMPORAL_UI_VERSION}`);
  const binaries: TemporalServerBinaries = {
    server: join(serverDir, 'bin', 'server'),
    sqlTool: join(serverDir, 'bin', 'sql'),
    schemaDir: join(serverDir, 'schema', 'postgresql', 'v12'),
    ui: join(uiDir, 'bin', 'server'),
  };
  if (
    !existsSync(binaries.server) ||
    !existsSync(binaries.sqlTool) ||
    !existsSync(join(binaries.schemaDir, 'temporal', 'versioned'))
  ) {
    goInstall(
      serverDir,
      [
        `go.temporal.io/server/cmd/server@${TEMPORAL_SERVER_VERSION}`,
        `go.temporal.io/server/cmd/tools/sql@${TEMPORAL_SERVER_VERSION}`,
      ],
      log,
    );
    // The schemas ship in the module's source; copied beside the binaries, they outlive a cleaned module cache.
    const moduleDir = join(
      execFileSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).trim(),
      `go.temporal.io/server@${TEMPORAL_SERVER_VERSION}`,
    );
    rmSync(join(serverDir, 'schema'), { recursive: true, force: true });
    cpSync(join(moduleDir, 'schema', 'postgresql', 'v12'), binaries.schemaDir, { recursive: true });
  }
  if (!existsSync(binaries.ui))
    goInstall(uiDir, [`github.com/temporalio/ui-server/v2/cmd/server@${TEMPORAL_UI_VERSION}`], log);
  return binaries;
}

/** `go install`s `packages` into `dir/bin`, through a scratch folder so that an interrupted build leaves nothing half made. */
function goInstall(dir: string, packages: string[], log: (line: string) => void): void {
  if (spawnSync('go', ['version'], { stdio: 'ignore' }).status !== 0) {
    throw new Error(
      `building ${packages.join(', ')} needs the Go toolchain (go on PATH), which reaches the Go module proxy`,
    );
  }
  const scratch = join(dir, `bin.partial-${process.pid}`);
  mkdirSync(scratch, { recursive: true });
  log(`Building ${packages.join(' and ')} with Go into ${dir} (first run only; takes a few minutes)...`);
  const started = Date.now();
  const result = spawnSync('go', ['install', ...packages], {
    env: { ...process.env, CGO_ENABLED: '0', GOBIN: scratch },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (result.status !== 0) {
    rmSync(scratch, { recursive: true, force: true });
    throw new Error(`go install ${packages.join(' ')} failed (exit ${result.status ?? result.signal})`);
  }
  rmSync(join(dir, 'bin'), { recursive: true, force: true });
  renameSync(scratch, join(dir, 'bin'));
  log(`Built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
