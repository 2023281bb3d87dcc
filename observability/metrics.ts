import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The process's own metrics (README "Operations"), in one registry that `/metrics` serves. Labels are
 * bounded sets (a route as the route table declares it, an app id, a status), never a tenant id or
 * an order reference: those would make a series per customer.
 */
export const registry = new Registry();

export const httpRequests = new Counter({
  name: 'http_requests_total',
  help: 'HTTP requests answered, by route as declared (never the raw URL), method and status',
  labelNames: ['route', 'method', 'status'] as const,
  registers: [registry],
});

export const httpRequestDuration = new Histogram({
  name: 'http_request_duration_seconds',
  help: 'Time to answer an HTTP request, by declared route and method',
  labelNames: ['route', 'method'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});

export const instructionTransitions = new Counter({
  name: 'payment_instructions_total',
  help: 'Payment instructions entering a status (OPEN, PROCESSING, SETTLED, LATE, FAILED, CANCELLED, RETURNED), counted once when recorded',
  labelNames: ['direction', 'app', 'status'] as const,
  registers: [registry],
});

export const providerCallSeconds = new Histogram({
  name: 'payment_provider_call_seconds',
  help: 'Time a payment provider took to answer a payment call, by app and outcome (settled, pending, rejected, failed)',
  labelNames: ['app', 'outcome'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});

export const providerCallsPutOff = new Counter({
  name: 'payment_provider_calls_put_off_total',
  help: 'Calls to tenant-hosted providers not sent yet, by app: their account had its share of the worker’s calls under way (made again a little later, under the same key)',
  labelNames: ['app'] as const,
  registers: [registry],
});

export const webhookDeliveryAttempts = new Counter({
  name: 'webhook_delivery_attempts_total',
  help: 'Tries to deliver a webhook, by outcome (delivered, failed, gone; unsigned: not sent, its secret did not open; unrecorded: not sent again, its answers could not be recorded; deferred: put off, not sent, its account had every webhook slot it may have)',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const reconciliationMismatches = new Counter({
  name: 'reconciliation_mismatches_total',
  help: 'Differences found between a provider’s records and ours, by app and kind',
  labelNames: ['app', 'kind'] as const,
  registers: [registry],
});

export const gaugeReadFailures = new Counter({
  name: 'metrics_gauge_read_failures_total',
  help: 'Scrapes that could not read a gauge from the database (its last value was served)',
  labelNames: ['gauge'] as const,
  registers: [registry],
});

/** The API's row-change listeners in this process (db/row-changes.ts): one per API. */
const rowChangeListeners = new Set<{ readonly live: boolean }>();

export const rowChangesListening = new Gauge({
  name: 'api_row_changes_listening',
  help: 'Whether every API in this process hears row changes from PostgreSQL (1), so keeps security keys, tenant settings and schemes in memory, or not (0: each request reads them)',
  registers: [registry],
  collect() {
    const listeners = [...rowChangeListeners];
    this.set(listeners.length > 0 && listeners.every((listener) => listener.live) ? 1 : 0);
  },
});

/** Counts an API's listener in `api_row_changes_listening` until the returned function is called. */
export function watchRowChangeListener(listener: { readonly live: boolean }): () => void {
  rowChangeListeners.add(listener);
  return () => rowChangeListeners.delete(listener);
}

type Reading<L extends string> = { labels?: Partial<Record<L, string>>; value: number }[];

/**
 * A gauge read from the database when scraped, at most once per `maxAgeMs` (a scrape every few
 * seconds from several Prometheus servers costs one query per period, not one each). Declaring it
 * again (another API in the same process, as in the tests) gives it the newer reader.
 */
export function cachedGauge<L extends string>(options: {
  name: string;
  help: string;
  labelNames?: readonly L[];
  maxAgeMs?: number;
  read: () => Promise<Reading<L>>;
}): void {
  const maxAgeMs = options.maxAgeMs ?? 10_000;
  const state = { read: options.read, last: undefined as { at: number; values: Reading<L> } | undefined };
  const existing = readers.get(options.name);
  if (existing) {
    existing.read = options.read;
    existing.last = undefined;
    return;
  }
  readers.set(options.name, state);
  new Gauge<L>({
    name: options.name,
    help: options.help,
    labelNames: options.labelNames ?? [],
    registers: [registry],
    async collect() {
      if (!state.last || Date.now() - state.last.at > maxAgeMs) {
        try {
          state.last = { at: Date.now(), values: await state.read() };
        } catch {
          // The database away: the last values stand (or none), and the rest of the scrape is served,
          // request errors included, when they matter most.
          gaugeReadFailures.inc({ gauge: options.name });
          if (state.last) state.last.at = Date.now();
        }
      }
      if (!state.last) return;
      this.reset();
      for (const { labels, value } of state.last.values) {
        if (labels) this.set(labels as Partial<Record<L, string | number>>, value);
        else this.set(value);
      }
    },
  });
}

const readers = new Map<
  string,
  { read: () => Promise<Reading<string>>; last?: { at: number; values: Reading<string> } }
>();
