// Forms: the unit's own and inherited forms, creating a form or a variant of an inherited
// one, and the form builder (#/<unit>/forms/<key>[/<tab>]).

import { api, ApiError, listAll, unitPath } from '../api.js';
import { append, h, show } from '../dom.js';
import { t } from '../i18n.js';
import { renderBuilder } from '../forms/builder.js';
import { DRAFT } from '../forms/model.js';
import { button, clearErrors, field, heading, input, problemBanner, showProblem, table, when } from '../ui.js';

function createForm(view) {
  const key = field(t('forms.key'), input({ name: 'key', autocomplete: 'off', id: 'new-form-key' }),
    { pointer: '/key', required: true, help: t('forms.key_help') });
  const titleVi = field(t('forms.form_title_vi'), input({ name: 'title_vi', id: 'new-form-title-vi' }), { pointer: '/title/vi', required: true });
  const titleEn = field(t('forms.form_title_en'), input({ name: 'title_en', id: 'new-form-title-en' }), { pointer: '/title/en', required: true });
  const form = h('form', {
    class: 'card', 'aria-labelledby': 'create-form-title', novalidate: true,
    onsubmit: async (event) => {
      event.preventDefault();
      clearErrors(form);
      const body = {
        kind: 'Form', key: key.input.value.trim(),
        title: { vi: titleVi.input.value.trim(), en: titleEn.input.value.trim() },
        schema: { $schema: DRAFT, type: 'object', properties: {} },
        ui_schema: { fields: {} },
      };
      try {
        const created = await api.post(unitPath(view.unit, 'forms'), body);
        view.go(view.unit, 'forms', created.key);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        showProblem(form, err);
      }
    },
  },
  h('h2', { id: 'create-form-title' }, t('forms.create_title')),
  h('div', { class: 'row' }, key.wrap, titleVi.wrap, titleEn.wrap),
  button(t('forms.create'), null, { kind: 'primary', type: 'submit', id: 'new-form-create' }));
  return form;
}

async function createVariant(view, key, where) {
  try {
    const inherited = await api.get(unitPath(view.unit, 'forms', key));
    await api.post(unitPath(view.unit, 'forms'), inherited.definition);
    view.go(view.unit, 'forms', key);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    show(where, problemBanner(err));
  }
}

async function renderList(view) {
  const forms = await listAll(unitPath(view.unit, 'forms'));
  const status = h('div', { 'aria-live': 'polite' });
  const writable = view.can('forms:write');
  append(view.main, [
    heading(t('forms.title')),
    h('p', { class: 'help' }, t('forms.intro')),
    status,
    table([
      { label: t('forms.key'), cell: (f) => h('a', { href: `#/${encodeURIComponent(view.unit)}/forms/${encodeURIComponent(f.key)}` }, f.key) },
      { label: t('forms.where'), cell: (f) => (f.inherited
        ? h('span', { class: 'badge fb-inherited' }, t('forms.inherited_from', { unit: f.tenant || '—' }))
        : t('forms.own')) },
      { label: t('common.status'), cell: (f) => [h('span', { class: `badge status-${f.status}` }, t(`forms.status_${f.status}`)),
        f.needs_review ? [' ', h('span', { class: 'badge sla-due_soon' }, t('forms.review'))] : null] },
      { label: t('forms.version'), cell: (f) => [f.latest_version ? `v${f.latest_version}` : '—',
        f.draft_version ? ` · ${t('forms.draft_version', { n: f.draft_version })}` : ''] },
      { label: t('common.updated_at'), cell: (f) => when(f.updated_at) },
      { label: t('common.actions'), cell: (f) => (f.inherited && writable
        ? button(t('forms.create_variant'), () => createVariant(view, f.key, status), { class: 'link', 'aria-label': t('forms.create_variant_of', { key: f.key }) })
        : '') },
    ], forms, { caption: t('forms.list_caption'), empty: t('forms.none') }),
    writable ? createForm(view) : null]);
}

export async function render(view) {
  const [key, tab] = view.rest;
  if (key) await renderBuilder(view, key, tab);
  else await renderList(view);
}
