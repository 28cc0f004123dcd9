// The tutorial demo page: connect, authenticate as guest, subscribe to event:chat, and log
// every frame and result on the page and in the console. Long entries (the permissions JSON of
// the WAMP-CRA exchange, say) show as one line that expands on click, so the connection and
// WELCOME lines stay on the first screen; the log follows the newest frames unless the reader
// has scrolled up, and then offers a jump back to them.
import './wamp1.js'; // a classic script: defines globalThis.wamp1 (and ab)

const { WampSession } = globalThis.wamp1;

const BASE_URI = 'http://wamptutorial/';
const WS_URI = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
const AUTH_KEY = 'guest';
const AUTH_SECRET = 'secret-password';
const MAX_LOG_ENTRIES = 1000;
// Entries longer than this, or of several lines, start collapsed to one line.
const COLLAPSE_OVER_CHARS = 120;

const $ = (id) => document.getElementById(id);
const statusEl = $('status');
const logEl = $('log');
const latestBtn = $('log-latest');
const actionButtons = ['chat-btn', 'echo-btn', 'throw-btn', 'ping-btn'].map($);

// --- log -------------------------------------------------------------------------------------

function timestamp() {
  const d = new Date();
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

const atBottom = () => logEl.scrollHeight - logEl.scrollTop - logEl.clientHeight < 24;

function scrollToLatest() {
  logEl.scrollTop = logEl.scrollHeight;
  latestBtn.hidden = true;
}

/** Expands or collapses a long entry (its full text is always in the DOM). */
function setExpanded(li, expanded) {
  li.classList.toggle('collapsed', !expanded);
  const toggle = li.querySelector('.toggle');
  toggle.setAttribute('aria-expanded', String(expanded));
  toggle.textContent = expanded ? '−' : '+';
  toggle.title = expanded ? 'Collapse to one line' : `Show all ${li.dataset.length} characters`;
}

/** kind: send | recv | info | result | event | error */
function log(kind, text) {
  console.log(`[${kind}] ${text}`);
  const following = atBottom();
  const li = document.createElement('li');
  li.className = `entry ${kind}`;
  li.dataset.kind = kind;
  const time = document.createElement('time');
  time.textContent = timestamp();
  const tag = document.createElement('span');
  tag.className = `tag ${kind}`;
  tag.textContent = kind;
  const body = document.createElement('code');
  body.textContent = text;
  li.append(time, tag, body);
  if (text.length > COLLAPSE_OVER_CHARS || text.includes('\n')) {
    li.classList.add('long');
    li.dataset.length = String(text.length);
    const toggle = document.createElement('button');
    toggle.type = 'button';
    toggle.className = 'toggle';
    li.append(toggle);
    setExpanded(li, false);
  }
  logEl.append(li);
  while (logEl.childElementCount > MAX_LOG_ENTRIES) logEl.firstElementChild.remove();
  if (following) scrollToLatest();
  else latestBtn.hidden = false;
}

// A click on a long entry (not a text selection in it) expands or collapses it.
logEl.addEventListener('click', (e) => {
  const li = e.target.closest('li.long');
  if (!li || (e.target.closest('code') && String(window.getSelection()).length > 0)) return;
  setExpanded(li, li.classList.contains('collapsed'));
});
logEl.addEventListener('scroll', () => { if (atBottom()) latestBtn.hidden = true; });
latestBtn.addEventListener('click', scrollToLatest);

const json = (value) => JSON.stringify(value);

function logCallError(procedure, error) {
  if (error && typeof error.uri === 'string') {
    const details = 'details' in error ? ` ${json(error.details)}` : '';
    log('error', `${procedure} RECEIVED error ${error.uri} ${json(error.desc)}${details}`);
  } else {
    log('error', `${procedure} failed: ${error}`);
  }
}

// --- status ----------------------------------------------------------------------------------

function setStatus(state, text) {
  statusEl.dataset.state = state;
  statusEl.textContent = text;
  const usable = state === 'connected' || state === 'authenticated';
  for (const b of actionButtons) b.disabled = !usable;
}

// --- session ---------------------------------------------------------------------------------

async function onOpen(session) {
  const id = session.sessionId;
  setStatus('connected', `connected as session ${id}`);
  log('info', `Connected to ${WS_URI} as session ${id} (server ${session.serverIdent})`);
  try {
    // session.authenticate(AUTH_KEY, AUTH_SECRET) does these three steps in one call.
    const challenge = await session.authreq(AUTH_KEY);
    log('info', `Received auth challenge ${challenge}`);
    const signature = await session.authsign(challenge, AUTH_SECRET);
    const permissions = await session.auth(signature);
    log('info', `Authentication complete as ${AUTH_KEY}, permissions ${json(permissions)}`);
    setStatus('authenticated', `authenticated as ${AUTH_KEY} (session ${id})`);
  } catch (error) {
    logCallError('Authentication', error);
    if (session.sessionId === id) {
      setStatus('connected', `connected as session ${id}, authentication failed`);
    }
  }
  // Returning lets the client send the SUBSCRIBE for event:chat (again, after a reconnect).
}

function onClose(reason, details) {
  const why = details.reason ? `: ${details.reason}` : '';
  log('info', `Connection ${reason} (code ${details.code ?? '-'}${why})`);
  if (details.willRetry) {
    setStatus('connecting', `connection ${reason}, reconnecting…`);
  } else {
    setStatus('disconnected', details.retriesExhausted
      ? 'disconnected (gave up reconnecting, reload the page to try again)'
      : `disconnected (${reason})`);
  }
}

function onReconnecting({ attempt, maxRetries, delay }) {
  const text = `reconnecting in ${Math.round(delay / 100) / 10} s (attempt ${attempt} of ${maxRetries})`;
  setStatus('connecting', text);
  log('info', text);
}

function onChatEvent(topic, event) {
  log('event', `event:chat RECEIVED ${topic} ${json(event)}`);
}

const session = new WampSession(WS_URI, {
  maxRetries: 60,
  retryDelay: (attempt) => Math.min(1000 * attempt, 5000),
  onopen: onOpen,
  onclose: onClose,
  onreconnecting: onReconnecting,
  ontrace: (direction, text) => log(direction, text),
});

// Prefixes and subscriptions are kept by the client and re-sent after every reconnect.
// (The tutorial server also has these two as default prefixes.)
session.prefix('event', `${BASE_URI}event#`);
session.prefix('rpc', `${BASE_URI}rpc#`);
session.subscribe('event:chat', onChatEvent);

// --- buttons ---------------------------------------------------------------------------------

function call(procedure, ...args) {
  log('info', `${procedure} CALL ${args.map(json).join(' ')}`.trimEnd());
  session.call(procedure, ...args).then(
    (result) => log('result', `${procedure} RECEIVED result ${json(result)}`),
    (error) => logCallError(procedure, error),
  );
}

$('chat-btn').addEventListener('click', () => {
  const text = $('chat-text').value;
  try {
    session.publish('event:chat', text);
    log('info', `event:chat SENT ${json(text)}`);
  } catch (error) {
    log('error', `event:chat not sent: ${error.message}`);
  }
});
$('echo-btn').addEventListener('click', () => call('rpc:echo', $('echo-text').value));
$('throw-btn').addEventListener('click', () => call('rpc:throw'));
$('ping-btn').addEventListener('click', () => call('rpc:ping'));
$('clear-btn').addEventListener('click', () => { logEl.replaceChildren(); latestBtn.hidden = true; });

// For the console and for tests.
window.wampSession = session;

setStatus('connecting', `connecting to ${WS_URI}`);
session.connect();
