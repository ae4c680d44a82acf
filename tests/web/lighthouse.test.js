// Lighthouse on the pages people open: the gallery (logged in), the login page and a share
// link's guest view, with the household password on. Accessibility, best practices and SEO must
// score 100 (their audits do not depend on timing); performance is timing, so `make bench`
// reports it (LIGHTHOUSE_PERF=1) and this test only prints it. Reports: target/lighthouse.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { audit } from './lib/lighthouse.js';
import { buildLibrary, startServer, tempDirs, waitUntil } from './lib/spis.js';

const PERF = process.env.LIGHTHOUSE_PERF === '1';
/** What must be perfect; with LIGHTHOUSE_PERF, performance is measured too. */
const CATEGORIES = ['accessibility', 'best-practices', 'seo', ...(PERF ? ['performance'] : [])];

let dirs;
let server;
/** The household's session cookie. */
let cookie;
/** A share link's page. */
let shareUrl;
before(async () => {
  dirs = tempDirs();
  buildLibrary(dirs.media, { bigMonth: 40 });
  server = await startServer({ media: dirs.media, state: dirs.state, auth: true, args: process.env.LIGHTHOUSE_ARGS ? process.env.LIGHTHOUSE_ARGS.split(' ') : [] });
  const setup = await fetch(server.url('/api/setup'), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ password: 'our family' }) });
  cookie = (setup.headers.get('set-cookie') || '').split(';')[0];
  assert.match(cookie, /^spis_session=/);
  // The first screen's thumbnails exist, as on a gallery in use. Timing is measured once the
  // background pass is over: its work on the same two cores would count as the page's.
  await waitUntil('thumbnails are made', async () => {
    const s = await (await fetch(server.url('/api/status'), { headers: { Cookie: cookie } })).json();
    const { background, avif } = s.thumbnails;
    // A pass not started yet counts 0 of 0: not done.
    if (!background.total || !avif.total) return false;
    const want = (total) => (PERF ? total : Math.min(total, 60));
    return background.done >= want(background.total) && avif.done >= want(avif.total);
  }, 300000);
  const made = await fetch(server.url('/api/shares'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Cookie: cookie },
    body: JSON.stringify({ dir: 'Trips' }),
  });
  assert.equal(made.status, 201);
  shareUrl = server.url((await made.json()).url);
});
after(async () => {
  await server?.stop();
  dirs?.cleanup();
});

const pages = () => [
  { name: 'gallery', url: server.url('/'), headers: { Cookie: cookie } },
  { name: 'login', url: server.url('/') },
  { name: 'share', url: shareUrl },
];

for (const formFactor of PERF ? ['mobile', 'desktop'] : ['mobile']) {
  test(`Lighthouse (${formFactor}): accessibility, best practices and SEO score 100 on the gallery, the login page and a share link`, async () => {
    const problems = [];
    for (const p of pages()) {
      const { scores, failing } = await audit(p.url, { name: p.name, formFactor, headers: p.headers, categories: CATEGORIES });
      console.log(`lighthouse ${formFactor} ${p.name}: ${Object.entries(scores).map(([k, v]) => `${k} ${v}`).join(', ')}`);
      for (const f of failing) if (!f.startsWith('performance')) problems.push(`${p.name}: ${f}`);
      if (PERF) for (const f of failing.filter((x) => x.startsWith('performance'))) console.log(`  ${f}`);
    }
    assert.deepEqual(problems, []);
  });
}
