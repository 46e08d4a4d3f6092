// Message catalogues (served merged per language at /admin/i18n/<lang>.json) and the
// formatting of texts, dates and numbers in the official's language. Vietnamese first.

export const LANGUAGES = ['vi', 'en'];
const STORAGE_KEY = 'nentang.language';
let messages = {};
let current = 'vi';

export async function loadLanguage(requested) {
  const lang = LANGUAGES.includes(requested) ? requested
    : LANGUAGES.includes(localStorage.getItem(STORAGE_KEY)) ? localStorage.getItem(STORAGE_KEY)
      : 'vi';
  const response = await fetch(`/admin/i18n/${lang}.json`, { credentials: 'omit' });
  messages = await response.json();
  current = lang;
  localStorage.setItem(STORAGE_KEY, lang);
  document.documentElement.lang = lang;
}

export function language() {
  return current;
}

/** The message `key` with {placeholders} filled in; an unknown key shows itself. */
export function t(key, params = {}) {
  const message = messages[key];
  if (message === undefined) {
    console.warn(`missing message ${key}`);
    return key;
  }
  return message.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/** A {vi, en} text of a definition, in the current language (falling back to the other). */
export function text(value) {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  return value[current] || value.vi || value.en || '';
}

export function formatDateTime(iso) {
  if (!iso) return '';
  const locale = current === 'vi' ? 'vi-VN' : 'en-GB';
  return new Intl.DateTimeFormat(locale, { dateStyle: 'short', timeStyle: 'short' }).format(new Date(iso));
}

export function formatNumber(value) {
  if (typeof value !== 'number') return value ?? '';
  return new Intl.NumberFormat(current === 'vi' ? 'vi-VN' : 'en-GB').format(value);
}
