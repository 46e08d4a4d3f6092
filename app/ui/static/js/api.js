// The public REST API, as the UI calls it: bearer token, JSON in and out, and RFC 9457
// problems turned into ApiError with the offending fields' JSON Pointers.

import { accessToken, signIn } from './auth.js';
import { language } from './i18n.js';

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.code = problem.code || null;
    this.errors = problem.errors || [];
  }
}

function url(path, query) {
  const target = new URL(path.startsWith('/') ? path : `/api/v1/${path}`, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === '') continue;
    for (const item of [value].flat()) target.searchParams.append(key, item);
  }
  return target;
}

/** Send a request; returns the parsed body, or the Response itself with {raw: true}. */
export async function request(method, path, { body, query, headers = {}, raw = false } = {}) {
  const sent = { Accept: 'application/json, application/problem+json', 'Accept-Language': language(), ...headers };
  const token = await accessToken();
  if (token) sent.Authorization = `Bearer ${token}`;
  let payload;
  if (body instanceof Blob || body instanceof ArrayBuffer) {
    payload = body;
  } else if (body !== undefined) {
    sent['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const response = await fetch(url(path, query), {
    method, headers: sent, body: payload, credentials: 'omit', cache: 'no-store',
  });
  if (response.status === 401 && token) {
    await signIn();
    throw new ApiError(401, { title: 'Unauthorized' });
  }
  if (!response.ok) {
    let problem = {};
    try { problem = await response.json(); } catch { problem = { title: response.statusText }; }
    throw new ApiError(response.status, problem);
  }
  if (raw) return response;
  if (response.status === 204) return null;
  const type = response.headers.get('content-type') || '';
  return type.includes('json') ? response.json() : response.text();
}

export const api = {
  get: (path, query) => request('GET', path, { query }),
  post: (path, body, options = {}) => request('POST', path, { ...options, body }),
  put: (path, body, options = {}) => request('PUT', path, { ...options, body }),
  patch: (path, body, options = {}) => request('PATCH', path, { ...options, body }),
  delete: (path, options = {}) => request('DELETE', path, options),
};

/** A resource with its ETag (for If-Match on the next change). */
export async function getWithEtag(path) {
  const response = await request('GET', path, { raw: true });
  return { data: await response.json(), etag: response.headers.get('ETag') };
}

/** Every item of a list, following cursor pages (up to `max`). */
export async function listAll(path, query = {}, max = 2000) {
  const items = [];
  let cursor = null;
  do {
    const page = await api.get(path, { ...query, cursor, limit: query.limit || 200 });
    if (Array.isArray(page)) return page;  // a list the API does not paginate
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

/** Download a file from the API (the browser saves it under the server's file name). */
export async function download(path, query) {
  const response = await request('GET', path, { query, raw: true, headers: { Accept: '*/*' } });
  const disposition = response.headers.get('content-disposition') || '';
  const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
  const plain = /filename="?([^";]+)"?/i.exec(disposition);
  const name = star ? decodeURIComponent(star[1]) : plain ? plain[1] : 'download';
  const link = document.createElement('a');
  link.href = URL.createObjectURL(await response.blob());
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  return name;
}

export const unitPath = (unit, ...parts) => ['tenants', encodeURIComponent(unit), ...parts.map(encodeURIComponent)].join('/');
