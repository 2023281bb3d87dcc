import { createHash, timingSafeEqual } from 'node:crypto';
import { registry } from './metrics.js';

/** The Prometheus text exposition's content type. */
export const METRICS_CONTENT_TYPE = registry.contentType;

/**
 * Whether a scrape may read the metrics: anyone when no token is set (the port is then to be kept
 * off the public network), else only `Authorization: Bearer {token}`, compared in constant time.
 */
export function scrapeAllowed(token: string | undefined, authorization: string | undefined): boolean {
  if (!token) return true;
  const digest = (v: string) => createHash('sha256').update(v).digest();
  return timingSafeEqual(digest(authorization ?? ''), digest(`Bearer ${token}`));
}

/**
 * The exposition: our registry, then the Temporal SDK's own (its Rust core serves them on a
 * loopback address of its own), so one address has both. An SDK that does not answer leaves only ours.
 */
export async function metricsText(sdkMetricsUrl?: string): Promise<string> {
  const ours = await registry.metrics();
  if (!sdkMetricsUrl) return ours;
  try {
    const response = await fetch(sdkMetricsUrl, { signal: AbortSignal.timeout(2_000) });
    return response.ok ? `${ours}\n${await response.text()}` : ours;
  } catch {
    return ours;
  }
}
