// The header's readiness badge: GET /api/v1/ready every POLL_MS while the tab is visible
// (one request at a time; none while it is hidden). "ready", or "not ready: <checks>" with
// the failing checks' reasons as its title (when ready: the state check, which names a
// gateway's chain host); hidden on an older gateway without the route.

const POLL_MS = 10000;

function draw(el, doc) {
  el.hidden = false;
  if (!doc) {
    el.className = 'badge warn';
    el.textContent = 'readiness unknown';
    el.title = 'the node does not answer';
    return;
  }
  const failing = doc.reasons.map((reason) => reason.split(':')[0]);
  el.className = doc.ready ? 'badge ok' : 'badge bad';
  el.textContent = doc.ready ? 'ready' : `not ready: ${failing.join(', ')}`;
  // a gateway on another host names its chain host in the state check's detail
  const state = doc.checks && doc.checks.state ? `\nstate: ${doc.checks.state.detail}` : '';
  el.title = doc.ready ? `every readiness check passes${state}` : doc.reasons.join('\n');
}

export function readyBadge(el) {
  let timer = null;
  let busy = false;
  async function check() {
    clearTimeout(timer);
    if (busy || document.hidden) return;
    busy = true;
    let doc = null;
    try {
      const response = await fetch('/api/v1/ready', { headers: { Accept: 'application/json' }, cache: 'no-store' });
      if (response.status === 404) {
        el.className = ''; // a gateway from before readiness (.badge would show it anyway)
        el.hidden = true;
        return;
      }
      if (response.status === 200 || response.status === 503) doc = await response.json();
    } catch {
      doc = null;
    } finally {
      busy = false;
    }
    draw(el, doc);
    timer = setTimeout(check, POLL_MS);
  }
  document.addEventListener('visibilitychange', check);
  check();
}
