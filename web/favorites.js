// @ts-check
// Marking favorites: shown at once, stored by the server, rolled back with a message on failure.

import { setFavorite } from './api.js';
import { toast } from './ui.js';

/** @typedef {import('./api.js').Item} Item */
/** @typedef {import('./timeline.js').Timeline} Timeline */

/**
 * Sets the favorite flag of items optimistically, a few requests at a time.
 * @param {() => Timeline|null} timeline the current timeline (the filter may change meanwhile)
 * @param {Item[]} items
 * @param {boolean} on
 * @returns {Promise<number>} how many failed
 */
export async function markFavorites(timeline, items, on) {
  const todo = items.filter((it) => it.favorite !== on);
  /** @param {Item} it @param {boolean} value */
  const apply = (it, value) => {
    const t = timeline();
    const known = t?.byId.get(it.id);
    if (t && known) t.change({ ...known, favorite: value });
    else it.favorite = value;
  };
  for (const it of todo) apply(it, on);
  let failed = 0;
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const it = todo[next++];
      try {
        const fresh = await setFavorite(it.id, on);
        const t = timeline();
        if (t?.byId.has(fresh.id)) t.change(fresh);
      } catch (e) {
        failed++;
        apply(it, !on);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, todo.length) }, worker));
  if (failed) {
    const what = todo.length === 1 ? 'this item' : `${failed} of ${todo.length} items`;
    toast(`Couldn't ${on ? 'add' : 'remove'} ${what} ${on ? 'to' : 'from'} favorites. Check the connection and try again.`);
  }
  return failed;
}
