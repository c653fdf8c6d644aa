// The dashboard's REST client: JSON in and out, exact big integers, typed errors.
//
// Amounts are integers below 2^63 on the node, which a JavaScript number cannot hold
// exactly above 2^53: such numbers are read as BigInt (from the JSON source text), and
// request bodies carrying amounts are written as JSON text by the caller.

const TOKEN_KEY = 'ccoin.admin-token';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  toString() {
    return `${this.code}: ${this.message}`;
  }
}

/** The route, or the service behind it, does not exist on this node (yet): an older
 *  gateway answers 404 "no route", a node without p2p answers 503 p2p_unavailable. */
export function isMissing(err) {
  if (!(err instanceof ApiError)) return false;
  if (err.status === 404) return /^no route/i.test(err.message);
  if (err.status === 405 || err.status === 501) return true;
  return err.status === 503 && /unavailable|not_available/.test(err.code);
}

export function isNotFound(err) {
  return err instanceof ApiError && err.status === 404 && !isMissing(err);
}

// --- the admin token (kept for this tab only) ---------------------------------------------

export function adminToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

export function setAdminToken(value) {
  try {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: the token lasts until the page is left
  }
}

// --- JSON ----------------------------------------------------------------------------------

function reviver(_key, value, context) {
  if (typeof value === 'number' && !Number.isSafeInteger(value) && Number.isInteger(value)
      && context && /^-?\d+$/.test(context.source)) {
    return BigInt(context.source);
  }
  return value;
}

export function parseJSON(text) {
  return JSON.parse(text, reviver);
}

// --- requests ------------------------------------------------------------------------------

export async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  const token = adminToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'offline', 'the node does not answer');
  }
  const text = await response.text();
  let doc = null;
  try {
    doc = text ? parseJSON(text) : null;
  } catch {
    doc = null;
  }
  if (!response.ok) {
    const error = (doc && doc.error) || {};
    throw new ApiError(response.status, error.code || `http_${response.status}`,
      error.message || response.statusText || 'request failed');
  }
  return doc;
}

export const get = (path) => request('GET', path);
export const post = (path, body = {}) => request('POST', path, body);
