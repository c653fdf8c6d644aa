// The overview page: the node's figures, the chain's health (the authorities and why the
// chain waits, re-read while no block comes) and the live charts.

import { get, isMissing } from './api.js';
import { chart } from './charts.js';
import { badge, bytes, clear, h, int, link, notice, panel, plain, table, timeAgo, yesNo } from './dom.js';
import { throttle } from './live.js';
import { blocksTable, count, errorText, heading, stat } from './ui.js';
import { votesBlock } from './votes.js';

const CONSENSUS_POLL_MS = 3000;
const PACE_NOTICE = { sealing: 'ok', idle: 'info', late: 'warn', waiting: 'bad' };
const AUTHORITY_BADGE = { live: 'ok', offline: 'bad' };
const CONSENSUS_QUIET_MS = 10000; // the consensus record is re-read this often without blocks
const CLOCK = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const clock = (ms) => CLOCK.format(new Date(Number(ms)));

// what each assume-valid state means, in the words of GET /api/v1/status's `assume_valid`
const ASSUME_VALID = {
  searching: () => 'no peer has shown the block yet',
  found: (av) => `block at height ${int(av.height)} found in a peer’s chain`,
  missing: () => 'not on the peer’s chain: every signature verified',
  reached: (av) => `block at height ${int(av.height)} reached: all verified since`,
};

/** Assume-valid sync, when the operator turned it on: its state, what it skipped, why. */
function assumeValidStat(av) {
  if (!av || av.state === 'off') return null;
  const says = ASSUME_VALID[av.state];
  return stat('Assume-valid', badge(av.state, av.state === 'missing' ? 'warn' : 'info'),
    `${int(av.signatures_skipped)} signatures skipped · ${says ? says(av) : av.state}`);
}

function nodeStats(st) {
  const p2p = st.p2p !== false;
  return [
    p2p ? stat('Peers', int(st.peers), st.peers === 0 ? 'none connected' : null)
      : stat('Peers', badge('unknown', 'warn'), 'no p2p service answers'),
    stat('Syncing', p2p ? yesNo(st.syncing) : 'unknown'),
    assumeValidStat(st.assume_valid),
    st.validator === false ? stat('Mining', badge('none'), 'no miner on this node')
      : stat('Mining', st.mining ? badge('mining', 'ok') : badge('stopped', 'warn')),
  ];
}

export function overview(main, _params, ctx) {
  const { live } = ctx;
  const stats = h('dl', { class: 'stats', id: 'stats' });
  const banner = h('div', { id: 'banner' });
  const turn = h('div', { id: 'authorities' });
  const charts = h('div', { class: 'charts', id: 'charts' });
  const latest = h('div', { id: 'latest' });
  clear(main, heading('Node overview'),
    h('section', { 'aria-label': 'Node status' }, banner, stats),
    panel('Consensus', turn),
    panel('Last blocks', charts),
    panel('Latest blocks', latest, h('p', {}, h('a', { href: '#/blocks', text: 'All blocks →' }))));

  let consensus = null;
  let consensusMissing = false;
  let consensusAt = 0;
  const loadConsensus = throttle(async () => {
    if (consensusMissing) return;
    consensusAt = Date.now();
    try {
      consensus = await get('/api/v1/consensus');
    } catch (err) {
      if (isMissing(err)) consensusMissing = true;
      consensus = null;
    }
    if (ctx.alive()) drawConsensus();
  }, 3000);
  // a stalled chain sends no head event: look again every few seconds while this page shows
  const pollConsensus = () => {
    if (!ctx.alive() || consensusMissing) return;
    if (!document.hidden) loadConsensus();
    setTimeout(pollConsensus, CONSENSUS_POLL_MS);
  };
  setTimeout(pollConsensus, CONSENSUS_POLL_MS);

  function drawStats() {
    const st = live.status;
    if (!st) {
      clear(banner, live.error ? notice(`The node does not answer: ${errorText(live.error)}`, 'bad')
        : h('p', { class: 'muted', text: 'Loading…' }));
      return;
    }
    const mempool = st.mempool || {};
    clear(banner, live.error ? notice(`The node does not answer right now (${errorText(live.error)}); `
      + 'showing what it said last.', 'warn') : null);
    clear(stats,
      stat('Network', `#${st.network_id}`, st.consensus === 'pow' ? 'proof of work' : 'proof of authority'),
      stat('Height', plain(st.height)),
      stat('Head', link('block', st.head), timeAgo(st.head_timestamp)),
      ...nodeStats(st),
      stat('Pool', `${int(mempool.count)} txs`, `${int(mempool.ready)} ready · ${bytes(mempool.bytes)}`),
      stat('Difficulty', `${int(st.difficulty)} bits`, `weight ${int(st.total_weight)}`));
  }

  function drawConsensus() {
    const st = live.status;
    if (!st) return;
    // the health sentence, once the consensus route has said it for the current head
    const said = consensus && consensus.summary && consensus.next_height === st.height + 1
      ? notice(consensus.summary, PACE_NOTICE[consensus.state] || 'info') : null;
    if (st.consensus === 'pow' || !(st.authorities || []).length) {
      clear(turn, said, h('p', {}, 'Open proof-of-work mining: anyone may seal a block at ',
        h('strong', { text: `${int(st.difficulty)} bits` }), ' of difficulty.'));
      return;
    }
    // whose turn follows the live head (DESIGN §3: block h is signers[h % n]'s, the set at
    // the head as votes left it); the slower
    // consensus route only adds each signer's record
    const authorities = st.authorities;
    const nextHeight = st.height + 1;
    const inTurn = authorities[nextHeight % authorities.length];
    const signers = new Map();
    for (const s of consensus?.signers ?? []) signers.set(s.address, s);
    const recent = new Set(st.recent_signers || []);
    const columns = [{ title: 'Authority' }, { title: 'Block ' + `#${nextHeight}` }];
    if (consensus) {
      columns.push({ title: 'Sealed', cls: 'num' }, { title: 'Last block', cls: 'num' },
        { title: 'Missed turns', cls: 'num' }, { title: 'State' });
    }
    const rows = authorities.map((a) => {
      const address = typeof a === 'string' ? a : a.address;
      const info = signers.get(address) || (typeof a === 'object' ? a : {});
      const row = [
        link('account', address),
        address === inTurn ? badge('in turn', 'ok')
          : recent.has(address) ? badge('sealed recently') : badge('out of turn'),
      ];
      if (consensus) {
        const lastHeight = info.last_height ?? info.last_block ?? info.last_sealed;
        row.push(int(info.sealed), lastHeight || lastHeight === 0 ? link('block', lastHeight, `#${lastHeight}`) : '—',
          int(info.missed ?? info.missed_turns), badge(info.state || '—', AUTHORITY_BADGE[info.state] || ''));
      }
      return row;
    });
    clear(turn, said,
      h('p', {}, `Proof of authority, ${authorities.length} authorit${authorities.length === 1 ? 'y' : 'ies'}`,
        consensus && consensus.needed_online ? ` (at least ${consensus.needed_online} must be online)` : '', '. ',
        'Whose turn for block ', h('strong', { text: `#${nextHeight}` }), ': ', link('account', inTurn), '.'),
      table({ text: 'Authorities and whose turn it is', hidden: true }, columns, rows, { cls: 'stack' }),
      consensusMissing ? h('p', { class: 'muted small', text: 'Per-signer statistics are not available on this node yet.' }) : null,
      consensus?.votes ? votesBlock(consensus.votes) : null);
  }

  function drawCharts() {
    const s = live.series();
    clear(charts,
      chart({ id: 'chart-interval', title: 'Block interval', points: s.intervals, format: (v) => `${v.toFixed(2)} s` }),
      chart({ id: 'chart-txs', title: 'Transactions per block', points: s.txs, kind: 'bars', format: count }),
      chart({ id: 'chart-mempool', title: 'Pool size', points: s.mempool, format: (v) => `${count(v)} txs`,
        empty: 'Sampled every few seconds…', xLabel: clock,
        over: s.mempool.length ? `time, ${clock(s.mempool[0].x)} to ${clock(s.mempool.at(-1).x)}` : null }));
  }

  function draw() {
    drawStats();
    drawConsensus();
    drawCharts();
    clear(latest, blocksTable(live.blocks.slice(0, 8), { text: 'Latest blocks', hidden: true }));
  }

  draw();
  loadConsensus();
  return {
    update(detail) {
      draw();
      // a stalled chain has no new head, but its signers' record still moves (missed turns)
      if (detail.headChanged || Date.now() - consensusAt > CONSENSUS_QUIET_MS) loadConsensus();
    },
  };
}

// --- explorer: latest blocks ----------------------------------------------------------------
