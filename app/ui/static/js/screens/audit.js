// The unit's audit trail (hash-chained; oldest first, a page at a time) and the chain check.

import { api, ApiError, unitPath } from '../api.js';
import { h, show } from '../dom.js';
import { t } from '../i18n.js';
import { button, heading, notice, problemBanner, table, when } from '../ui.js';

const PAGE = 100;

function summary(record) {
  const after = record.after ? JSON.stringify(record.after) : '';
  return after.length > 160 ? `${after.slice(0, 160)}…` : after;
}

export async function render(view) {
  const path = unitPath(view.unit, 'audit');
  const result = h('div', { 'aria-live': 'polite', id: 'verify-result' });
  const rows = [];
  const body = h('div', {});
  let cursor = null;
  const more = button(t('audit.more'), () => load(), { id: 'audit-more' });
  const load = async () => {
    const page = await api.get(path, { cursor, limit: PAGE });
    rows.push(...page.items);
    cursor = page.next_cursor;
    show(body, table([
      { label: '#', cell: (r) => r.seq },
      { label: t('audit.at'), cell: (r) => when(r.at) },
      { label: t('audit.actor'), cell: (r) => r.actor },
      { label: t('audit.action'), cell: (r) => h('code', {}, r.action) },
      { label: t('audit.resource'), cell: (r) => `${r.resource_type} ${r.resource_id}` },
      { label: t('audit.change'), cell: (r) => h('code', { class: 'muted' }, summary(r)) },
    ], rows, { caption: t('audit.caption', { count: rows.length }) }), cursor ? more : null);
  };
  const verify = button(t('audit.verify'), async () => {
    try {
      const report = await api.get(`${path}/verify`);
      show(result, report.ok ? notice(t('audit.chain_ok', { checked: report.checked, head: report.head_hash.slice(0, 16) }))
        : h('div', { class: 'problem', role: 'alert' }, t('audit.chain_broken', { seq: report.broken_seq, reason: report.reason || '' })));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      show(result, problemBanner(err));
    }
  }, { kind: 'primary', id: 'verify-chain' });
  view.main.append(heading(t('audit.title'), verify), result, h('p', { class: 'muted' }, t('audit.intro')), body);
  await load();
}
