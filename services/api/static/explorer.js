// The explorer's pages: blocks, the pool, one block, one transaction (with its Merkle
// proof checked in the browser) and one account.

import { get, isMissing, isNotFound } from './api.js';
import {
  badge, bytes, clear, fields, h, hexBlock, int, link, notice, panel, plain, printable, table, timeAgo, yesNo,
} from './dom.js';
import { blocksTable, errorText, failed, heading, stat, strip0x, txsTable } from './ui.js';

export function blocks(main, _params, ctx) {
  const { live } = ctx;
  const latest = h('div', { id: 'block-list' });
  const older = h('div');
  const more = h('button', { type: 'button', class: 'secondary', text: 'Show older blocks', onclick: loadOlder });
  let olderBlocks = [];
  clear(main, heading('Explorer'),
    h('p', { class: 'muted' }, 'The newest blocks, as they arrive. Search above for a height, a block hash, a transaction id or an address.'),
    panel('Latest blocks', latest), older, h('p', {}, more));

  async function loadOlder() {
    const all = [...live.blocks, ...olderBlocks];
    const lowest = all.length ? all.at(-1).header.height : null;
    if (lowest === null || lowest === 0) {
      more.disabled = true;
      return;
    }
    more.disabled = true;
    try {
      const page = await get(`/api/v1/blocks?start=${lowest - 1}&limit=50`);
      olderBlocks = [...olderBlocks, ...page.blocks];
      clear(older, panel('Older blocks', blocksTable(olderBlocks, { text: 'Older blocks', hidden: true })));
      more.disabled = olderBlocks.at(-1)?.header.height === 0;
    } catch (err) {
      clear(older, notice(`Could not load older blocks: ${errorText(err)}`, 'bad'));
      more.disabled = false;
    }
  }

  function draw() {
    clear(latest, live.status ? blocksTable(live.blocks, { text: 'Latest blocks', hidden: true })
      : h('p', { class: 'muted', text: 'Loading…' }));
  }

  draw();
  return { update: draw };
}

// --- the pool --------------------------------------------------------------------------------

export function pool(main, _params, ctx) {
  const summary = h('div');
  const list = h('div', { id: 'pool-list' });
  clear(main, heading('Transaction pool'),
    h('p', { class: 'muted', text: 'Transactions the node accepted and will put in its next blocks.' }),
    summary, panel('Pending transactions', list));

  async function load() {
    try {
      const doc = await get('/api/v1/mempool?limit=100');
      if (!ctx.alive()) return;
      const ready = ctx.live.status?.mempool?.ready;
      clear(summary, h('dl', { class: 'stats compact' },
        stat('In the pool', int(doc.count)), stat('Ready', int(ready)), stat('Size', bytes(doc.bytes))));
      clear(list, txsTable(doc.txs, { text: 'Pending transactions', hidden: true }, { empty: 'The pool is empty.' }),
        doc.count > doc.txs.length ? h('p', { class: 'muted', text: `Showing ${doc.txs.length} of ${int(doc.count)}.` }) : null);
    } catch (err) {
      if (ctx.alive()) clear(list, notice(`Could not load the pool: ${errorText(err)}`, 'bad'));
    }
  }

  load();
  return {
    update(detail) {
      if (detail.poolChanged) load();
    },
  };
}

// --- one block -------------------------------------------------------------------------------

export async function block(main, [ref], ctx) {
  clear(main, heading('Block'), h('p', { class: 'muted', text: 'Loading…' }));
  let b;
  try {
    b = await get(`/api/v1/blocks/${encodeURIComponent(ref)}`);
  } catch (err) {
    if (!ctx.alive()) return null;
    if (isNotFound(err)) {
      clear(main, heading('Block'), notice(/^\d+$/.test(ref)
        ? `There is no block at height ${ref} yet.` : `No block has the hash ${ref}.`, 'info'));
    } else failed(main, 'Block', err);
    return null;
  }
  if (!ctx.alive()) return null;
  const hd = b.header;
  const height = hd.height;
  const extraText = printable(hd.extra);
  const nav = h('nav', { class: 'pager', 'aria-label': 'Neighbouring blocks' },
    height > 0 ? h('a', { href: `#/block/${height - 1}`, text: `← #${height - 1}` }) : null,
    h('a', { href: `#/block/${height + 1}`, text: `#${height + 1} →` }));
  const sealed = hd.signer && !/^0+$/.test(hd.signer);
  clear(main,
    heading(`Block #${plain(height)}`, nav),
    panel('Header', fields([
      ['Hash', hexBlock(b.hash)],
      ['Height', plain(height)],
      ['Time', h('span', {}, new Date(hd.timestamp).toLocaleString(), ' (', timeAgo(hd.timestamp), ')')],
      ['Parent', height > 0 ? link('block', hd.parent, hd.parent) : hexBlock(hd.parent)],
      ['Confirmations', b.confirmations !== undefined ? int(b.confirmations) : null],
      ['On the main chain', b.on_main_chain !== undefined ? yesNo(b.on_main_chain) : null],
      ['Total weight', b.total_weight !== undefined ? int(b.total_weight) : null],
      ['Transactions', int(b.tx_count ?? b.txs.length)],
      ['Size', bytes(b.size)],
    ])),
    panel('Seal', fields([
      ['Coinbase', link('account', hd.coinbase, hd.coinbase)],
      ['Signer', sealed ? link('account', hd.signer, hd.signer) : 'none (proof of work)'],
      ['Signer key', sealed ? h('span', {}, `${hd.signer_key_type} `, hexBlock(hd.signer_public_key)) : null],
      ['Signature', sealed ? hexBlock(hd.signature) : null],
      ['Seal hash', hexBlock(hd.seal_hash)],
      ['Difficulty', `${int(hd.difficulty)} bits`],
      ['Nonce', plain(hd.nonce)],
      ['Extra data', h('span', {}, hexBlock(hd.extra), extraText ? h('span', { class: 'muted', text: ` “${extraText}”` }) : null)],
    ])),
    panel('Roots', fields([
      ['State root', hexBlock(hd.state_root)],
      ['Transactions root', hexBlock(hd.tx_root)],
    ])),
    panel('Transactions', txsTable(b.txs.map((t) => (typeof t === 'string' ? { id: t } : t)),
      { text: `Transactions of block #${height}`, hidden: true }, { empty: 'This block has no transactions.' })),
    'changes' in b ? panel('Accounts changed', changesTable(b.changes, height)) : null);
  return null;
}

/** The accounts a block changed, before → after; `null` from the node: a block off the
 *  main chain, whose state it does not keep. */
function changesTable(changes, height) {
  if (changes === null) {
    return h('p', { class: 'muted empty', text: 'None stored: this block is not on the main chain, and the node keeps the state of main-chain blocks only (it is computed if the block joins the main chain).' });
  }
  const arrow = (before, after) => `${int(before)} → ${int(after)}`;
  const delta = (before, after) => {
    const d = BigInt(after) - BigInt(before);
    return d > 0n ? `+${int(d)}` : int(d);
  };
  // short titles and the change column hidden on a phone: the table fits its width
  return h('div', {},
    h('p', { class: 'muted', text: 'Each account’s balance and nonce before this block → after it (later blocks may have changed them again).' }),
    table({ text: `Accounts changed by block #${height}`, hidden: true }, [
      { title: 'Account' }, { title: 'Balance', cls: 'num' }, { title: 'Change', cls: 'num opt' },
      { title: 'Nonce', cls: 'num' },
    ], changes.map((c) => [
      link('account', c.address),
      arrow(c.before.balance, c.after.balance), delta(c.before.balance, c.after.balance),
      arrow(c.before.nonce, c.after.nonce),
    ]), { empty: 'This block changed no account.', cls: 'changes' }));
}

// --- one transaction -------------------------------------------------------------------------

const STATUS_KIND = { confirmed: 'ok', pending: 'warn', queued: 'warn', rejected: 'bad', replaced: 'bad', dropped: 'bad' };

export function explain(t) {
  if (t.explanation && !['confirmed', 'replaced'].includes(t.status)) {
    const text = `${t.explanation[0].toUpperCase()}${t.explanation.slice(1)}`;
    return /[.!?]$/.test(text) ? text : `${text}.`;
  }
  switch (t.status) {
    case 'confirmed':
      return h('span', {}, 'Included in block ', link('block', t.height, `#${t.height}`),
        ` at position ${t.index}, with ${int(t.confirmations)} confirmation${t.confirmations === 1 ? '' : 's'}.`);
    case 'pending':
      return 'In the pool and ready: it will be included in one of the next blocks.';
    case 'queued': {
      const want = t.expected_nonce ?? t.next_nonce;
      return `In the pool, but waiting for an earlier transaction of the same sender`
        + (want !== undefined ? ` (the account needs nonce ${want} first).` : '.');
    }
    case 'rejected':
      return `The node refused it: ${t.reason || t.code || 'invalid'}${t.message ? ` (${t.message})` : ''}.`;
    case 'replaced':
      return h('span', {}, 'Replaced in the pool by another transaction with the same nonce and a higher fee',
        t.replaced_by ? [': ', link('tx', t.replaced_by)] : '', '.');
    case 'dropped':
      return `Removed from the pool${t.reason ? ` (${t.reason})` : ''}: it will not be mined unless sent again.`;
    default:
      return `Status: ${t.status}.`;
  }
}

async function sha256(...parts) {
  const size = parts.reduce((n, p) => n + p.length, 0);
  const buf = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    buf.set(p, at);
    at += p.length;
  }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
}

function unhex(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function tohex(buf) {
  return Array.from(buf, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** Proof steps as [{left, hash}] from the shapes a node may send. */
function proofSteps(doc) {
  const raw = doc.steps ?? doc.proof ?? doc.path ?? doc.siblings ?? [];
  return raw.map((s) => (Array.isArray(s) ? { left: Boolean(s[0]), hash: s[1] }
    : { left: Boolean(s.left ?? s.sibling_is_left ?? (s.side === 'left' || s.position === 'left')), hash: s.hash }));
}

/** docs/protocol.md §7: leaf = H(0x00 || id), node = H(0x01 || left || right). */
async function verifyProof(id, steps, root) {
  let acc = await sha256(Uint8Array.of(0), unhex(id));
  for (const step of steps) {
    const sib = unhex(step.hash);
    acc = step.left ? await sha256(Uint8Array.of(1), sib, acc) : await sha256(Uint8Array.of(1), acc, sib);
  }
  return tohex(acc) === root.toLowerCase();
}

async function proofPanel(t, ctx) {
  const body = h('div', {}, h('p', { class: 'muted', text: 'Loading the proof…' }));
  const section = panel('Merkle proof', body);
  (async () => {
    let doc;
    try {
      doc = await get(`/api/v1/txs/${t.id}/proof`);
    } catch (err) {
      if (!ctx.alive()) return;
      clear(body, notice(isMissing(err) ? 'Merkle proofs are not available on this node yet.'
        : `No proof: ${errorText(err)}`, 'info'));
      return;
    }
    if (!ctx.alive()) return;
    const steps = proofSteps(doc);
    const root = doc.tx_root ?? doc.root;
    let verdict;
    if (!root) verdict = notice('The node sent no root to check the proof against.', 'warn');
    else if (!globalThis.crypto?.subtle) {
      verdict = notice('This browser cannot check the proof here: it needs a secure context (open the dashboard as localhost or over HTTPS).', 'info');
    } else {
      try {
        const ok = await verifyProof(t.id, steps, root);
        verdict = ok ? notice('Checked in this browser: the proof leads from the transaction id to the block’s transactions root.', 'ok')
          : notice('This proof does NOT lead to the block’s transactions root.', 'bad');
      } catch (err) {
        verdict = notice(`Could not check the proof: ${errorText(err)}`, 'warn');
      }
    }
    if (!ctx.alive()) return;
    clear(body,
      h('p', { class: 'muted' }, 'Leaves are SHA-256(0x00 ‖ id), inner nodes SHA-256(0x01 ‖ left ‖ right); each step names the sibling hash and its side.'),
      fields([['Block', link('block', doc.block ?? doc.block_hash ?? t.block, doc.block ?? doc.block_hash ?? t.block)],
        ['Transactions root', hexBlock(root)], ['Index', plain(doc.index ?? t.index)]]),
      table({ text: 'Proof steps from the leaf up', hidden: true }, [{ title: 'Level', cls: 'num' }, { title: 'Sibling side' }, { title: 'Sibling hash' }],
        steps.map((s, i) => [String(i), s.left ? 'left' : 'right', hexBlock(s.hash)]),
        { empty: 'The block holds only this transaction: its leaf is the root.' }),
      verdict);
  })();
  return section;
}

export async function tx(main, [id], ctx) {
  clear(main, heading('Transaction'), h('p', { class: 'muted', text: 'Loading…' }));
  let shown = null;

  async function load() {
    let t;
    try {
      t = await get(`/api/v1/txs/${id}`);
    } catch (err) {
      if (!ctx.alive()) return;
      if (isNotFound(err)) clear(main, heading('Transaction'), notice(`This node knows no transaction ${id}.`, 'info'));
      else if (!shown) failed(main, 'Transaction', err);
      return;
    }
    if (!ctx.alive()) return;
    const key = `${t.status}/${t.confirmations}/${t.block}`;
    if (key === shown) return;
    const first = shown === null;
    shown = key;
    const text = printable(t.data);
    const status = h('div', { class: 'tx-status', id: 'tx-status' },
      badge(t.status, STATUS_KIND[t.status] || ''), ' ', h('span', {}, explain(t)));
    const sections = [
      heading('Transaction'),
      status,
      panel('Details', fields([
        ['Id', hexBlock(t.id)],
        ['From', link('account', t.from, t.from)],
        ['To', link('account', t.to, t.to)],
        ['Amount', int(t.amount)],
        ['Fee', int(t.fee)],
        ['Nonce', plain(t.nonce)],
        ['Block', t.block ? link('block', t.block, t.block) : null],
        ['Height', t.height !== null && t.height !== undefined ? link('block', t.height, `#${t.height}`) : null],
        ['Chain id', plain(t.chain_id)],
        ['Size', bytes(t.size)],
        ['Data', t.data ? h('span', {}, hexBlock(t.data), text ? h('span', { class: 'muted', text: ` “${text}”` }) : null) : 'none'],
      ])),
      h('details', { class: 'panel' }, h('summary', { text: 'Signature' }), fields([
        ['Key type', t.key_type], ['Public key', hexBlock(t.public_key)], ['Signature', hexBlock(t.signature)]])),
    ];
    if (t.status === 'confirmed') sections.push(await proofPanel(t, ctx));
    if (!ctx.alive()) return;
    clear(main, ...sections);
    if (!first) status.classList.add('flash');
  }

  await load();
  return {
    update(detail) {
      if (detail.headChanged || detail.poolChanged) load();
    },
  };
}

// --- one account -----------------------------------------------------------------------------

function historyItems(doc) {
  if (Array.isArray(doc)) return doc;
  return doc.txs ?? doc.items ?? doc.history ?? [];
}

export async function account(main, [raw], ctx) {
  const address = strip0x(raw).toLowerCase();
  const summary = h('div', {}, h('p', { class: 'muted', text: 'Loading…' }));
  const history = h('div', {}, h('p', { class: 'muted', text: 'Loading…' }));
  const HISTORY_PAGE = 50;
  let offset = 0; // entries skipped, newest first: stays put as new blocks arrive
  const newer = h('button', { type: 'button', class: 'secondary', text: '← Newer', onclick: () => turn(-HISTORY_PAGE) });
  const olderBtn = h('button', { type: 'button', class: 'secondary', text: 'Older →', onclick: () => turn(HISTORY_PAGE) });
  const range = h('span', { class: 'muted', id: 'history-range' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'History pages', hidden: true }, newer, range, olderBtn);
  clear(main, heading('Account'), h('p', {}, hexBlock(address)), summary,
    panel('History', h('div', {}, history, pager)));
  let historyMissing = false;

  function turn(step) {
    offset = Math.max(0, offset + step);
    newer.disabled = olderBtn.disabled = true; // until this page is drawn
    load();
  }

  async function load() {
    try {
      const acc = await get(`/api/v1/accounts/${address}`);
      if (!ctx.alive()) return;
      clear(summary, h('dl', { class: 'stats compact', id: 'account-stats' },
        stat('Balance', int(acc.balance)), stat('Nonce', plain(acc.nonce)),
        stat('Next nonce', int(acc.pending_nonce), acc.pending_nonce > acc.nonce
          ? `${int(acc.pending_nonce - acc.nonce)} pending` : null)));
    } catch (err) {
      if (ctx.alive()) clear(summary, notice(`Could not load the account: ${errorText(err)}`, 'bad'));
    }
    if (historyMissing) return;
    try {
      const doc = await get(`/api/v1/accounts/${address}/txs?offset=${offset}&limit=${HISTORY_PAGE}`);
      if (!ctx.alive()) return;
      const items = historyItems(doc);
      const total = doc.total ?? items.length;
      if (offset > 0 && offset >= total) { // the history shrank (a reorg): back to a page that exists
        offset = Math.max(0, Math.floor((total - 1) / HISTORY_PAGE) * HISTORY_PAGE);
        return load();
      }
      pager.hidden = total <= HISTORY_PAGE && offset === 0;
      range.textContent = items.length ? `${int(offset + 1)}–${int(offset + items.length)} of ${int(total)}` : '';
      newer.disabled = offset === 0;
      olderBtn.disabled = offset + items.length >= total;
      clear(history, table({ text: 'Transactions of this account', hidden: true }, [
        { title: 'Transaction' }, { title: 'Status' }, { title: 'Block', cls: 'num' },
        { title: 'Direction' }, { title: 'Counterparty' }, { title: 'Amount', cls: 'num' }, { title: 'Fee', cls: 'num' },
      ], items.map((t) => {
        const dir = t.direction || ((t.from || '').toLowerCase() === address ? 'out' : 'in');
        const out = dir === 'out';
        const hgt = t.height ?? t.block_height;
        return [link('tx', t.id), badge(t.status || 'confirmed', STATUS_KIND[t.status || 'confirmed'] || ''),
          hgt !== null && hgt !== undefined ? link('block', hgt, `#${hgt}`) : '—',
          dir, link('account', out ? t.to : t.from),
          dir === 'self' ? int(t.amount) : `${out ? '−' : '+'}${int(t.amount)}`, dir === 'in' ? '—' : int(t.fee)];
      }), { empty: 'No transactions yet.', cls: 'stack' }));
    } catch (err) {
      if (!ctx.alive()) return;
      historyMissing = isMissing(err);
      clear(history, notice(historyMissing ? 'Account history is not available on this node yet.'
        : `Could not load the history: ${errorText(err)}`, historyMissing ? 'info' : 'bad'));
    }
  }

  await load();
  return {
    update(detail) {
      if (detail.headChanged || detail.poolChanged) load();
    },
  };
}

// --- admin: wallet ---------------------------------------------------------------------------
