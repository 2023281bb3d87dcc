import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const SKIP = new Set(['node_modules', '.git', '.data']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    if (SKIP.has(name)) return [];
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|js|sh|py|yml)$/.test(name) ? [path] : [];
  });
}

describe('the repository explains itself', () => {
  const architecture = readFileSync(join(root, 'ARCHITECTURE.md'), 'utf8');
  const sections = new Set([...architecture.matchAll(/^## (.+)$/gm)].map((m) => m[1].trim()));
  const files = sourceFiles(root);

  it('points comments at sections of ARCHITECTURE.md that exist', () => {
    const references = files.flatMap((file) =>
      [...readFileSync(file, 'utf8').matchAll(/ARCHITECTURE\.md, "([^"]+)"/g)].map((m) => ({
        file: relative(root, file),
        section: m[1],
      })),
    );
    expect(references.length).toBeGreaterThan(5);
    expect(references.filter((r) => !sections.has(r.section))).toEqual([]);
  });

  it('cites no document outside the repository', () => {
    const outside = files.filter(
      (file) => !file.endsWith('architecture-references.test.ts') && readFileSync(file, 'utf8').includes('DESIGN.md'),
    );
    expect(outside.map((file) => relative(root, file))).toEqual([]);
  });
});
