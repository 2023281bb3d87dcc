import { describe, expect, it } from 'vitest';
import { capturingLogger } from '../support/capturing-logger.js';

describe('a log line', () => {
  it('holds no credential, token or callback signature, at the top or one level down', () => {
    const { logger, lines } = capturingLogger('test', 'info');
    const secrets = ['sk-1', 'k-2', 'tok-3', 'whsec-4', 'mk-5', 'v1,sig-6', 'v1=sig-7', 'Bearer jwt-8'];
    logger.info(
      {
        req: {
          method: 'POST',
          url: '/v1/callbacks/SANDBOX_CARD',
          headers: {
            authorization: secrets[7],
            'webhook-signature': secrets[5],
            'sandbox-signature': secrets[6],
            'content-type': 'application/json',
          },
        },
        installation: { apiKey: secrets[0], signingSecret: secrets[3] },
        instrument: { token: secrets[2] },
        config: { masterKey: secrets[4] },
        apiKey: secrets[1],
      },
      'everything at once',
    );
    const [line] = lines;
    for (const secret of secrets) expect(line).not.toContain(secret);
    // What is not secret is kept, so the line still says what happened.
    expect(JSON.parse(line)).toMatchObject({
      msg: 'everything at once',
      req: { url: '/v1/callbacks/SANDBOX_CARD', headers: { 'content-type': 'application/json' } },
    });
  });
});
