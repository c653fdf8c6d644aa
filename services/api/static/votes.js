// The authority votes (Clique, GET /api/v1/consensus `votes`): what the overview shows of
// them (open proposals with their tallies and voters, the latest changes, a warning before a
// removal that would stall the chain), and the operate page's panel that proposes and
// discards this node's votes (POST and DELETE /api/v1/consensus/proposals, admin).

import { get, request } from './api.js';
import { badge, clear, h, int, link, notice, table } from './dom.js';
import { HEX, errorText, strip0x } from './ui.js';

const way = (authorize) => (authorize ? badge('add', 'ok') : badge('remove', 'warn'));

/** The overview's part: open proposals, changes and warnings. */
export function votesBlock(votes) {
  const proposals = votes.proposals.map((p) => [way(p.authorize), link('account', p.address),
    `${int(p.votes)} of ${int(votes.needed)}`, h('span', {}, ...p.voters.map((v) => link('account', v)))]);
  const changes = votes.changes.slice().reverse().map((c) => [link('block', c.height, `#${c.height}`),
    c.authorize ? badge('added', 'ok') : badge('removed', 'warn'), link('account', c.address)]);
  return h('div', { id: 'votes' },
    ...votes.warnings.map((w) => notice(w, 'warn')),
    table({ text: `Open proposals (${votes.needed} votes pass one)` },
      [{ title: 'Vote' }, { title: 'Address' }, { title: 'Votes', cls: 'num' }, { title: 'Voters' }],
      proposals, { empty: 'No open proposals.', cls: 'stack' }),
    changes.length ? table({ text: 'Changes of the authorities' },
      [{ title: 'Block', cls: 'num' }, { title: 'Change' }, { title: 'Address' }], changes, { cls: 'stack' }) : null);
}

/** The operate page's panel: this node's proposals, a form to add one, a button to discard each. */
export function votesPanel(ctx) {
  const el = h('div', { id: 'proposals' }, h('p', { class: 'muted', text: 'Loading…' }));
  const result = h('div', { class: 'result', role: 'status', 'aria-live': 'polite', id: 'proposal-result' });
  const address = h('input', { id: 'proposal-address', name: 'address', autocomplete: 'off', spellcheck: 'false',
    maxlength: '42', placeholder: '40 hex characters' });
  const direction = h('select', { id: 'proposal-direction', name: 'authorize' },
    h('option', { value: 'true', text: 'add as an authority' }),
    h('option', { value: 'false', text: 'remove from the authorities' }));
  const propose = h('button', { type: 'submit', text: 'Propose' });
  const form = h('form', { id: 'proposal-form', class: 'inline', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'proposal-address', text: 'Address' }), address),
    h('div', { class: 'field' }, h('label', { for: 'proposal-direction', text: 'Vote to' }), direction),
    h('div', { class: 'actions' }, propose));
  const list = h('div', { id: 'own-proposals' });

  function draw(votes) {
    if (!votes.authorities.length) {
      clear(el, notice('A proof-of-work chain has no authorities to vote on.', 'info'));
      return;
    }
    const rows = votes.own.map((o) => {
      const discard = h('button', { type: 'button', class: 'secondary', text: 'Discard' });
      discard.addEventListener('click', () => send('DELETE', `/api/v1/consensus/proposals/${o.address}`, null,
        `Discarded: this node no longer votes about ${o.address}.`));
      return [way(o.authorize), link('account', o.address),
        o.done ? badge('done', 'ok') : o.voted ? badge('voted') : badge('to vote', 'warn'), discard];
    });
    clear(list, ...votes.warnings.map((w) => notice(w, 'warn')),
      table({ text: 'This node’s proposals: its miner votes for them, one per block it seals' },
        [{ title: 'Vote' }, { title: 'Address' }, { title: 'State' }, { title: '' }], rows,
        { empty: 'This node proposes nothing.', cls: 'stack' }));
    if (!el.contains(form)) clear(el, list, form);
  }

  async function send(method, path, body, done) {
    try {
      const votes = await request(method, path, body);
      clear(result, notice(done, 'ok'));
      if (ctx.alive()) draw(votes);
    } catch (err) {
      clear(result, notice(errorText(err), 'bad'));
    }
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const addr = strip0x(address.value.trim()).toLowerCase();
    if (addr.length !== 40 || !HEX.test(addr)) {
      address.setAttribute('aria-invalid', 'true');
      clear(result, notice('An address is 40 hex characters (0-9, a-f).', 'bad'));
      address.focus();
      return;
    }
    address.setAttribute('aria-invalid', 'false');
    const authorize = direction.value === 'true';
    send('POST', '/api/v1/consensus/proposals', { address: addr, authorize },
      `Proposed: this node’s miner votes to ${authorize ? 'add' : 'remove'} ${addr} in the blocks it seals.`)
      .then(() => { address.value = ''; });
  });

  async function load() {
    try {
      const doc = await get('/api/v1/consensus');
      if (ctx.alive()) draw(doc.votes);
    } catch (err) {
      if (ctx.alive()) clear(el, notice(`Could not read the votes: ${errorText(err)}`, 'bad'));
    }
  }
  return { el, result, load };
}
