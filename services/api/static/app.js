// The ccoin node dashboard: hash routes (#/, #/blocks, #/pool, #/block/…, #/tx/…,
// #/account/…, #/wallet, #/operate), the search box, and the admin switch.
//
// Whether the admin panels are drawn comes from /api/v1/dashboard/whoami; the node checks
// every admin request by itself whatever the page shows.

import { adminToken, get, isMissing, isNotFound, setAdminToken } from './api.js';
import { clear, h, link, short, tickTimes } from './dom.js';
import { Live, POLL_MS } from './live.js';
import { readyBadge } from './ready.js';
import { account, block, blocks, pool, tx } from './explorer.js';
import { operate, wallet } from './operate.js';
import { overview } from './overview.js';
import { strip0x } from './ui.js';

const ROUTES = [
  [/^$/, overview, 'Overview', 'overview'],
  [/^blocks$/, blocks, 'Explorer', 'blocks'],
  [/^pool$/, pool, 'Pool', 'pool'],
  [/^block\/(\d{1,19}|(?:0x)?[0-9a-fA-F]{64})$/, block, 'Block', 'blocks'],
  [/^tx\/((?:0x)?[0-9a-fA-F]{64})$/, tx, 'Transaction', 'blocks'],
  [/^account\/((?:0x)?[0-9a-fA-F]{40})$/, account, 'Account', 'blocks'],
  [/^wallet$/, wallet, 'Wallet', 'wallet'],
  [/^operate$/, operate, 'Operate', 'operate'],
];
const NAV = [
  ['overview', '#/', 'Overview'],
  ['blocks', '#/blocks', 'Explorer'],
  ['pool', '#/pool', 'Pool'],
  ['wallet', '#/wallet', 'Wallet', true],
  ['operate', '#/operate', 'Operate', true],
];
const LIVE_TEXT = {
  connecting: 'connecting…',
  live: 'live',
  polling: `updating every ${POLL_MS / 1000} s`,
  reconnecting: 'reconnecting…',
  offline: 'node offline',
};

const main = document.getElementById('main');
const live = new Live();
const ctx = { live, admin: false, reason: null, alive: () => false };
let current = null; // {view, token}
let routeSeq = 0;

// --- header: navigation, live indicator ----------------------------------------------------

function drawNav(section) {
  const nav = document.getElementById('nav');
  clear(nav, NAV.filter(([, , , admin]) => !admin || ctx.admin).map(([key, href, text]) =>
    h('li', {}, h('a', { href, text, 'aria-current': key === section ? 'page' : false }))));
}

function drawLive() {
  const el = document.getElementById('live');
  el.dataset.mode = live.mode;
  el.textContent = LIVE_TEXT[live.mode] || live.mode;
}

function drawFooter() {
  const st = live.status;
  const about = document.getElementById('about');
  // each token kept whole (a hash never breaks mid-way); the link's title has the full hash
  const genesis = link('block', 0, short(st?.genesis, 8, 4));
  if (st) genesis.title = `genesis ${st.genesis}`;
  clear(about, st ? [h('span', { class: 'nowrap', text: `ccoin ${st.version}` }), ' · ',
    h('span', { class: 'nowrap', text: `network #${st.network_id}` }), ' · ',
    h('span', { class: 'nowrap', id: 'genesis' }, 'genesis ', genesis)] : 'ccoin');
  const who = document.getElementById('who');
  who.textContent = ctx.admin ? 'You are this node’s operator: wallet and operate panels are on.'
    : 'Read-only visitor: the wallet and operate panels need the operator.';
  document.getElementById('token-forget').hidden = !adminToken();
}

// --- routing -------------------------------------------------------------------------------

async function route({ focus = true } = {}) {
  const raw = location.hash;
  if (raw && !raw.startsWith('#/')) return; // an in-page anchor such as #main
  const path = decodeURIComponent(raw.slice(2)).replace(/\/+$/, '');
  let match = null;
  let found = null;
  for (const entry of ROUTES) {
    match = entry[0].exec(path);
    if (match) {
      found = entry;
      break;
    }
  }
  const token = ++routeSeq;
  ctx.alive = () => token === routeSeq;
  current = null;
  drawNav(found ? found[3] : null);
  if (!found) {
    document.title = 'Not found · ccoin';
    clear(main, h('h1', { tabindex: '-1', text: 'Page not found' }),
      h('p', {}, 'Nothing lives at ', h('code', { text: raw }), '. ', h('a', { href: '#/', text: 'Back to the overview' }), '.'));
  } else {
    const [, view, title] = found;
    document.title = `${title} · ccoin node`;
    let handle = null;
    try {
      const result = view(main, match.slice(1), ctx);
      if (focus) focusHeading();
      handle = await result;
    } catch (err) {
      if (token !== routeSeq) return;
      clear(main, h('h1', { tabindex: '-1', text: title }),
        h('p', { class: 'notice bad', text: `This page failed: ${err && err.message ? err.message : err}` }));
    }
    if (token !== routeSeq) return;
    current = handle;
  }
  if (focus) focusHeading();
}

function focusHeading() {
  const heading = main.querySelector('h1');
  if (heading && !main.contains(document.activeElement)) heading.focus({ preventScroll: false });
}

// --- search --------------------------------------------------------------------------------

async function search(text) {
  const result = document.getElementById('search-result');
  const q = strip0x(text.trim());
  result.textContent = '';
  if (!q) return;
  if (/^\d+$/.test(q)) {
    location.hash = `#/block/${BigInt(q)}`;
  } else if (/^[0-9a-fA-F]{40}$/.test(q)) {
    location.hash = `#/account/${q.toLowerCase()}`;
  } else if (/^[0-9a-fA-F]{64}$/.test(q)) {
    const key = q.toLowerCase();
    result.textContent = 'Searching…';
    for (const [path, kind] of [[`/api/v1/blocks/${key}`, 'block'], [`/api/v1/txs/${key}`, 'tx']]) {
      try {
        await get(path);
        result.textContent = '';
        location.hash = `#/${kind}/${key}`;
        return;
      } catch (err) {
        if (!isNotFound(err)) {
          result.textContent = `Search failed: ${err.message}`;
          return;
        }
      }
    }
    result.textContent = `No block or transaction has the hash ${short(key)}.`;
  } else {
    result.textContent = 'Search for a height (digits), a block hash or transaction id (64 hex), or an address (40 hex).';
  }
}

// --- admin -----------------------------------------------------------------------------------

async function whoami() {
  try {
    const doc = await get('/api/v1/dashboard/whoami');
    ctx.admin = Boolean(doc.admin);
    ctx.reason = doc.reason || null;
  } catch (err) {
    ctx.admin = false;
    ctx.reason = isMissing(err) ? 'this node cannot tell' : err.message;
  }
  document.body.classList.toggle('is-admin', ctx.admin);
}

async function useToken(value) {
  setAdminToken(value);
  await whoami();
  const msg = document.getElementById('token-result');
  if (value) msg.textContent = ctx.admin ? 'Token accepted: admin panels are on.' : `Token refused: ${ctx.reason}`;
  else msg.textContent = 'Token forgotten.';
  if (value && !ctx.admin) setAdminToken('');
  drawFooter();
  await route({ focus: false });
}

// --- start -------------------------------------------------------------------------------------

function wire() {
  document.getElementById('search').addEventListener('submit', (e) => {
    e.preventDefault();
    search(document.getElementById('q').value);
  });
  document.querySelector('.skip').addEventListener('click', (e) => {
    e.preventDefault();
    focusHeading();
  });
  document.getElementById('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = document.getElementById('token');
    const value = input.value.trim();
    input.value = '';
    if (value) useToken(value);
  });
  document.getElementById('token-forget').addEventListener('click', () => useToken(''));
  window.addEventListener('hashchange', () => route());
  live.addEventListener('mode', drawLive);
  live.addEventListener('update', (e) => {
    drawFooter();
    if (current && current.update) current.update(e.detail);
  });
  setInterval(() => {
    if (!document.hidden) tickTimes(main);
  }, 1000);
}

async function boot() {
  wire();
  drawLive();
  await whoami();
  drawFooter();
  live.start();
  readyBadge(document.getElementById('ready'));
  await route({ focus: false });
}

boot();
