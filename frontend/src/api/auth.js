// The viewer token (docs/security.md): pasted on the sign-in screen, kept in sessionStorage (this
// tab only, gone when it closes), sent as `Authorization: Bearer` on REST and `auth.token` on
// Socket.IO. A 401 or a socket refused as unauthorized clears it and asks for a sign-in.
const KEY = 'pulse.viewerToken';
const listeners = new Set();
let needed = false;

function storage() {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage disabled: the token lives as long as the page
  }
}

let memory = null;

export function getToken() {
  return storage()?.getItem(KEY) ?? memory;
}

/** { token, needed }: needed is true once the backend asked for a token it did not get. */
export function authState() {
  return { token: getToken(), needed };
}

function changed() {
  const state = authState();
  for (const fn of listeners) fn(state);
}

export function signIn(token) {
  const t = token.trim();
  storage()?.setItem(KEY, t);
  memory = t;
  needed = false;
  changed();
}

/** The backend refused the token (or wanted one): forget it and ask for another. */
export function requireSignIn() {
  storage()?.removeItem(KEY);
  memory = null;
  needed = true;
  changed();
}

export function onAuthChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** For tests: no token, nothing asked. */
export function resetAuth() {
  storage()?.removeItem(KEY);
  memory = null;
  needed = false;
  changed();
}
