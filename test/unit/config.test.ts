import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config.js';

describe('loadConfig', () => {
  it('takes an absolute http(s) PUBLIC_API_URL without its trailing slash, and defaults to the local API', () => {
    expect(loadConfig({ PUBLIC_API_URL: 'https://payments.example.com/' }).publicApiUrl).toBe(
      'https://payments.example.com',
    );
    expect(loadConfig({ PUBLIC_API_URL: 'http://10.0.0.5:8080/api' }).publicApiUrl).toBe('http://10.0.0.5:8080/api');
    expect(loadConfig({ PORT: '4000' }).publicApiUrl).toBe('http://127.0.0.1:4000');
    // As parsed, so that every link made from it is well formed.
    expect(loadConfig({ PUBLIC_API_URL: ' HTTP://Payments.Example.com:443/ ' }).publicApiUrl).toBe(
      'http://payments.example.com:443',
    );
    expect(loadConfig({ PUBLIC_API_URL: 'http://[::1]:3000/' }).publicApiUrl).toBe('http://[::1]:3000');
  });

  // Without a scheme it made broken callback addresses and links, then stopped the API at its first use.
  it.each([
    'payments.example.com',
    'ftp://payments.example.com',
    'https://',
    '/relative',
    'https://user:secret@payments.example.com',
    'https://payments.example.com/?a=1',
    'https://payments.example.com/#top',
  ])('refuses PUBLIC_API_URL %s at start, naming the setting', (value) => {
    expect(() => loadConfig({ PUBLIC_API_URL: value })).toThrow(/PUBLIC_API_URL must be an absolute http\(s\) address/);
  });
});
