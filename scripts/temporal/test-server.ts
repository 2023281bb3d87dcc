import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EphemeralServerExecutable } from '@temporalio/testing';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Makes the Java time-skipping test server runnable: Maven resolves io.temporal:temporal-test-server
 * and its dependencies into ~/.m2 once, and the classpath is cached for the wrapper script.
 */
export function ensureTimeSkippingServer(
  cacheDir: string,
  log: (line: string) => void = console.error,
): EphemeralServerExecutable {
  const classpathFile = join(cacheDir, 'test-server', 'classpath.txt');
  const pom = join(projectRoot, 'scripts', 'test-server', 'pom.xml');
  // The classpath is resolved again whenever the pom changes.
  const pomHashFile = join(cacheDir, 'test-server', 'pom.sha256');
  const pomHash = createHash('sha256').update(readFileSync(pom)).digest('hex');
  const current = existsSync(pomHashFile) && readFileSync(pomHashFile, 'utf8') === pomHash;
  if (!current || !existsSync(classpathFile) || statSync(classpathFile).size === 0) {
    mkdirSync(join(cacheDir, 'test-server'), { recursive: true });
    log('Resolving the Temporal Java test server from Maven Central (first run only)...');
    const started = Date.now();
    const result = spawnSync(
      'mvn',
      ['-q', '-B', '-f', pom, 'dependency:build-classpath', `-Dmdep.outputFile=${classpathFile}`],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    if (result.status !== 0)
      throw new Error(`mvn could not resolve the Temporal test server (exit ${result.status ?? result.signal})`);
    writeFileSync(pomHashFile, pomHash);
    log(`Resolved the Java test server in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  return { type: 'existing-path', path: join(projectRoot, 'scripts', 'temporal-test-server.sh') };
}
