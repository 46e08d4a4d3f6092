// The shell: sign-in, the unit picker, navigation by permission, and the router. A screen's
// address is #/<unit code>/<section>/<...>; every screen module exports render(view).

import { api, ApiError, listAll } from './api.js';
import { completeSignIn, rememberUnit, signIn, signedIn, signOut, SignInError } from './auth.js';
import { h, show } from './dom.js';
import { LANGUAGES, language, loadLanguage, t } from './i18n.js';
import { button, problemBanner } from './ui.js';

/** Sections of a unit, the permission that shows them, and their screen module. */
export const SECTIONS = [
  { key: 'inbox', permission: 'cases:read', module: 'inbox' },
  { key: 'units', permission: 'tenants:read', module: 'units' },
  { key: 'access', permission: 'users:read', module: 'access' },
  { key: 'forms', permission: 'forms:read', module: 'forms' },
  { key: 'workflows', permission: 'workflows:read', module: 'workflows' },
  { key: 'reports', permission: 'reports:read', module: 'reports' },
  { key: 'audit', permission: 'audit:read', module: 'audit' },
];
const EXTRA_ROUTES = { cases: 'inbox' };

const root = document.getElementById('app');
const session = { me: null, units: new Map() };

/** The units the official can see, by code, with their parent codes. */
async function loadUnits() {
  const units = await listAll('tenants', {}, 5000);
  session.units.clear();  // in place: screens hold this map
  for (const unit of units) session.units.set(unit.code, unit);
}

export function ancestors(code) {
  const chain = [];
  let unit = session.units.get(code);
  while (unit) {
    chain.push(unit.code);
    unit = unit.parent ? session.units.get(unit.parent) : null;
  }
  return chain;
}

/** Permissions the official holds at `code`: grants there or above it. */
export function permissionsAt(code) {
  const above = new Set(ancestors(code));
  const held = new Set();
  for (const grant of session.me.grants) {
    if (above.has(grant.tenant)) grant.permissions.forEach((p) => held.add(p));
  }
  return held;
}

function homeUnit() {
  const granted = session.me.grants.map((g) => g.tenant).filter((c) => session.units.has(c));
  return granted.sort((a, b) => session.units.get(a).depth - session.units.get(b).depth)[0]
    || [...session.units.keys()][0];
}

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  return { unit: parts[0] || null, section: parts[1] || null, rest: parts.slice(2) };
}

export function go(...parts) {
  location.hash = `#/${parts.map(encodeURIComponent).join('/')}`;
}

function header(route, allowed) {
  const top = Math.min(...[...session.units.values()].map((unit) => unit.depth));
  const unitPicker = h('select', {
    id: 'unit-picker', 'aria-label': t('shell.unit'),
    onchange: (event) => go(event.target.value, route.section || 'units'),
  }, [...session.units.values()]
    .sort((a, b) => a.depth - b.depth || a.code.localeCompare(b.code))
    .map((unit) => h('option', { value: unit.code, selected: unit.code === route.unit },
      `${'\u00a0\u00a0'.repeat(unit.depth - top)}${unit.name} (${unit.code})`)));
  const languagePicker = h('select', {
    id: 'language-picker', 'aria-label': t('shell.language'),
    onchange: async (event) => { await loadLanguage(event.target.value); await render(); },
  }, LANGUAGES.map((lang) => h('option', { value: lang, selected: lang === language() }, t(`shell.language_${lang}`))));
  const nav = h('nav', { 'aria-label': t('shell.navigation') }, h('ul', {},
    SECTIONS.filter((s) => allowed.has(s.permission)).map((s) => h('li', {},
      h('a', {
        href: `#/${encodeURIComponent(route.unit)}/${s.key}`,
        'aria-current': route.section === s.key || EXTRA_ROUTES[route.section] === s.key ? 'page' : null,
      }, t(`shell.section_${s.key}`))))));
  return h('header', { class: 'shell' },
    button(t('shell.skip'), () => (document.querySelector('#main h1') || document.getElementById('main'))?.focus(), { class: 'skip' }),
    h('div', { class: 'brand' }, 'Nentang'),
    h('div', { class: 'pickers' }, unitPicker, languagePicker),
    h('div', { class: 'who' }, h('span', { id: 'who' }, session.me.name),
      button(t('shell.sign_out'), async () => { await signOut(); showSignedOut(); })),
    nav);
}

function showSignedOut() {
  show(root, h('main', { id: 'main', class: 'center' },
    h('h1', {}, t('shell.signed_out')),
    button(t('shell.sign_in'), () => signIn('#/'), { kind: 'primary' })));
}

function denied(route) {
  return h('div', { class: 'denied' }, h('h1', { tabindex: '-1' }, t('shell.no_access_title')),
    h('p', {}, t('shell.no_access', { unit: route.unit })));
}

let rendering = 0;

// Unsaved work: a screen registers a guard (view.guard(() => hasUnsavedChanges)); leaving it
// by the navigation, a link or the address asks first, inside the page.
let guard = null;
let currentHash = location.hash;
let leaving = false;

function askToLeave(target) {
  document.getElementById('leave-dialog')?.remove();
  const stay = button(t('shell.stay'), () => dialog.remove(), { kind: 'primary', id: 'leave-stay' });
  const dialog = h('div', { class: 'leave problem', role: 'alertdialog', id: 'leave-dialog',
    'aria-labelledby': 'leave-title', 'aria-describedby': 'leave-text' },
  h('strong', { id: 'leave-title' }, t('shell.unsaved_title')),
  h('p', { id: 'leave-text' }, t('shell.unsaved')),
  h('div', { class: 'row' }, stay, button(t('shell.leave'), () => {
    leaving = true;
    dialog.remove();
    location.hash = target;
  }, { id: 'leave-go' })));
  document.getElementById('main')?.prepend(dialog);
  stay.focus();
}

function navigated() {
  if (!leaving && guard?.()) {
    const target = location.hash;
    history.replaceState(null, '', currentHash || '#/');
    askToLeave(target);
    return;
  }
  leaving = false;
  currentHash = location.hash;
  render();
}

export async function render() {
  const ticket = ++rendering;
  guard = null;
  const route = parseRoute();
  if (!route.unit) {
    go(homeUnit(), 'inbox');
    return;
  }
  const visible = session.units.has(route.unit);
  const allowed = visible ? permissionsAt(route.unit) : new Set();
  if (visible) rememberUnit(route.unit);
  const section = SECTIONS.find((s) => s.key === (EXTRA_ROUTES[route.section] || route.section));
  if (visible && !route.section) {
    const first = SECTIONS.find((s) => allowed.has(s.permission));
    go(route.unit, first ? first.key : 'units');
    return;
  }
  const main = h('main', { id: 'main', tabindex: '-1' });
  show(root, header(route, allowed), main);
  if (!visible || !section || !allowed.has(section.permission)) {
    show(main, denied(route));
    return;
  }
  main.append(h('p', { class: 'loading' }, t('common.loading')));
  try {
    const screen = await import(`./screens/${section.module}.js`);
    if (ticket !== rendering) return;
    main.replaceChildren();
    await screen.render({
      unit: route.unit, section: route.section, rest: route.rest, main, me: session.me,
      units: session.units, can: (permission) => allowed.has(permission), permissionsAt, go,
      refresh: render, reloadUnits: loadUnits, guard: (unsaved) => { guard = unsaved; },
    });
    main.querySelector('h1')?.focus({ preventScroll: true });
  } catch (err) {
    if (ticket !== rendering) return;
    if (err instanceof ApiError && (err.status === 403 || err.status === 404)) {
      show(main, denied(route), problemBanner(err));
    } else {
      console.error(err);
      show(main, err instanceof ApiError ? problemBanner(err) : h('div', { class: 'problem', role: 'alert' }, String(err)));
    }
  }
}

async function start() {
  await loadLanguage();
  document.title = t('shell.title');
  try {
    if (location.pathname === '/admin/callback') await completeSignIn();
  } catch (err) {
    show(root, h('main', { id: 'main', class: 'center' }, h('h1', {}, t('shell.sign_in_failed')),
      h('p', { role: 'alert' }, err instanceof SignInError ? err.message : String(err)),
      button(t('shell.sign_in'), () => signIn('#/'), { kind: 'primary' })));
    return;
  }
  if (!signedIn()) {
    await signIn(location.hash || '#/');
    return;
  }
  session.me = await api.get('me');
  await loadUnits();
  window.addEventListener('hashchange', navigated);
  await render();
}

start();
