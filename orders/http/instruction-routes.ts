import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { stringify } from 'csv-stringify';
import type { RouteTable } from '../../api/http/route-table.js';
import { ApiError } from '../../api/http/problem.js';
import { z } from '../../api/http/zod.js';
import {
  searchInstructions,
  SETTLEMENT_COLUMNS,
  lockWaitedOut,
  statementTimedOut,
  settlementRowOf,
  withSettlementStream,
  type SettlementRecord,
} from '../instruction-search.js';
import { TenantSlots } from '../../domain/tenant-slots.js';
import { presentInstruction } from './presenter.js';
import { InstructionSearchListSchema, SearchInstructionsQuerySchema, SettlementExportQuerySchema } from './schemas.js';

/** A spreadsheet reads a cell starting with one of these as a formula: such a cell is quoted as text. */
const FORMULA_START = /^[=+\-@\t\r]/;
/** Exports at once per API process, each holding a connection while its client reads; one per tenant. */
const exportSlots = new TenantSlots(2, 1);

/**
 * A client that stops reading would hold its export's slot and connection for as long as it stays, so
 * the export ends once bytes have waited `stallMs` for it (up to twice that: Node counts a write
 * taken in part as progress). A socket idle while nothing waits, before the first row, is our query
 * sorting the period, not the client: it is given another `stallMs` (a lock it waits for is bounded
 * by `lockWaitMs`). Idle once rows flow, the query is stuck, and the export is ended as the client's
 * would be (a lost connection fails the rows' stream at once, db/row-stream.ts).
 */
function endWhenClientStalls(res: ServerResponse, stallMs: number): void {
  res.setTimeout(stallMs, () => {
    if (res.headersSent || res.writableNeedDrain || (res.socket?.writableLength ?? 0) > 0) res.destroy();
    else res.setTimeout(stallMs);
  });
}

/**
 * Finance's views across orders: instruction search, and the settlements of a period as a file.
 * `stallMs`: an export whose client reads nothing for this long is ended, its connection given back.
 * `lockWaitMs`: the longest its query may wait for a lock on the tables it reads.
 * `searchTimeoutMs`: the longest a search's page may take: a filter outside the indexes with no date
 * range may read much of a tenant's instructions, and holds a connection meanwhile.
 */
export function addInstructionRoutes(
  routes: RouteTable,
  { stallMs, lockWaitMs, searchTimeoutMs }: { stallMs: number; lockWaitMs: number; searchTimeoutMs: number },
): void {
  routes.add({
    method: 'get',
    path: '/instructions',
    scope: 'tenant',
    roles: ['tenant-order-read'],
    summary: 'Search instructions across orders',
    description:
      'Latest due date first; with settledFrom or settledTo, latest settlement first. Ranges include their start and exclude their end.',
    tags: ['Orders'],
    query: SearchInstructionsQuerySchema,
    responses: {
      200: {
        description: 'A page of instructions, each with its order’s reference',
        schema: InstructionSearchListSchema,
      },
    },
    problems: [503],
    // One read-only snapshot, its two statements (the page, its orders) each under the limit (0: none).
    transactional: 'snapshot',
    handler: async ({ query, em, req, context: { tenantId } }) => {
      if (searchTimeoutMs > 0) await em.execute(`set local statement_timeout = ${Math.ceil(searchTimeoutMs)}`);
      const page = await searchInstructions(em, tenantId, query).catch((err: unknown) => {
        if (!statementTimedOut(err)) throw err;
        // A search too broad for the indexes, or a table held by other work: an operator's to look at if it keeps happening.
        req.log.warn({ tenantId, query, searchTimeoutMs }, 'an instruction search was cut at its time limit');
        throw new ApiError(
          503,
          'search_timed_out',
          `a statement of the search took more than ${searchTimeoutMs / 1000} s: narrow it by a date range ` +
            '(dueFrom, dueTo, settledFrom, settledTo) or a status; the same search may time out again',
          undefined,
          { 'retry-after': '60' },
        );
      });
      return {
        status: 200,
        body: {
          items: page.items.map(({ row, orderRef }) => ({ ...presentInstruction(row), orderRef })),
          nextCursor: page.nextCursor,
        },
      };
    },
  });

  routes.add({
    method: 'get',
    path: '/exports/settlements',
    scope: 'tenant',
    roles: ['tenant-order-read', 'tenant-reconciliation-read'],
    summary: 'Export the settlements of a period, as CSV or JSON lines',
    description:
      'Every settlement in [from, to), oldest first: what each payment took, under which provider reference and app, ' +
      'with its instruction’s status and totals now (settled, refunded, returned). An instruction collected again has a row per settlement. `Accept: text/csv` (the default) or `application/x-ndjson`. Streamed: any period can be exported.',
    tags: ['Orders'],
    query: SettlementExportQuerySchema,
    problems: [503],
    responses: {
      200: {
        description: 'The settlements, one per line (CSV with a header, or JSON lines)',
        media: {
          'text/csv': z.string().openapi({ description: `Columns: ${SETTLEMENT_COLUMNS.join(', ')}` }),
          'application/x-ndjson': z.string().openapi({ description: 'One JSON object per line, of the same fields' }),
        },
      },
    },
    handler: ({ query, em, req, context: { tenantId } }) => {
      const from = new Date(query.from);
      const to = new Date(query.to);
      if (to <= from)
        throw new ApiError(400, 'validation_failed', 'the period is empty', [
          { path: 'query.to', code: 'before_from', message: 'must be after from' },
        ]);
      const busy = exportSlots.refusal(tenantId);
      if (busy)
        throw new ApiError(
          503,
          'exports_busy',
          busy === 'tenant'
            ? 'an export of yours is running; try again once it has ended'
            : 'other exports are running; try again shortly',
          undefined,
          { 'retry-after': '10' },
        );
      const asJson = req.accepts(['text/csv', 'application/x-ndjson']) === 'application/x-ndjson';
      const rows = new Transform({
        objectMode: true,
        transform(record: SettlementRecord, _encoding, done) {
          try {
            const row = settlementRowOf(record);
            done(null, asJson ? `${JSON.stringify(row)}\n` : SETTLEMENT_COLUMNS.map((c) => row[c]));
          } catch (err) {
            done(err as Error);
          }
        },
      });
      const name = `settlements-${query.from.slice(0, 10)}-${query.to.slice(0, 10)}`;
      const headers: Record<string, string> = asJson
        ? { 'content-type': 'application/x-ndjson; charset=utf-8' }
        : {
            'content-type': 'text/csv; charset=utf-8',
            'content-disposition': `attachment; filename="${name}.csv"`,
          };
      return {
        status: 200,
        headers,
        stream: async (res) => {
          const format = asJson
            ? []
            : [
                stringify({
                  header: true,
                  columns: SETTLEMENT_COLUMNS,
                  cast: { string: (v) => (FORMULA_START.test(v) ? { value: `'${v}`, quoted: true } : v) },
                }),
              ];
          exportSlots.take(tenantId);
          endWhenClientStalls(res, stallMs);
          try {
            await withSettlementStream(em, tenantId, { from, to }, { lockWaitMs }, (source) =>
              pipeline(source, rows, ...format, res, { end: false }),
            );
          } catch (err) {
            // The client went away mid-file: pipeline has ended the query.
            if ((err as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE') return;
            if (res.headersSent) {
              // Cut mid-file: the client must see a broken download, not a file that looks whole
              // (the response is its own to end, pipeline having been told not to).
              res.destroy();
              throw err;
            }
            res.removeHeader('content-disposition');
            if (lockWaitedOut(err)) {
              // Other work held the table that long: an operator's to look at if it keeps happening.
              req.log.warn({ tenantId, lockWaitMs }, 'an export waited out a table held by other work');
              throw new ApiError(
                503,
                'export_timed_out',
                `the export waited ${lockWaitMs / 1000} s for a table held by other work (maintenance, a migration); try again later`,
                undefined,
                { 'retry-after': '60' },
              );
            }
            throw err;
          } finally {
            exportSlots.release(tenantId);
          }
          // Ended once its query has given back its connection and slot: a client asking for its next
          // export as soon as it has read this one finds them free.
          res.end();
        },
      };
    },
  });
}
