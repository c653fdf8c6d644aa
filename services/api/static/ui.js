// What the dashboard's pages share: headings, error notices, tables of blocks and
// transactions, stats and form fields.

import { ApiError, isNotFound } from './api.js';
import { bytes, clear, h, int, link, notice, plain, table, timeAgo } from './dom.js';

export const HEX = /^[0-9a-fA-F]*$/;
export function strip0x(text) {
  return /^0x/i.test(text) ? text.slice(2) : text;
}

export function heading(text, ...extra) {
  return h('div', { class: 'page-head' }, h('h1', { tabindex: '-1', text }), ...extra);
}

export function errorText(err) {
  if (err instanceof ApiError) return `${err.code}: ${err.message}`;
  return String(err && err.message ? err.message : err);
}

export function failed(main, title, err) {
  clear(main, heading(title), notice(isNotFound(err) ? err.message : `Could not load: ${errorText(err)}`,
    isNotFound(err) ? 'info' : 'bad'));
}

// --- shared tables -------------------------------------------------------------------------

function signerOf(block) {
  const hd = block.header;
  return hd.signer && !/^0+$/.test(hd.signer) ? hd.signer : hd.coinbase;
}

export function blocksTable(blocks, caption) {
  return table(caption, [
    { title: 'Height', cls: 'num' }, { title: 'Hash' }, { title: 'Age' },
    { title: 'Txs', cls: 'num' }, { title: 'Sealed by', cls: 'opt' }, { title: 'Size', cls: 'num opt' },
  ], blocks.map((b) => [
    link('block', b.header.height, `#${b.header.height}`),
    link('block', b.hash),
    timeAgo(b.header.timestamp),
    int(b.tx_count ?? b.txs.length),
    link('account', signerOf(b)),
    bytes(b.size),
  ]), { empty: 'No blocks yet.', cls: 'blocks' });
}

export function txsTable(txs, caption, { empty = 'No transactions.' } = {}) {
  return table(caption, [
    { title: 'Transaction' }, { title: 'From' }, { title: 'To' },
    { title: 'Amount', cls: 'num' }, { title: 'Fee', cls: 'num' }, { title: 'Nonce', cls: 'num opt' },
  ], txs.map((t) => [
    link('tx', t.id), link('account', t.from), link('account', t.to),
    int(t.amount), int(t.fee), plain(t.nonce),
  ]), { empty, cls: 'txs stack' });
}

// --- overview ------------------------------------------------------------------------------

/** A count, or an average of counts with one decimal. */
export function count(v) {
  return Number.isInteger(v) ? int(v) : v.toFixed(1);
}

export function stat(label, value, extra) {
  return h('div', { class: 'stat' }, h('dt', { text: label }),
    h('dd', {}, value instanceof Node ? value : String(value), extra ? h('small', {}, extra) : null));
}

/** Peers, syncing and mining as the status says them; a service that does not answer is
 *  shown as such, never as 0 peers or an idle miner (an older node lacks `p2p` and
 *  `validator`: its figures are shown as they come). */
export function adminOnly(main, title) {
  clear(main, heading(title), notice('This page is for the node’s operator.', 'info'),
    h('p', {}, 'Open the dashboard on the node’s own machine (http://127.0.0.1 or localhost), or give the node’s admin token under “Admin access” at the bottom of the page.'));
  return null;
}

export function field(id, label, hint, attrs = {}) {
  const input = h('input', { id, name: id, autocomplete: 'off', spellcheck: 'false',
    'aria-describedby': `${id}-hint ${id}-error`, ...attrs });
  return {
    input,
    el: h('div', { class: 'field' }, h('label', { for: id, text: label }), input,
      h('p', { class: 'hint', id: `${id}-hint`, text: hint }),
      h('p', { class: 'error', id: `${id}-error` })),
  };
}

export function setError(f, message) {
  f.input.setAttribute('aria-invalid', message ? 'true' : 'false');
  f.el.querySelector('.error').textContent = message || '';
  return !message;
}

/** Client-side checks of the send form; the node checks everything again. */
