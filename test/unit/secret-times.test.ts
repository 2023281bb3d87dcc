import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AppInstallation } from '../../db/entities/index.js';
import { openSecretTimes, sealSecretTimes } from '../../db/installed-apps.js';
import { sealedContext } from '../../db/sealed-columns.js';
import { SecretBox } from '../../db/secret-box.js';

describe('a callback secret’s times as sealed', () => {
  const box = SecretBox.fromMasterKeys({ current: randomBytes(32).toString('base64') });
  const id = randomUUID();
  const opened = (ciphertext: string | null) =>
    openSecretTimes(box, { id, retiredSecretsCiphertext: ciphertext } as AppInstallation);

  it('opens the times it sealed, and nothing of an entry that is not one', () => {
    const times = [
      { field: 'apiKey', value: 'old', from: '2026-12-01T00:00:00.000Z', to: '2026-12-02T00:00:00.000Z' },
      { field: 'apiKey', value: 'new', from: '2026-12-02T00:00:00.000Z' },
    ];
    expect(opened(sealSecretTimes(box, id, times))).toEqual(times);
    expect(opened(null)).toEqual([]);
    // Each entry must say when its time began (and ended, if it did), as a time: none verifies otherwise.
    const odd = [
      { field: 'apiKey', value: 'a', since: '2026-12-01T00:00:00.000Z' },
      { field: 'apiKey', value: 'b', from: 'yesterday' },
      { field: 'apiKey', value: 'c', from: '2026-12-01T00:00:00.000Z', to: 42 },
      { field: 'apiKey', from: '2026-12-01T00:00:00.000Z' },
      times[0],
    ];
    expect(opened(box.seal(JSON.stringify(odd), sealedContext('app_installation', id)))).toEqual([times[0]]);
    // The other sealed column of the row (its secrets, an object) opens, and is no times.
    expect(opened(box.seal(JSON.stringify({ apiKey: 'x' }), sealedContext('app_installation', id)))).toEqual([]);
  });
});
