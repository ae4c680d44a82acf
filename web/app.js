// A minimal gallery over the JSON API: pages of thumbnails, a year filter and favorites.
// The full phone-first app replaces this file; it only shows that the API works end to end.

const grid = document.getElementById('grid');
const more = document.getElementById('more');
const yearSelect = document.getElementById('year');
const favorites = document.getElementById('favorites');
const status = document.getElementById('status');
let cursor = null;

/** Builds the /api/media query from the filter controls. */
function query() {
  const q = new URLSearchParams({ limit: '100' });
  if (yearSelect.value) q.set('year', yearSelect.value);
  if (favorites.checked) q.set('favorite', 'true');
  if (cursor) q.set('cursor', cursor);
  return q;
}

/** Renders one item as a tile with a favorite toggle. */
function tile(item) {
  const fig = document.createElement('figure');
  const a = document.createElement('a');
  a.href = item.original;
  const img = document.createElement('img');
  img.src = item.thumb;
  img.alt = item.name;
  img.loading = 'lazy';
  a.append(img);
  const fav = document.createElement('button');
  fav.textContent = '♥';
  fav.setAttribute('aria-label', `Favorite ${item.name}`);
  fav.setAttribute('aria-pressed', String(item.favorite));
  fav.addEventListener('click', async () => {
    const on = fav.getAttribute('aria-pressed') !== 'true';
    const res = await fetch(`/api/media/${item.id}/favorite`, { method: on ? 'PUT' : 'DELETE' });
    if (res.ok) fav.setAttribute('aria-pressed', String(on));
  });
  fig.append(a, fav);
  return fig;
}

/** Fetches and appends the next page. */
async function loadPage() {
  const res = await fetch(`/api/media?${query()}`);
  const page = await res.json();
  grid.append(...page.items.map(tile));
  cursor = page.next_cursor;
  more.hidden = !cursor;
}

async function reload() {
  cursor = null;
  grid.replaceChildren();
  await loadPage();
}

async function loadYears() {
  const res = await fetch('/api/facets');
  const facets = await res.json();
  for (const y of facets.years) yearSelect.append(new Option(`${y.year} (${y.count})`, y.year));
  const s = await (await fetch('/api/status')).json();
  status.textContent = s.indexing.done ? `${s.items} items` : `indexing… ${s.indexing.indexed}`;
}

more.addEventListener('click', loadPage);
yearSelect.addEventListener('change', reload);
favorites.addEventListener('change', reload);
loadYears();
reload();
