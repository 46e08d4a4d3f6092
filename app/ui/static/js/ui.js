// Shared pieces of every screen: labelled fields whose errors are tied to them, problem
// banners, tables, badges. Each input carries data-pointer (a JSON Pointer into the request
// body), so an API problem's errors land on the field they are about.

import { h, uid } from './dom.js';
import { t, formatDateTime } from './i18n.js';

/** A labelled field: {wrap, input, error}. `input` gets an id, aria-describedby and the
 * pointer of the request body it fills. */
export function field(label, input, { help, pointer, required } = {}) {
  input.id ||= uid('field');
  const error = h('p', { class: 'field-error', id: `${input.id}-error`, hidden: true });
  const described = [error.id];
  let helpEl = null;
  if (help) {
    helpEl = h('p', { class: 'help', id: `${input.id}-help` }, help);
    described.unshift(helpEl.id);
  }
  input.setAttribute('aria-describedby', described.join(' '));
  if (pointer !== undefined) input.dataset.pointer = pointer;
  if (required) input.required = true;
  const wrap = h('div', { class: 'field' },
    h('label', { for: input.id }, label, required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null),
    input, helpEl, error);
  return { wrap, input, error };
}

export const input = (attrs = {}) => h('input', { type: 'text', ...attrs });

export function select(options, attrs = {}) {
  return h('select', attrs, options.map(([value, label]) => h('option', { value, selected: value === attrs.value }, label)));
}

export function button(label, onclick, { kind = 'secondary', type = 'button', ...attrs } = {}) {
  return h('button', { type, class: kind, onclick, ...attrs }, label);
}

/** Clear the errors shown in `scope`. */
export function clearErrors(scope) {
  for (const el of scope.querySelectorAll('[aria-invalid="true"]')) el.removeAttribute('aria-invalid');
  for (const el of scope.querySelectorAll('.field-error')) { el.hidden = true; el.textContent = ''; }
  for (const el of scope.querySelectorAll('.problem')) el.remove();
}

function errorText(error) {
  return error.detail_vi && document.documentElement.lang === 'vi' ? error.detail_vi : error.detail;
}

/** Show an API error in `scope`: a summary banner at `where` (default: top of scope), and
 * each field error next to the input whose data-pointer matches (or a parent pointer).
 * Returns the banner. */
export function showProblem(scope, err, where = scope, prefix = '') {
  clearErrors(scope);
  const unplaced = [];
  for (const error of err.errors || []) {
    const pointer = error.pointer ?? (error.parameter ? `/${error.parameter}` : null);
    const target = pointer === null ? null : findField(scope, prefix, pointer);
    if (target) {
      target.setAttribute('aria-invalid', 'true');
      const box = scope.querySelector(`#${CSS.escape(target.id)}-error`);
      if (box) {
        box.hidden = false;
        box.textContent = box.textContent ? `${box.textContent} ${errorText(error)}` : errorText(error);
        continue;
      }
    }
    unplaced.push(error);
  }
  const banner = h('div', { class: 'problem', role: 'alert' },
    h('strong', {}, problemTitle(err)),
    err.problem?.detail && !err.errors?.length ? h('p', {}, err.problem.detail) : null,
    unplaced.length ? h('ul', {}, unplaced.map((e) => h('li', { dataset: { pointer: e.pointer ?? '' } },
      e.pointer ? h('code', {}, e.pointer) : null, ' ', errorText(e)))) : null);
  where.prepend(banner);
  const first = scope.querySelector('[aria-invalid="true"]');
  (first || banner).focus?.();
  return banner;
}

function findField(scope, prefix, pointer) {
  let candidate = pointer;
  while (candidate) {
    const found = scope.querySelector(`[data-pointer="${CSS.escape(prefix + candidate)}"]`)
      || scope.querySelector(`[data-pointer="${CSS.escape(candidate)}"]`);
    if (found) return found;
    candidate = candidate.slice(0, Math.max(0, candidate.lastIndexOf('/')));
  }
  return null;
}

export function problemTitle(err) {
  if (err.status === 412) return t('common.conflict');
  if (err.status === 403) return t('common.forbidden');
  if (err.status === 404) return t('common.not_found');
  return err.problem?.title || err.message;
}

/** A banner for an error that is not about fields (or any error, when no form is near). */
export function problemBanner(err) {
  return h('div', { class: 'problem', role: 'alert' }, h('strong', {}, problemTitle(err)),
    err.problem?.detail ? h('p', {}, err.problem.detail) : null);
}

export function notice(message, kind = 'ok') {
  return h('p', { class: `notice ${kind}`, role: 'status' }, message);
}

/** A table: columns [{label, cell: row => node}] and rows. */
export function table(columns, rows, { caption, empty } = {}) {
  if (!rows.length) return h('p', { class: 'empty' }, empty || t('common.empty'));
  return h('table', {},
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.label)))),
    h('tbody', {}, rows.map((row) => h('tr', {}, columns.map((c) => h('td', {}, c.cell(row)))))));
}

export function when(iso) {
  return iso ? h('time', { datetime: iso }, formatDateTime(iso)) : '';
}

/** The SLA badge of a case or task: on time, due soon, overdue (or paused). */
export function slaBadge(urgency) {
  const value = urgency || 'none';
  return h('span', { class: `badge sla-${value}` }, t(`common.sla_${value}`));
}

export function heading(title, ...actions) {
  return h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, title), h('div', { class: 'actions' }, actions));
}

let refocusTab = false;

/** A tab list (WAI-ARIA tabs): arrow keys move between tabs and pick them. When picking
 * re-renders the screen, the new tab list takes the focus back. */
export function tabs(names, current, onpick) {
  const list = h('div', { class: 'tabs', role: 'tablist' });
  for (const [key, label] of names) {
    list.append(h('button', {
      type: 'button', role: 'tab', 'aria-selected': String(key === current), id: `tab-${key}`,
      tabindex: key === current ? '0' : '-1', onclick: () => onpick(key),
    }, label));
  }
  list.addEventListener('keydown', (event) => {
    if (!['ArrowLeft', 'ArrowRight'].includes(event.key)) return;
    event.preventDefault();
    const buttons = [...list.querySelectorAll('[role=tab]')];
    const index = buttons.indexOf(document.activeElement);
    const next = buttons[(index + (event.key === 'ArrowRight' ? 1 : buttons.length - 1)) % buttons.length];
    refocusTab = true;
    next.focus();
    next.click();
  });
  if (refocusTab) {
    refocusTab = false;
    requestAnimationFrame(() => list.querySelector('[aria-selected="true"]')?.focus());
  }
  return list;
}
