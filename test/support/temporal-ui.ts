import type { Browser } from 'playwright-core';
import { eventually } from './eventually.js';
import { screenshotPath } from './browser.js';

/**
 * What an operator does in the Temporal UI: filter the workflow list by the OrderRef search
 * attribute, open the order's workflow, read its status. Answers the workflow ids the filter
 * listed and the status the workflow's page shows; saves a screenshot of that page.
 */
export async function findOrderInTemporalUi(
  browser: Browser,
  uiUrl: string,
  orderRef: string,
  workflowId: string,
  screenshot: string,
) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  try {
    const list = `${uiUrl}/namespaces/default/workflows?query=${encodeURIComponent(`OrderRef="${orderRef}"`)}`;
    // Visibility lags a moment behind the workflow's start: the list is loaded again until it shows it.
    const listed = await eventually(
      async () => {
        await page.goto(list);
        await page
          .getByRole('link', { name: workflowId, exact: true })
          .waitFor({ timeout: 5_000 })
          .catch(() => undefined);
        return page
          .locator('a[href*="/workflows/order%2F"]')
          .evaluateAll((links) => [
            ...new Set(
              links.map((a) => decodeURIComponent(a.getAttribute('href')!.split('/workflows/')[1]!.split('/')[0])),
            ),
          ]);
      },
      (ids) => ids.includes(workflowId),
      { what: `${workflowId} in the Temporal UI's list`, timeoutMs: 60_000, intervalMs: 500 },
    );
    await page.getByRole('link', { name: workflowId, exact: true }).click();
    await page.waitForURL(/\/history/);
    // The status badge in the workflow's header (the same words also appear in hidden filter menus).
    const status = page
      .locator('header span.rounded-sm')
      .filter({ hasText: /^\s*(Running|Completed|Failed|Terminated|Canceled|Timed Out|Continued As New)\s*$/ })
      .first();
    await status.waitFor({ timeout: 30_000 });
    await page.getByText(workflowId).first().waitFor();
    await page.screenshot({ path: screenshotPath(screenshot), fullPage: true });
    return { listed, status: (await status.innerText()).trim() };
  } finally {
    await page.close();
  }
}
