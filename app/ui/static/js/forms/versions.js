// A form's versions and the difference between two of them, told field by field and as the
// list of changes (the diff endpoint's JSON Patch) in words.

import { api, ApiError, unitPath } from '../api.js';
import { h, show } from '../dom.js';
import { t } from '../i18n.js';
import { button, field, problemBanner, select, table, when } from '../ui.js';

function shortJson(value) {
  if (value === undefined) return '';
  const textValue = JSON.stringify(value);
  return textValue.length > 160 ? `${textValue.slice(0, 157)}…` : textValue;
}

export function renderDiff(diff) {
  const summary = [
    ['added', diff.fields.added], ['removed', diff.fields.removed], ['changed', diff.fields.changed],
    ['now_required', diff.fields.now_required], ['no_longer_required', diff.fields.no_longer_required],
  ].filter(([, names]) => names.length);
  return h('section', { class: 'diff', 'aria-labelledby': 'diff-title' },
    h('h3', { id: 'diff-title' }, t('forms.diff_title', { a: diff.from, b: diff.to })),
    diff.same ? h('p', { class: 'notice ok' }, t('forms.diff_same')) : null,
    summary.length ? h('dl', { class: 'facts diff-summary' }, summary.map(([key, names]) => [
      h('dt', {}, t(`forms.diff_${key}`)),
      h('dd', { dataset: { change: key } }, names.map((n, i) => [i ? ', ' : '', h('code', {}, n)]))])) : null,
    diff.patch.length ? table([
      { label: t('forms.diff_op'), cell: (p) => h('span', { class: `badge op-${p.op}` }, t(`forms.diff_op_${p.op}`)) },
      { label: t('forms.diff_path'), cell: (p) => h('code', {}, p.path) },
      { label: t('forms.diff_value'), cell: (p) => (p.from ? [t('forms.diff_from_path'), ' ', h('code', {}, p.from)] : h('code', {}, shortJson(p.value))) },
    ], diff.patch, { caption: t('forms.diff_changes') }) : null);
}

export async function renderVersions(container, view, key) {
  const path = unitPath(view.unit, 'forms', key, 'versions');
  const versions = await api.get(path);
  const out = h('div', { 'aria-live': 'polite', id: 'diff-result' });
  const numbers = versions.map((v) => [String(v.number), `v${v.number} (${t(`forms.status_${v.status}`)})`]);
  const sorted = [...numbers].reverse();
  const from = field(t('forms.diff_from'), select(sorted, { value: sorted[Math.max(0, sorted.length - 2)]?.[0], id: 'diff-a' }));
  const to = field(t('forms.diff_to'), select(sorted, { value: sorted[sorted.length - 1]?.[0], id: 'diff-b' }));
  const compare = async () => {
    try {
      const diff = await api.get(`${path}/${from.input.value}/diff/${to.input.value}`);
      show(out, renderDiff(diff));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      show(out, problemBanner(err));
    }
  };
  show(container,
    h('h2', {}, t('forms.versions_title')),
    table([
      { label: t('forms.version'), cell: (v) => `v${v.number}` },
      { label: t('common.status'), cell: (v) => h('span', { class: `badge status-${v.status}` }, t(`forms.status_${v.status}`)) },
      { label: t('forms.col_created'), cell: (v) => [when(v.created_at), v.created_by ? ` · ${v.created_by}` : ''] },
      { label: t('forms.col_published'), cell: (v) => [when(v.published_at), v.published_by ? ` · ${v.published_by}` : ''] },
      { label: t('forms.digest'), cell: (v) => h('code', { title: v.digest }, v.digest.slice(0, 12)) },
    ], versions, { caption: t('forms.versions_caption', { key }) }),
    versions.length > 1 ? h('div', { class: 'card' },
      h('h3', {}, t('forms.diff_heading')),
      h('div', { class: 'row' }, from.wrap, to.wrap, button(t('forms.diff_compare'), compare, { id: 'diff-compare' })),
      out) : h('p', { class: 'muted' }, t('forms.diff_need_two')));
}
