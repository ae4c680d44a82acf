// @ts-check
// The door: asks for the household password (or, on first run, to choose one) before the gallery
// opens, and again whenever the server says the session ended. A share link's password and its
// "this link has ended" page use the same door.

/** @type {Promise<void>|null} */
let shown = null;

/**
 * Resolves when the gallery may load: auth is off, the session is valid, or we are offline (the
 * service worker then shows what was seen before). Otherwise shows the form and never resolves:
 * a successful login reloads the page.
 * @returns {Promise<void>}
 */
export async function ensureSession() {
  // The server marks the page it sends a logged-in household (one round trip fewer).
  if (document.documentElement.dataset.session === 'in') return;
  let state;
  try {
    const res = await fetch('/api/session', { cache: 'no-store', credentials: 'same-origin' });
    state = await res.json();
  } catch {
    return;
  }
  if (!state || !state.required || state.logged_in) return;
  await showForm(Boolean(state.setup));
}

/**
 * A full-page card over everything: a title, a hint, password fields and a button. `submit`
 * gets the fields' values and answers an error to show, or nothing when it is done (it then
 * moves on itself: a reload, or removing the door). Without fields it is a notice.
 * @param {{title: string, hint: string, fields?: {label: string, autocomplete: AutoFill}[],
 *   button?: string, submit?: (values: string[]) => Promise<string|void>}} spec
 * @returns {{remove: () => void}}
 */
export function openDoor({ title, hint, fields = [], button = 'Open', submit }) {
  const dialog = document.createElement('div');
  dialog.className = 'door';
  dialog.setAttribute('role', 'dialog');
  dialog.setAttribute('aria-modal', 'true');
  dialog.setAttribute('aria-labelledby', 'door-title');
  const form = document.createElement('form');
  form.className = 'door-card';
  form.noValidate = true;
  const h1 = document.createElement('h1');
  h1.id = 'door-title';
  h1.textContent = title;
  const p = document.createElement('p');
  p.className = 'door-hint';
  p.textContent = hint;
  form.append(h1, p);
  const inputs = fields.map(({ label, autocomplete }) => {
    const l = document.createElement('label');
    l.className = 'door-field';
    const span = document.createElement('span');
    span.textContent = label;
    const input = document.createElement('input');
    input.type = 'password';
    input.required = true;
    input.autocomplete = autocomplete;
    l.append(span, input);
    form.append(l);
    return input;
  });
  const error = document.createElement('p');
  error.className = 'door-error';
  error.setAttribute('role', 'alert');
  form.append(error);
  if (submit) {
    const go = document.createElement('button');
    go.type = 'submit';
    go.className = 'door-submit';
    go.textContent = button;
    form.append(go);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.textContent = '';
      go.disabled = true;
      try {
        const why = await submit(inputs.map((i) => i.value));
        if (why) {
          error.textContent = why;
          inputs[0]?.select();
        }
      } catch {
        error.textContent = 'The server cannot be reached.';
      } finally {
        go.disabled = false;
      }
    });
  }
  dialog.append(form);
  document.body.append(dialog);
  document.body.classList.add('door-open');
  inputs[0]?.focus();
  return {
    remove() {
      dialog.remove();
      document.body.classList.remove('door-open');
    },
  };
}

/**
 * Shows the login (or first-run) form over everything.
 * @param {boolean} setup whether no password exists yet and one must be chosen
 * @returns {Promise<void>} never resolves; the page reloads after a login
 */
export function showForm(setup) {
  if (shown) return shown;
  shown = new Promise(() => {});
  openDoor({
    title: setup ? 'Choose a password' : 'Photos',
    hint: setup
      ? 'This gallery is private. Choose the password everyone in your household will use (8 characters or more).'
      : 'This gallery is private. Enter the password to see it.',
    fields: setup
      ? [{ label: 'Password', autocomplete: 'new-password' }, { label: 'Password again', autocomplete: 'new-password' }]
      : [{ label: 'Password', autocomplete: 'current-password' }],
    button: setup ? 'Set password and open' : 'Open',
    async submit([password, again]) {
      if (setup && password.length < 8) return 'Use at least 8 characters.';
      if (setup && again !== password) return 'The two passwords differ.';
      const res = await fetch(setup ? '/api/setup' : '/api/login', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        credentials: 'same-origin',
        body: JSON.stringify({ password }),
      });
      const body = res.ok ? {} : await res.json().catch(() => ({}));
      if (res.ok || body.code === 'password_already_set') {
        location.reload();
        return;
      }
      return body.code === 'wrong_password' ? 'Wrong password.' : body.error || `Error ${res.status}`;
    },
  });
  return shown;
}

// The API says the session ended (expired, or the password was changed elsewhere).
window.addEventListener('spis:login-required', () => {
  showForm(false);
});
