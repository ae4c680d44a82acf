// Renders the spis logo (an SVG) to the PNG icons under web/icons with the system Chromium:
//   node tests-web/tools/make-icons.js [web dir]
// Run it after changing the logo; the PNGs are committed.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser } from '../lib/spis.js';

// web/ beside tests-web/ here, or at the repository's root when this lives in tests/web/.
const here = path.dirname(fileURLToPath(import.meta.url));
const web = process.argv[2] || [path.join(here, '..', '..', 'web'), path.join(here, '..', '..', '..', 'web')].find((d) => fs.existsSync(path.join(d, 'index.html')));
const out = path.join(web, 'icons');

/**
 * The logo: a sun over white hills on a blue tile.
 * @param {{radius: number, scale: number}} o corner radius of the tile (0: full bleed), glyph scale
 * @returns {string}
 */
function logo({ radius, scale }) {
  const t = (1 - scale) * 256;
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512">
<rect width="512" height="512" rx="${radius}" fill="#2f6fde"/>
<g transform="translate(${t} ${t}) scale(${scale})">
<circle cx="346" cy="166" r="50" fill="#ffd766"/>
<path d="M84 388 L204 238 L288 332 L338 276 L428 388 Z" fill="#fff" stroke="#fff" stroke-width="28" stroke-linejoin="round"/>
</g></svg>`;
}

const icons = [
  ['icon-192.png', 192, logo({ radius: 112, scale: 1 }), true],
  ['icon-512.png', 512, logo({ radius: 112, scale: 1 }), true],
  // Maskable: full bleed, the glyph inside the central safe circle.
  ['icon-maskable-512.png', 512, logo({ radius: 0, scale: 0.74 }), false],
  // iOS rounds the corners itself and wants no transparency.
  ['apple-touch-icon.png', 180, logo({ radius: 0, scale: 0.88 }), false],
];

fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'favicon.svg'), `${logo({ radius: 112, scale: 1 })}\n`);
const browser = await launchBrowser();
const page = await browser.newPage();
for (const [name, size, svg, transparent] of icons) {
  await page.setViewportSize({ width: size, height: size });
  const url = `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`;
  await page.setContent(`<style>html,body{margin:0;background:transparent}img{display:block}</style><img src="${url}" width="${size}" height="${size}">`);
  await page.waitForFunction(() => document.images[0].complete);
  await page.screenshot({ path: path.join(out, name), omitBackground: transparent, clip: { x: 0, y: 0, width: size, height: size } });
  console.log(name, fs.statSync(path.join(out, name)).size, 'bytes');
}
await browser.close();
