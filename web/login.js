// @ts-check
// The door: asks for the household password (or, on first run, to choose one) before the gallery
// opens, and again whenever the server says the session ended.

/** @type {Promise<void>|null} */
let shown = null;

/**
 * Resolves when the gallery may load: auth is off, the session is valid, or we are offline (the
 * service worker then shows what was seen before). Otherwise shows the form and never resolves:
 * a successful login reloads the page.
 * @returns {Promise<void>}
 */
export async function ensureSession() {
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
 * Shows the login (or first-run) form over everything.
 * @param {boolean} setup whether no password exists yet and one must be chosen
 * @returns {Promise<void>} never resolves; the page reloads after a login
 */
export function showForm(setup) {
  if (shown) return shown;
  shown = new Promise(() => {});
  const dialog = document.createElement('div');
  dialog.className = 'door';
  dialog.setAttribute('role', 'dialog');
  dialog.setAttribute('aria-modal', 'true');
  dialog.setAttribute('aria-labelledby', 'door-title');
  const form = document.createElement('form');
  form.className = 'door-card';
  form.noValidate = true;
  const title = document.createElement('h1');
  title.id = 'door-title';
  title.textContent = setup ? 'Choose a password' : 'Photos';
  const hint = document.createElement('p');
  hint.className = 'door-hint';
  hint.textContent = setup
    ? 'This gallery is private. Choose the password everyone in your household will use (8 characters or more).'
    : 'This gallery is private. Enter the password to see it.';
  form.append(title, hint);
  /** @param {string} label @param {AutoFill} autocomplete @returns {HTMLInputElement} */
  const field = (label, autocomplete) => {
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
  };
  const password = field('Password', setup ? 'new-password' : 'current-password');
  const again = setup ? field('Password again', 'new-password') : null;
  const error = document.createElement('p');
  error.className = 'door-error';
  error.setAttribute('role', 'alert');
  const submit = document.createElement('button');
  submit.type = 'submit';
  submit.className = 'door-submit';
  submit.textContent = setup ? 'Set password and open' : 'Open';
  form.append(error, submit);
  dialog.append(form);
  document.body.append(dialog);
  document.body.classList.add('door-open');
  password.focus();

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    if (setup && password.value.length < 8) {
      error.textContent = 'Use at least 8 characters.';
      return;
    }
    if (again && again.value !== password.value) {
      error.textContent = 'The two passwords differ.';
      return;
    }
    submit.disabled = true;
    try {
      const res = await fetch(setup ? '/api/setup' : '/api/login', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        credentials: 'same-origin',
        body: JSON.stringify({ password: password.value }),
      });
      if (res.ok) {
        location.reload();
        return;
      }
      const body = await res.json().catch(() => ({}));
      if (body.code === 'password_already_set') {
        location.reload();
        return;
      }
      error.textContent = body.code === 'wrong_password' ? 'Wrong password.' : body.error || `Error ${res.status}`;
      password.select();
    } catch {
      error.textContent = 'The server cannot be reached.';
    } finally {
      submit.disabled = false;
    }
  });
  return shown;
}

// The API says the session ended (expired, or the password was changed elsewhere).
window.addEventListener('spis:login-required', () => {
  showForm(false);
});
