// Lighthouse (the npm package, pinned) against the real server, in the system Chromium: the
// categories' scores and what failed, with the HTML report kept under target/lighthouse.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as chromeLauncher from 'chrome-launcher';
import lighthouse from 'lighthouse';
import desktopConfig from 'lighthouse/core/config/desktop-config.js';
import { CHROMIUM, SCREENSHOT_DIR } from './spis.js';

/** Where the reports go: beside the screenshots, under target/. */
export const REPORT_DIR = process.env.LIGHTHOUSE_DIR || path.join(path.dirname(SCREENSHOT_DIR), 'lighthouse');

/**
 * One Lighthouse run.
 * @param {string} url
 * @param {{name: string, formFactor?: 'mobile'|'desktop', headers?: Record<string, string>,
 *   categories?: string[]}} opts
 * @returns {Promise<{scores: Record<string, number>, failing: string[]}>} scores 0-100, and
 *   the audits below full marks that count towards them ("category: audit (value)")
 */
export async function audit(url, { name, formFactor = 'mobile', headers, categories = ['performance', 'accessibility', 'best-practices', 'seo'] }) {
  const chrome = await chromeLauncher.launch({
    chromePath: CHROMIUM,
    chromeFlags: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  try {
    const flags = { port: chrome.port, output: ['html', 'json'], logLevel: 'error', onlyCategories: categories, extraHeaders: headers };
    const result = await lighthouse(url, flags, formFactor === 'desktop' ? desktopConfig : undefined);
    if (!result) throw new Error(`lighthouse gave no result for ${url}`);
    const { lhr } = result;
    if (lhr.runtimeError) throw new Error(`lighthouse: ${lhr.runtimeError.code}: ${lhr.runtimeError.message}`);
    fs.mkdirSync(REPORT_DIR, { recursive: true });
    const report = Array.isArray(result.report) ? result.report : [result.report];
    fs.writeFileSync(path.join(REPORT_DIR, `${name}-${formFactor}.html`), report[0]);
    fs.writeFileSync(path.join(REPORT_DIR, `${name}-${formFactor}.json`), report[1]);
    // LIGHTHOUSE_TRACE=1: also the page's performance trace, for Chromium's Performance panel.
    const trace = /** @type {any} */ (result.artifacts)?.Trace;
    if (process.env.LIGHTHOUSE_TRACE === '1' && trace) fs.writeFileSync(path.join(REPORT_DIR, `${name}-${formFactor}.trace.json`), JSON.stringify(trace));
    /** @type {Record<string, number>} */
    const scores = {};
    const failing = [];
    for (const [id, cat] of Object.entries(lhr.categories)) {
      scores[id] = Math.round((cat.score ?? 0) * 100);
      for (const ref of cat.auditRefs) {
        const a = lhr.audits[ref.id];
        if (ref.weight > 0 && a.score !== null && a.score < 1) failing.push(`${id}: ${ref.id} (${a.displayValue || a.score})`);
      }
    }
    return { scores, failing };
  } finally {
    await chrome.kill();
  }
}
