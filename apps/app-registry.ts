import type { Got } from 'got';
import type { AppConnector } from './app-connector.js';
import { createSandboxConnector } from './sandbox/connector.js';

export interface AppRegistryConfig {
  sandboxUrl: string;
}

/** The connectors the platform ships, by appId. */
export function createAppRegistry(http: Got, config: AppRegistryConfig): Map<string, AppConnector> {
  const sandbox = createSandboxConnector(http, config.sandboxUrl);
  return new Map([[sandbox.appId, sandbox]]);
}
