import type { Got } from 'got';
import { tracedGot } from '../observability/tracing.js';
import type { Config } from '../config.js';
import type { OutboundUrlPolicy } from '../domain/outbound-url.js';
import type { AppConnector } from './app-connector.js';
import { createHttpConnector } from './http-connector/connector.js';
import { createSandboxConnectors } from './sandbox/connector.js';

export interface AppRegistryConfig {
  sandboxUrl: string;
  /** This platform's API, as providers reach it for callbacks. */
  callbackBaseUrl: string;
  outboundUrls: OutboundUrlPolicy;
  /** How long one call to a sandbox app may take. */
  sandboxTimeoutMs?: number;
}

/** The registry as the processes build it, from their configuration. */
export function appRegistryConfig(
  config: Pick<Config, 'sandboxUrl' | 'publicApiUrl' | 'allowLoopbackHttp'>,
): AppRegistryConfig {
  return {
    sandboxUrl: config.sandboxUrl,
    callbackBaseUrl: config.publicApiUrl,
    outboundUrls: { allowLoopbackHttp: config.allowLoopbackHttp },
  };
}

/** The connectors of every app the marketplace ships, by appId. */
export function createAppRegistry(untraced: Got, config: AppRegistryConfig): Map<string, AppConnector> {
  // Each call to a provider is a span of the activity (or request) that made it, when tracing is on.
  const connectors = [
    ...createSandboxConnectors(tracedGot(untraced), {
      baseUrl: config.sandboxUrl,
      callbackBaseUrl: config.callbackBaseUrl,
      timeoutMs: config.sandboxTimeoutMs,
    }),
    createHttpConnector(tracedGot(untraced, { toTenants: true }), {
      callbackBaseUrl: config.callbackBaseUrl,
      outboundUrls: config.outboundUrls,
    }),
  ];
  return new Map(connectors.map((connector) => [connector.appId, connector]));
}
