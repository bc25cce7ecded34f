// The libim web chat demo: log in through the Web API, then chat 1:1 and in groups over the
// web SDK. The session, the SDK's position and the messages seen are kept in localStorage, so
// a reload resumes where the page stood (nothing delivered twice, nothing missing).
import { ImClient, LocalStorageStore, type ImError, type ImMessage, type State }
  from '@libim/web';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const kMaxCached = 2000;  // messages kept per user in localStorage; older ones are dropped

interface Session {
  user: string;
  token: string;
}

let client: ImClient | null = null;
let me = '';
let current = '';  // the open conversation: "u:<user>" or "g:<gid>"
let cache: ImMessage[] = [];
const unread = new Map<string, number>();

function notice(text: string): void {
  $('notice').textContent = text;
}

function deviceId(): string {
  let id = localStorage.getItem('webchat.device');
  if (!id) {
    const bytes = crypto.getRandomValues(new Uint8Array(6));
    id = 'web-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
    localStorage.setItem('webchat.device', id);
  }
  return id;
}

function conversationOf(m: ImMessage): string {
  if (m.group) return `g:${m.group}`;
  return `u:${m.from === me ? m.to ?? '' : m.from}`;
}

function cacheKey(): string {
  return `webchat.messages.${me}`;
}

function loadCache(): void {
  try {
    cache = JSON.parse(localStorage.getItem(cacheKey()) ?? '[]') as ImMessage[];
  } catch {
    cache = [];
  }
}

function saveCache(): void {
  if (cache.length > kMaxCached) cache = cache.slice(-kMaxCached);
  localStorage.setItem(cacheKey(), JSON.stringify(cache));
}

async function api(path: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await fetch(path, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  const json = await r.json() as Record<string, unknown>;
  if (!r.ok) throw new Error(`${json.error}: ${json.message}`);
  return json;
}

function renderConversations(): void {
  const names = new Set(cache.map(conversationOf));
  if (current) names.add(current);
  const ul = $('conversations');
  ul.replaceChildren();
  for (const name of [...names].sort()) {
    const li = document.createElement('li');
    li.dataset.conversation = name;
    li.textContent = name.startsWith('g:') ? `# ${name.slice(2)}` : name.slice(2);
    const n = unread.get(name) ?? 0;
    if (n > 0) {
      const badge = document.createElement('span');
      badge.className = 'unread';
      badge.textContent = ` (${n})`;
      li.append(badge);
    }
    if (name === current) li.className = 'active';
    li.onclick = () => open(name);
    ul.append(li);
  }
}

function messageItem(m: ImMessage): HTMLLIElement {
  const li = document.createElement('li');
  li.dataset.mid = m.mid;
  li.dataset.seq = String(m.seq);
  if (m.type === 'system') {
    li.className = 'system';
    li.textContent = m.body;
  } else {
    li.className = m.from === me ? 'mine' : '';
    const who = document.createElement('b');
    who.textContent = `${m.from}: `;
    const text = document.createElement('span');
    text.className = 'body';
    text.textContent = m.body;
    li.append(who, text);
  }
  return li;
}

function open(name: string): void {
  current = name;
  unread.delete(name);
  $('title').textContent = name.startsWith('g:') ? `Group ${name.slice(2)}` : name.slice(2);
  $('messages').replaceChildren(...cache.filter((m) => conversationOf(m) === name)
    .map(messageItem));
  ($('text') as HTMLInputElement).disabled = false;
  ($('send') as HTMLButtonElement).disabled = false;
  renderConversations();
}

function onMessage(m: ImMessage): void {
  cache.push(m);
  saveCache();
  const name = conversationOf(m);
  if (name === current) {
    $('messages').append(messageItem(m));
    $('messages').lastElementChild?.scrollIntoView();
  } else {
    unread.set(name, (unread.get(name) ?? 0) + 1);
  }
  renderConversations();
}

function showState(state: State): void {
  const el = $('state');
  el.textContent = state;
  el.className = `state ${state}`;
}

function start(session: Session): void {
  me = session.user;
  loadCache();
  $('me').textContent = me;
  $('login-form').hidden = true;
  $('chat').hidden = false;
  $('logout').hidden = false;
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  client = new ImClient({
    url: `${scheme}//${location.host}/ws`, token: session.token, device: deviceId(),
    store: new LocalStorageStore(),
  });
  client.on('state', ({ to }) => showState(to));
  client.on('message', onMessage);
  client.on('gap', (g) => notice(g.reason === 'epoch'
    ? 'The server restarted its history: older messages may be missing.'
    : 'Some older messages expired on the server.'));
  client.on('kicked', (k) => {
    notice(k.reason === 'login_elsewhere'
      ? 'This device logged in elsewhere: this page stopped. Reload to take over.'
      : `Signed out (${k.reason}). Log in again.`);
    if (k.code === 4002) logout();
  });
  client.on('error', (e) => notice(`${e.error}: ${e.message}`));
  client.connect();
  renderConversations();
}

function logout(): void {
  client?.disconnect();
  client = null;
  localStorage.removeItem('webchat.session');
  $('login-form').hidden = false;
  $('chat').hidden = true;
  $('logout').hidden = true;
  $('me').textContent = '';
  showState('disconnected');
}

function credentials(): { user: string; password: string } {
  return { user: ($('user') as HTMLInputElement).value.trim(),
           password: ($('password') as HTMLInputElement).value };
}

async function login(): Promise<void> {
  const { user, password } = credentials();
  const r = await api('/v1/tokens', { user, password, ttl_s: 7 * 86400 });
  const session = { user, token: String(r.token) };
  localStorage.setItem('webchat.session', JSON.stringify(session));
  notice('');
  start(session);
}

function guard(p: Promise<unknown>): void {
  p.catch((e: Error | ImError) => notice(e.message));
}

$('login-form').onsubmit = (ev) => {
  ev.preventDefault();
  guard(login());
};
$('register').onclick = () => {
  const { user, password } = credentials();
  guard(api('/v1/users', { user, password }).then(login));
};
$('logout').onclick = () => guard((client?.logout() ?? Promise.resolve()).then(logout));
$('open-form').onsubmit = (ev) => {
  ev.preventDefault();
  const peer = ($('peer') as HTMLInputElement).value.trim();
  if (peer) open(`u:${peer}`);
};
$('group-form').onsubmit = (ev) => {
  ev.preventDefault();
  const name = ($('group-name') as HTMLInputElement).value.trim();
  // The demo names a group by its id: what one creates, the other joins by the same text.
  if (client && name) guard(client.createGroup(name, [], name).then((g) => open(`g:${g.gid}`)));
};
$('join-group').onclick = () => {
  const gid = ($('group-name') as HTMLInputElement).value.trim();
  if (client && gid) guard(client.joinGroup(gid).then(() => open(`g:${gid}`)));
};
$('compose').onsubmit = (ev) => {
  ev.preventDefault();
  const input = $('text') as HTMLInputElement;
  if (!client || !current || !input.value) return;
  const target = current.startsWith('g:') ? { group: current.slice(2) } : { to: current.slice(2) };
  // Shown greyed until stored; the stored copy then arrives through the message event.
  const pending = document.createElement('li');
  pending.className = 'pending mine';
  pending.textContent = input.value;
  $('messages').append(pending);
  guard(client.send({ ...target, body: input.value }).finally(() => pending.remove()));
  input.value = '';
};

const saved = localStorage.getItem('webchat.session');
if (saved) start(JSON.parse(saved) as Session);
