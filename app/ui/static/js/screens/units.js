// The unit tree: browse the subtree you can see, create a unit with its first admin, suspend
// or resume it (If-Match), and see what a unit inherits from above (forms, workflows, signing
// set-up, identity provider).

import { api, ApiError, getWithEtag, listAll, unitPath } from '../api.js';
import { h, show } from '../dom.js';
import { t } from '../i18n.js';
import { button, clearErrors, field, heading, input, notice, problemBanner, select, showProblem, table, when } from '../ui.js';

const CHILD_KIND = { ministry: 'province', province: 'commune', commune: 'agency', agency: 'agency' };

function tree(view) {
  const byParent = new Map();
  for (const unit of view.units.values()) {
    const list = byParent.get(unit.parent) || [];
    list.push(unit);
    byParent.set(unit.parent, list);
  }
  const roots = [...view.units.values()].filter((u) => !u.parent || !view.units.has(u.parent));
  const branch = (units) => h('ul', {}, units.sort((a, b) => a.code.localeCompare(b.code)).map((unit) => h('li', {},
    h('a', { href: `#/${encodeURIComponent(unit.code)}/units`, 'aria-current': unit.code === view.unit ? 'true' : null },
      unit.name), ' ', h('span', { class: 'muted' }, `${unit.code} · ${t(`units.kind_${unit.kind}`)}`),
    unit.status !== 'active' ? [' ', h('span', { class: 'badge sla-overdue' }, t(`common.status_${unit.status}`))] : null,
    byParent.has(unit.code) ? branch(byParent.get(unit.code)) : null)));
  return h('nav', { class: 'tree card', 'aria-label': t('units.tree') }, branch(roots));
}

function createForm(view, parent, onCreated) {
  const code = field(t('units.code'), input({ name: 'code', autocomplete: 'off' }), { pointer: '/code', required: true, help: t('units.code_help') });
  const name = field(t('units.name'), input({ name: 'name' }), { pointer: '/name', required: true });
  const kind = field(t('units.kind'), select(['province', 'commune', 'agency', 'ministry'].map((k) => [k, t(`units.kind_${k}`)]),
    { name: 'kind', value: CHILD_KIND[parent.kind] }), { pointer: '/kind' });
  const withAdmin = h('input', { type: 'checkbox', id: 'with-admin', checked: true });
  const username = field(t('units.admin_username'), input({ name: 'admin_username', autocomplete: 'off' }), { pointer: '/admin/username', required: true });
  const display = field(t('units.admin_name'), input({ name: 'admin_display_name' }), { pointer: '/admin/display_name', required: true });
  const email = field(t('units.admin_email'), input({ name: 'admin_email', type: 'email' }), { pointer: '/admin/email' });
  const password = field(t('units.admin_password'), input({ name: 'admin_password', type: 'password', autocomplete: 'new-password' }),
    { pointer: '/admin/password', help: t('units.admin_password_help') });
  const adminBlock = h('fieldset', {}, h('legend', {}, t('units.first_admin')), username.wrap, display.wrap, email.wrap, password.wrap);
  withAdmin.addEventListener('change', () => { adminBlock.hidden = !withAdmin.checked; });
  const result = h('div', { 'aria-live': 'polite' });
  const form = h('form', {
    class: 'card', 'aria-labelledby': 'create-unit-title', novalidate: true,
    onsubmit: async (event) => {
      event.preventDefault();
      clearErrors(form);
      const body = { code: code.input.value.trim().toUpperCase(), name: name.input.value.trim(), kind: kind.input.value, parent: parent.code };
      if (withAdmin.checked) {
        body.admin = { username: username.input.value.trim(), display_name: display.input.value.trim() };
        if (email.input.value.trim()) body.admin.email = email.input.value.trim();
        if (password.input.value) body.admin.password = password.input.value;
      }
      try {
        const created = await api.post('tenants', body);
        await view.reloadUnits();
        onCreated();
        show(result, notice(t('units.created', { code: created.code })),
          created.admin?.initial_password ? h('p', { class: 'notice warn', role: 'status' },
            t('units.initial_password', { username: created.admin.username }), ' ',
            h('code', { id: 'initial-password' }, created.admin.initial_password)) : null,
          h('a', { href: `#/${encodeURIComponent(created.code)}/units` }, t('units.open', { code: created.code })));
        form.reset();
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        showProblem(form, err);
      }
    },
  },
  h('h2', { id: 'create-unit-title' }, t('units.create_title', { parent: parent.name })),
  code.wrap, name.wrap, kind.wrap,
  h('div', { class: 'field inline' }, withAdmin, h('label', { for: 'with-admin' }, t('units.with_admin'))),
  adminBlock,
  button(t('units.create'), null, { kind: 'primary', type: 'submit' }));
  return h('div', {}, form, result);
}

async function inheritance(view) {
  const path = unitPath(view.unit);
  const box = h('section', { class: 'card', 'aria-labelledby': 'inherits-title' }, h('h2', { id: 'inherits-title' }, t('units.inherits')));
  const [forms, workflows, signing, idp] = await Promise.all([
    view.can('forms:read') ? listAll(`${path}/forms`).catch(() => []) : [],
    view.can('workflows:read') ? listAll(`${path}/workflows`).catch(() => []) : [],
    api.get(`${path}/signing`).catch(() => null),
    view.can('idp:read') ? api.get(`${path}/identity-provider`).catch(() => null) : null,
  ]);
  const own = (item) => (item.inherited ? t('units.from', { unit: item.tenant || '—' }) : t('units.own'));
  box.append(
    h('h3', {}, t('units.forms')),
    table([{ label: t('common.code'), cell: (f) => f.key }, { label: t('units.where'), cell: own },
      { label: t('common.status'), cell: (f) => f.status }], forms),
    h('h3', {}, t('units.workflows')),
    table([{ label: t('common.code'), cell: (w) => w.key }, { label: t('units.where'), cell: own },
      { label: t('common.status'), cell: (w) => w.status }], workflows),
    h('h3', {}, t('units.signing')),
    h('p', {}, signing?.effective ? t('units.signing_in_force', { provider: signing.effective.provider, unit: signing.effective.tenant || view.unit })
      : t('units.none')),
    h('h3', {}, t('units.idp')),
    h('p', {}, idp ? t('units.idp_in_force', { issuer: idp.issuer || '', unit: idp.tenant || view.unit }) : t('units.none')));
  return box;
}

export async function render(view) {
  const { data: unit, etag } = await getWithEtag(unitPath(view.unit));
  const status = h('div', { 'aria-live': 'polite' });
  const suspend = view.can('tenants:write') && unit.depth > 0 ? button(
    unit.status === 'active' ? t('units.suspend') : t('units.resume'),
    async () => {
      try {
        await api.patch(unitPath(view.unit), { status: unit.status === 'active' ? 'suspended' : 'active' }, { headers: { 'If-Match': etag } });
        await view.reloadUnits();
        await view.refresh();
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        show(status, problemBanner(err));
      }
    }, { kind: unit.status === 'active' ? 'danger' : 'secondary', id: 'suspend-unit' }) : null;
  let unitTree = tree(view);
  const redrawTree = () => { const fresh = tree(view); unitTree.replaceWith(fresh); unitTree = fresh; };
  view.main.append(
    heading(`${unit.name} (${unit.code})`, suspend),
    status,
    h('div', { class: 'columns' },
      unitTree,
      h('div', {},
        h('section', { class: 'card' }, h('dl', { class: 'facts' },
          h('dt', {}, t('units.kind')), h('dd', {}, t(`units.kind_${unit.kind}`)),
          h('dt', {}, t('common.status')), h('dd', { id: 'unit-status' }, t(`common.status_${unit.status}`)),
          h('dt', {}, t('units.parent')), h('dd', {}, unit.parent || '—'),
          h('dt', {}, t('common.created_at')), h('dd', {}, when(unit.created_at)))),
        view.can('tenants:write') && unit.status === 'active' ? createForm(view, unit, redrawTree) : null,
        await inheritance(view))));
}
