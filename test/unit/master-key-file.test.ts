import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Loads (or creates) the key file in a separate process, as `npm start` and `npm run bootstrap` would. */
function loadInProcess(path: string): Promise<string> {
  const script = `import { loadOrCreateMasterKeyFile } from './db/master-key-file.ts'; console.log(loadOrCreateMasterKeyFile(${JSON.stringify(path)}).current);`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: projectRoot,
    });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`exit ${code}`))));
  });
}

describe('the local master key file', () => {
  it('ends up with one key when several processes create it at the same moment, readable by its owner alone', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'master-key-')), 'master.key');
    const keys = await Promise.all(Array.from({ length: 6 }, () => loadInProcess(path)));
    expect(new Set(keys).size).toBe(1);
    expect(Buffer.from(keys[0], 'base64')).toHaveLength(32);
    expect(readFileSync(path, 'utf8').trim()).toBe(keys[0]);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });
});
