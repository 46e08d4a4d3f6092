// Signing the official in: authorization code + PKCE (RFC 7636) against the platform's own
// authorization server, which offers local accounts (with TOTP) and the unit's identity
// provider. Tokens live in this tab's sessionStorage, never in a cookie, and are sent only as
// a bearer header: no request from another site can carry the session.

import { language } from './i18n.js';

export const CLIENT_ID = 'nentang-ui';
const SESSION_KEY = 'nentang.session';
const PENDING_KEY = 'nentang.pending-sign-in';
const LAST_UNIT_KEY = 'nentang.last-unit';
const RENEW_BEFORE_MS = 30_000;
let renewing = null;

function base64url(bytes) {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(bytes) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

export function redirectUri() {
  return `${location.origin}/admin/callback`;
}

/** Go to the sign-in page; come back to `returnTo` (a fragment) afterwards. */
export async function signIn(returnTo = location.hash, unit = localStorage.getItem(LAST_UNIT_KEY)) {
  const verifier = randomString(32);
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  const state = randomString(16);
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ verifier, state, returnTo }));
  const params = new URLSearchParams({
    response_type: 'code', client_id: CLIENT_ID, redirect_uri: redirectUri(),
    code_challenge: base64url(new Uint8Array(digest)), code_challenge_method: 'S256', state,
    ui_locales: language(),
  });
  if (unit) params.set('tenant', unit);
  location.assign(`/oauth/authorize?${params}`);
}

export class SignInError extends Error {}

/** On /admin/callback: check the state, redeem the code, keep the tokens. */
export async function completeSignIn() {
  const params = new URLSearchParams(location.search);
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) || 'null');
  sessionStorage.removeItem(PENDING_KEY);
  if (params.get('error')) throw new SignInError(params.get('error_description') || params.get('error'));
  if (!pending || params.get('state') !== pending.state) throw new SignInError('state');
  const response = await fetch('/oauth/token', {
    method: 'POST', credentials: 'omit',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', client_id: CLIENT_ID, code: params.get('code') || '',
      redirect_uri: redirectUri(), code_verifier: pending.verifier,
    }),
  });
  if (!response.ok) throw new SignInError((await response.json()).detail || 'token');
  keep(await response.json());
  history.replaceState(null, '', `/admin${pending.returnTo || '#/'}`);
}

function keep(tokens) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify({
    access: tokens.access_token, refresh: tokens.refresh_token,
    expires: Date.now() + tokens.expires_in * 1000,
  }));
}

function saved() {
  return JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
}

export function signedIn() {
  return saved() !== null;
}

export function rememberUnit(code) {
  localStorage.setItem(LAST_UNIT_KEY, code);
}

async function renew(session) {
  const response = await fetch('/oauth/token', {
    method: 'POST', credentials: 'omit',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', client_id: CLIENT_ID, refresh_token: session.refresh }),
  });
  if (!response.ok) {
    sessionStorage.removeItem(SESSION_KEY);
    return null;
  }
  keep(await response.json());
  return saved().access;
}

/** A valid access token (renewed shortly before it expires), or null when signed out. */
export async function accessToken() {
  const session = saved();
  if (!session) return null;
  if (session.expires - Date.now() > RENEW_BEFORE_MS || !session.refresh) return session.access;
  renewing ??= renew(session).finally(() => { renewing = null; });
  return renewing;
}

/** End the session here and at the server (RFC 7009). */
export async function signOut() {
  const session = saved();
  sessionStorage.removeItem(SESSION_KEY);
  if (session?.refresh) {
    await fetch('/oauth/revoke', {
      method: 'POST', credentials: 'omit',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: CLIENT_ID, token: session.refresh }),
    });
  }
}
