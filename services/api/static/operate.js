// The pages that act on the node (admin): the node's wallet and its send form, and the
// operate page (miner, peers, sync, authority votes).

import { get, isMissing, post } from './api.js';
import {
  badge, clear, fields, h, hexBlock, int, link, notice, panel, plain, short, table, timeAgo, yesNo,
} from './dom.js';
import { throttle } from './live.js';
import { HEX, adminOnly, errorText, field, heading, setError, stat, strip0x } from './ui.js';
import { votesPanel } from './votes.js';

const MAX_AMOUNT = 2n ** 63n - 1n;
const MAX_DATA_BYTES = 1024;
export function validateSend({ to, amount, fee, data }, available) {
  const errors = {};
  const addr = strip0x(to.trim());
  if (!addr) errors.to = 'Enter the recipient’s address.';
  else if (addr.length !== 40 || !HEX.test(addr)) errors.to = 'An address is 40 hex characters (0-9, a-f).';
  const amt = amount.trim();
  if (!/^\d+$/.test(amt) || BigInt(amt) < 1n) errors.amount = 'Enter a whole number of coins, at least 1.';
  else if (BigInt(amt) > MAX_AMOUNT) errors.amount = 'That amount is too large.';
  const f = fee.trim() || '0';
  if (!/^\d+$/.test(f)) errors.fee = 'The fee is a whole number, 0 or more.';
  else if (BigInt(f) > MAX_AMOUNT) errors.fee = 'That fee is too large.';
  const d = strip0x(data.trim());
  if (d && (d.length % 2 || !HEX.test(d))) errors.data = 'Data is hex: an even number of 0-9, a-f.';
  else if (d.length / 2 > MAX_DATA_BYTES) errors.data = `Data is at most ${MAX_DATA_BYTES} bytes.`;
  if (!errors.amount && !errors.fee && available !== undefined && available !== null
      && BigInt(amt) + BigInt(f) > BigInt(available)) {
    errors.amount = `Amount plus fee exceeds what is available (${int(available)}: the balance less pending sends).`;
  }
  const body = `{"to":"${addr.toLowerCase()}","amount":${errors.amount ? 0 : BigInt(amt)},"fee":${errors.fee ? 0 : BigInt(f)}`
    + `${d ? `,"data":"${d.toLowerCase()}"` : ''}}`;
  return { errors, body };
}

export async function wallet(main, _params, ctx) {
  if (!ctx.admin) return adminOnly(main, 'Wallet');
  const info = h('div', { id: 'wallet-info' }, h('p', { class: 'muted', text: 'Loading…' }));
  const to = field('send-to', 'Recipient address', '40 hex characters', { placeholder: 'e.g. 3f1c…', maxlength: '42' });
  const amount = field('send-amount', 'Amount', 'Whole coins, at least 1', { inputmode: 'numeric' });
  const fee = field('send-fee', 'Fee (optional)', 'Paid to the block’s sealer; 0 if empty', { inputmode: 'numeric', placeholder: '0' });
  const data = field('send-data', 'Data (optional)', 'Hex bytes stored with the transaction, at most 1024', { placeholder: 'e.g. cafe' });
  const button = h('button', { type: 'submit', text: 'Send' });
  const result = h('div', { id: 'send-result', class: 'result', role: 'status', 'aria-live': 'polite' });
  const form = h('form', { id: 'send-form', novalidate: true, 'aria-labelledby': 'p-send-coins' },
    to.el, amount.el, fee.el, data.el, h('div', { class: 'actions' }, button));
  clear(main, heading('Wallet'),
    h('p', { class: 'muted', text: 'The node’s own account. The node signs with its key; the key never leaves the node.' }),
    panel('Account', info), panel('Send coins', form, result));
  let available = null;

  async function load() {
    try {
      const w = await get('/api/v1/wallet');
      if (!ctx.alive()) return;
      // an older node says no `available`: its balance is all the page can check against
      available = w.available ?? w.balance;
      const pending = w.pending_out !== undefined && w.pending_out !== null;
      clear(info, h('dl', { class: 'stats compact', id: 'wallet-stats' },
        stat('Balance', int(w.balance)),
        pending ? stat('Pending out', int(w.pending_out), 'sends in the pool') : null,
        pending ? stat('Available', int(w.available), 'balance − pending') : null,
        stat('Nonce', plain(w.nonce)), stat('Next nonce', plain(w.pending_nonce))),
      fields([['Address', link('account', w.address, w.address)], ['Key type', w.key_type || '—'],
        ['Public key', w.public_key ? hexBlock(w.public_key) : 'not loaded (the node cannot sign)'],
        ['Can sign', yesNo(w.can_sign)]]),
      h('p', { class: 'muted small', text: 'The private key stays in the node’s encrypted keystore: no page or route shows it.' }));
      button.disabled = !w.can_sign;
      if (!w.can_sign) clear(result, notice('The node cannot sign: its key is not loaded (check the keystore password).', 'warn'));
    } catch (err) {
      if (!ctx.alive()) return;
      clear(info, notice(err.code === 'no_wallet' ? 'This node has no account configured (client.account_address).'
        : `Could not load the wallet: ${errorText(err)}`, 'bad'));
    }
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const { errors, body } = validateSend({ to: to.input.value, amount: amount.input.value,
      fee: fee.input.value, data: data.input.value }, available);
    const all = [['to', to], ['amount', amount], ['fee', fee], ['data', data]];
    for (const [name, f] of all) setError(f, errors[name]);
    const bad = all.find(([name]) => errors[name]);
    if (bad) {
      clear(result, notice('Please correct the highlighted fields.', 'bad'));
      bad[1].input.focus();
      return;
    }
    button.disabled = true;
    clear(result, h('p', { class: 'muted', text: 'Sending…' }));
    try {
      const sent = await post('/api/v1/wallet/send', body);
      clear(result, h('p', { class: 'notice ok' }, 'Sent. Transaction ', link('tx', sent.id),
        ` (nonce ${sent.nonce}) is in the pool and will be in one of the next blocks.`));
      amount.input.value = '';
      data.input.value = '';
      load();
    } catch (err) {
      clear(result, h('p', { class: 'notice bad' }, h('strong', { class: 'code', text: err.code || 'error' }),
        ` — ${err.message || 'the send failed'}`));
    } finally {
      button.disabled = false;
    }
  });

  await load();
  return {
    update(detail) {
      if (detail.headChanged) load();
    },
  };
}

// --- admin: operate --------------------------------------------------------------------------

function peerRows(doc) {
  return Array.isArray(doc) ? doc : doc.peers ?? [];
}

/** This node's p2p address, for another node's add-peer form, with a button to copy it. */
function ownEndpoint(endpoint) {
  if (!endpoint) return h('p', { class: 'muted', id: 'own-endpoint', text: 'This node listens on no address other nodes can dial.' });
  const code = h('code', { class: 'mono', text: endpoint });
  const copy = h('button', { type: 'button', class: 'secondary small', id: 'copy-endpoint', text: 'Copy' });
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(endpoint);
      copy.textContent = 'Copied';
    } catch {
      // no clipboard (plain http from another host): select it for Ctrl+C instead
      getSelection().selectAllChildren(code);
    }
  });
  return h('p', { id: 'own-endpoint' }, 'This node’s address for other nodes: ', code, ' ', copy);
}

export async function operate(main, _params, ctx) {
  if (!ctx.admin) return adminOnly(main, 'Operate');
  const mining = h('div', { id: 'mining' }, h('p', { class: 'muted', text: 'Loading…' }));
  const miningResult = h('div', { class: 'result', role: 'status', 'aria-live': 'polite', id: 'mining-result' });
  const network = h('div', { id: 'network' }, h('p', { class: 'muted', text: 'Loading…' }));
  const networkResult = h('div', { class: 'result', role: 'status', 'aria-live': 'polite', id: 'network-result' });
  const votes = votesPanel(ctx);
  clear(main, heading('Operate'),
    panel('Mining', mining, miningResult), panel('Peers', network, networkResult),
    panel('Authority votes', votes.el, votes.result));

  async function act(button, resultEl, path, body, done, explain = {}) {
    button.disabled = true;
    button.dataset.busy = '1';
    try {
      const reply = await post(path, body);
      clear(resultEl, notice(done(reply), 'ok'));
      return reply;
    } catch (err) {
      clear(resultEl, explain[err.code] ? notice(explain[err.code], 'warn')
        : h('p', { class: 'notice bad' }, h('strong', { class: 'code', text: err.code }), ` — ${err.message}`));
      return null;
    } finally {
      delete button.dataset.busy;
      button.disabled = false;
    }
  }

  async function loadMining() {
    let m;
    try {
      m = await get('/api/v1/mining');
    } catch (err) {
      if (ctx.alive()) clear(mining, notice(`Could not read the miner: ${errorText(err)}`, 'bad'));
      return;
    }
    if (ctx.alive()) drawMining(m);
  }

  // the miner panel is built once and updated in place at each poll: its buttons keep their
  // identity (and focus) while the operator reaches for them
  const start = h('button', { type: 'button', id: 'mining-start', text: 'Start mining' });
  const stop = h('button', { type: 'button', id: 'mining-stop', class: 'secondary', text: 'Stop mining' });
  start.addEventListener('click', async () => {
    const reply = await act(start, miningResult, '/api/v1/mining/start', {}, () => 'Mining started.');
    if (reply && ctx.alive()) drawMining(reply);
  });
  stop.addEventListener('click', async () => {
    const reply = await act(stop, miningResult, '/api/v1/mining/stop', {}, () => 'Mining stopped.');
    if (reply && ctx.alive()) drawMining(reply);
  });
  const miningState = h('dd', {});
  const sealedCount = h('dd', {});
  const lastSealed = h('dd', {});
  const sealerAccount = h('dd', {});
  const lastBlock = h('dd', {});
  const miningPanel = [
    h('dl', { class: 'stats compact', id: 'mining-stats' },
      h('div', { class: 'stat' }, h('dt', { text: 'Mining' }), miningState),
      h('div', { class: 'stat' }, h('dt', { text: 'Blocks sealed' }), sealedCount),
      h('div', { class: 'stat' }, h('dt', { text: 'Last sealed' }), lastSealed)),
    h('dl', { class: 'fields' }, h('dt', { text: 'Sealer account' }), sealerAccount,
      h('dt', { text: 'Last block' }), lastBlock),
    h('div', { class: 'actions' }, start, stop)];
  const shown = new WeakMap(); // element -> the value it shows, so an unchanged one is left be
  const show = (el, key, make) => {
    if (shown.get(el) === key) return;
    shown.set(el, key);
    clear(el, make());
  };

  /** The miner panel from a status (GET /mining, or the reply of start/stop). */
  function drawMining(m) {
    if (!m.validator) {
      clear(mining, notice('No miner on this node: it relays and checks blocks but does not seal them '
        + '(a basic node runs none; on a validator, its miner service is not answering).', 'info'));
      return;
    }
    show(miningState, m.mining, () => (m.mining ? badge('mining', 'ok') : badge('stopped', 'warn')));
    show(sealedCount, String(m.blocks_sealed), () => int(m.blocks_sealed));
    show(lastSealed, String(m.last_sealed_ms), () => (m.last_sealed_ms ? timeAgo(m.last_sealed_ms) : '—'));
    show(sealerAccount, m.address, () => link('account', m.address, m.address));
    show(lastBlock, m.last_block, () => (m.last_block ? link('block', m.last_block, m.last_block) : '—'));
    // not while a start or stop is on its way (act() disabled the button)
    if (!start.dataset.busy) start.disabled = Boolean(m.mining);
    if (!stop.dataset.busy) stop.disabled = !m.mining;
    if (!mining.contains(start)) clear(mining, ...miningPanel);
  }

  // the add-peer form and the buttons are built once, so a live refresh of the table never
  // wipes what the operator is typing
  const endpoint = h('input', { id: 'peer-endpoint', name: 'endpoint', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'tcp://host:port or http://host:port/', 'aria-describedby': 'peer-endpoint-hint' });
  // POST /peers answers once the handshake is done: say what it achieved
  const added = (r) => `${r.outcome === 'already_connected' ? 'Already connected' : 'Connected'} to node `
    + `${short(r.node_id)} at ${r.endpoint} (${r.direction}).`;
  const add = h('button', { type: 'submit', text: 'Add peer' });
  const form = h('form', { id: 'peer-form', class: 'inline', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'peer-endpoint', text: 'Peer endpoint' }), endpoint,
      h('p', { class: 'hint', id: 'peer-endpoint-hint',
        text: 'The other node’s p2p address, e.g. tcp://host:30333 (with #<key> when it uses CurveZMQ; its Operate page shows it), or the address of its page, e.g. http://host:8001/' })),
    h('div', { class: 'actions' }, add));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const typed = endpoint.value.trim();
    const page = /^https?:\/\//i.test(typed); // the node reads that page's status for the p2p address
    const value = page || /^tcp:\/\//.test(typed) ? typed : `tcp://${typed}`;
    if (page ? !/^https?:\/\/[^\s/?#]+(\/\S*)?$/i.test(value)
      : !/^tcp:\/\/[^\s/#]+:\d{1,5}(#[0-9a-fA-F]{64})?$/.test(value)) {
      endpoint.setAttribute('aria-invalid', 'true');
      clear(networkResult, notice('Give the endpoint as tcp://host:port (or tcp://host:port#<64 hex key>), or the other node’s page address, http://host:port/.', 'bad'));
      endpoint.focus();
      return;
    }
    endpoint.setAttribute('aria-invalid', 'false');
    clear(networkResult, h('p', { class: 'muted', text: `Connecting to ${value}…` }));
    if (await act(add, networkResult, '/api/v1/peers', { endpoint: value }, added)) {
      endpoint.value = '';
      loadPeers();
    }
  });
  const sync = h('button', { type: 'button', id: 'sync-now', class: 'secondary', text: 'Sync now' });
  sync.addEventListener('click', () => act(sync, networkResult, '/api/v1/sync', {},
    () => 'Sync requested: the node asks its best peer for blocks it lacks.',
    { no_peers: 'No peer to sync from: this node has no peer connected. Add one above first.' }));
  const refresh = h('button', { type: 'button', class: 'secondary', text: 'Refresh', onclick: () => loadPeers() });
  const peerList = h('div', { id: 'peer-list' });
  const controls = h('div', { class: 'controls' }, form, h('div', { class: 'actions' }, sync, refresh));

  let peersMissing = false;
  async function loadPeers() {
    let doc;
    try {
      doc = await get('/api/v1/peers');
    } catch (err) {
      if (!ctx.alive()) return;
      peersMissing = isMissing(err);
      clear(network, notice(peersMissing
        ? 'Peer-to-peer networking is not available on this node yet: no p2p service answers.'
        : `Could not list peers: ${errorText(err)}`, peersMissing ? 'info' : 'bad'));
      return;
    }
    if (!ctx.alive()) return;
    if (doc && doc.p2p === false) { // not latched: the panel comes back with the service
      clear(network, notice('Peer-to-peer networking is not running on this node: no p2p service answers.', 'info'));
      return;
    }
    const peers = peerRows(doc);
    clear(peerList, ownEndpoint(doc.endpoint),
      h('p', {}, `${peers.length} peer${peers.length === 1 ? '' : 's'}`,
        doc.syncing !== undefined ? ` · syncing: ${yesNo(doc.syncing)}` : '',
        doc.sync_target !== undefined && doc.sync_target !== null ? ` towards #${doc.sync_target}` : '',
        doc.banned ? ` · ${doc.banned} banned` : ''),
      table({ text: 'Connected peers', hidden: true }, [
        { title: 'Endpoint' }, { title: 'Direction' }, { title: 'Height', cls: 'num' }, { title: 'Head' },
        { title: 'Score', cls: 'num' }, { title: 'Latency', cls: 'num' },
      ], peers.map((p) => [h('span', { class: 'mono', text: p.endpoint || p.address || '—' }), p.direction || '—',
        plain(p.height), p.head ? link('block', p.head) : '—', int(p.score),
        Number(p.latency_ms) >= 0 && p.latency_ms !== null ? `${int(p.latency_ms)} ms` : '—']),
      { empty: 'No peers connected.', cls: 'peers stack' }));
    if (!network.contains(controls)) clear(network, peerList, controls);
  }

  const refreshLive = throttle(() => {
    loadMining();
    if (!peersMissing) loadPeers();
    votes.load();
  }, 3000);
  await Promise.all([loadMining(), loadPeers(), votes.load()]);
  return {
    update(detail) {
      if (detail.headChanged || detail.nodeChanged) refreshLive();
    },
  };
}
