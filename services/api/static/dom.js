// DOM building and formatting. Everything that came from the network is set as text,
// never parsed as HTML.

export function h(tag, attrs, ...children) {
  const el = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.setAttribute('class', value);
    else if (key === 'text') el.textContent = String(value);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// --- formatting ----------------------------------------------------------------------------

const INT = new Intl.NumberFormat('en-US');

export function int(value) {
  if (value === undefined || value === null || value === '') return '—';
  if (typeof value === 'bigint') return INT.format(value);
  const n = Number(value);
  return Number.isFinite(n) ? INT.format(n) : String(value);
}

/** A number that names something (a height, a chain id, a port): its digits, ungrouped. */
export function plain(value) {
  if (value === undefined || value === null || value === '') return '—';
  return String(value);
}

export function short(hex, head = 8, tail = 6) {
  if (!hex) return '—';
  const s = String(hex);
  return s.length > head + tail + 1 ? `${s.slice(0, head)}…${s.slice(-tail)}` : s;
}

export function bytes(n) {
  const v = Number(n);
  if (!Number.isFinite(v)) return '—';
  if (v < 1024) return `${v} B`;
  if (v < 1024 * 1024) return `${(v / 1024).toFixed(1)} KiB`;
  return `${(v / 1024 / 1024).toFixed(1)} MiB`;
}

export function seconds(ms) {
  const s = Number(ms) / 1000;
  if (!Number.isFinite(s)) return '—';
  return s < 10 ? `${s.toFixed(2)} s` : `${s.toFixed(1)} s`;
}

export function ago(ms) {
  const d = Math.max(0, Date.now() - Number(ms)) / 1000;
  if (!Number.isFinite(d)) return '—';
  if (d < 60) return `${Math.floor(d)} s ago`;
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  if (d < 86400) return `${Math.floor(d / 3600)} h ago`;
  return `${Math.floor(d / 86400)} d ago`;
}

/** A <time> that keeps saying how long ago it was (see tickTimes). */
export function timeAgo(ms) {
  if (!ms) return h('span', { text: '—' });
  const date = new Date(Number(ms));
  return h('time', { datetime: date.toISOString(), title: date.toLocaleString(), 'data-ts': ms,
    text: ago(ms) });
}

export function tickTimes(root = document) {
  for (const el of root.querySelectorAll('time[data-ts]')) el.textContent = ago(el.dataset.ts);
}

export function yesNo(value) {
  return value ? 'yes' : 'no';
}

// --- links ---------------------------------------------------------------------------------

/** A link to an explorer page: kind is block, tx or account. */
export function link(kind, ref, label) {
  if (ref === undefined || ref === null || ref === '') return h('span', { text: '—' });
  const text = label ?? short(ref);
  return h('a', { href: `#/${kind}/${ref}`, class: 'mono', title: String(ref), text });
}

export function hexBlock(hex) {
  return h('code', { class: 'hex', text: hex || '—' });
}

/** The text of a data payload when it is printable UTF-8, else null. */
export function printable(hex) {
  if (!hex || hex.length % 2) return null;
  const raw = new Uint8Array(hex.length / 2);
  for (let i = 0; i < raw.length; i += 1) raw[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
    return /^[\P{C}\n\t]*$/u.test(text) ? text : null;
  } catch {
    return null;
  }
}

// --- small pieces of pages -----------------------------------------------------------------

/** A definition list from [term, value] pairs; a null value leaves the row out. */
export function fields(rows, cls = 'fields') {
  return h('dl', { class: cls }, rows.filter((r) => r && r[1] !== null && r[1] !== undefined)
    .map(([term, value]) => [h('dt', { text: term }),
      h('dd', {}, value instanceof Node ? value : String(value))]));
}

export function table(caption, columns, rows, { empty = 'Nothing yet.', cls = '' } = {}) {
  if (!rows.length) return h('p', { class: 'muted empty', text: empty });
  return h('div', { class: 'table-wrap' },
    h('table', { class: cls },
      h('caption', { class: caption.hidden ? 'visually-hidden' : '', text: caption.text ?? caption }),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.cls, text: c.title })))),
      // each cell names its column, for the stacked rows a phone shows (table.stack)
      h('tbody', {}, rows.map((row) => h('tr', {}, columns.map((c, i) => h('td', { class: c.cls, 'data-label': c.title }, row[i])))))));
}

export function panel(title, ...children) {
  const id = `p-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return h('section', { class: 'panel', 'aria-labelledby': id },
    h('h2', { id, text: title }), ...children);
}

export function notice(text, kind = 'info') {
  return h('p', { class: `notice ${kind}`, text });
}

export function badge(text, kind = '') {
  return h('span', { class: `badge ${kind}`, text });
}
