// The Grafana dashboard (ops/grafana): it shows what README "Operations" promises, from metrics that exist.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { registry } from '../../observability/metrics.js';

const dashboard = JSON.parse(
  readFileSync(new URL('../../ops/grafana/payment-scheduler-dashboard.json', import.meta.url), 'utf8'),
) as { uid: string; panels: { title: string; targets: { expr: string }[] }[] };
const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));

/** Our metrics by name, with the series names Prometheus gives a histogram's and a counter's parts. */
const OURS = new Set([
  ...registry.getMetricsAsArray().flatMap((m) => [m.name, `${m.name}_bucket`, `${m.name}_count`, `${m.name}_sum`]),
  // Gauges read from the database, declared when an API starts.
  'payment_instructions_due',
  'payment_instructions_late',
  'webhook_deliveries_pending',
]);

describe('the Grafana dashboard', () => {
  it('names only metrics we declare, or the Temporal SDK’s own', () => {
    const named = new Set(
      exprs.flatMap((e) =>
        [...e.matchAll(/\b([a-z_]+_(?:total|seconds|bucket|due|late|pending|count|sum))\b/g)].map((m) => m[1]),
      ),
    );
    for (const name of named) if (!name.startsWith('temporal_')) expect(OURS, name).toContain(name);
  });

  it('shows payments by status, provider latency and errors, what is due and late, the webhook backlog and Temporal’s schedule-to-start latency', () => {
    for (const needed of [
      /payment_instructions_total/,
      /histogram_quantile\(0\.95, .*payment_provider_call_seconds_bucket/,
      /payment_provider_call_seconds_count/,
      /payment_instructions_due/,
      /payment_instructions_late/,
      /webhook_deliveries_pending/,
      /temporal_workflow_task_schedule_to_start_latency_bucket/,
    ])
      expect(
        exprs.some((e) => needed.test(e)),
        String(needed),
      ).toBe(true);
  });
});
