// Live hall state over a websocket: snapshot, then deltas; see docs/live.md.
// No build step: import { LiveClient } from "/static/live.js".

export const WATCHDOG_MS = 10000; // silence longer than this means the link is down
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10000;

/** Apply an event's patch to a snapshot state in place. */
export function applyPatch(state, patch, recentLimit = 20) {
  if (patch.counters) {
    for (const counter of patch.counters) {
      const i = state.counters.findIndex((c) => c.number === counter.number);
      if (i >= 0) state.counters[i] = counter;
      else {
        state.counters.push(counter);
        state.counters.sort((a, b) => a.number - b.number);
      }
    }
  }
  if (patch.waiting) Object.assign(state.waiting, patch.waiting);
  if (patch.call) {
    state.recent_calls.unshift(patch.call);
    state.recent_calls.length = Math.min(state.recent_calls.length, recentLimit);
  }
}

/** The websocket URL of a hall's live channel, relative to the page. */
export function liveUrl(hall, channel = "display", token = null) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const q = new URLSearchParams({ channel });
  if (token) q.set("token", token);
  return `${scheme}//${location.host}/api/v1/halls/${encodeURIComponent(hall)}/live?${q}`;
}

/**
 * Keeps `state` equal to the server's hall state.
 * Callbacks: onState(state, event|null), onStatus("connecting"|"connected"|"disconnected").
 */
export class LiveClient {
  constructor(url, { onState = () => {}, onStatus = () => {}, watchdogMs = WATCHDOG_MS } = {}) {
    this.url = url;
    this.onState = onState;
    this.onStatus = onStatus;
    this.watchdogMs = watchdogMs;
    this.state = null;
    this.seq = null;
    this.status = "connecting";
    this.snapshots = 0;
    this.resyncs = 0;
    this._ws = null;
    this._awaitingSnapshot = true;
    this._watchdog = null;
    this._retry = null;
    this._backoff = BACKOFF_FIRST_MS;
    this._stopped = false;
  }

  start() {
    this._stopped = false;
    this._connect();
  }

  stop() {
    this._stopped = true;
    clearTimeout(this._watchdog);
    clearTimeout(this._retry);
    this._detach(1000);
  }

  _setStatus(status) {
    if (this.status !== status) {
      this.status = status;
      this.onStatus(status);
    }
  }

  _connect() {
    this._setStatus(this.status === "disconnected" ? "disconnected" : "connecting");
    this._awaitingSnapshot = true;
    const ws = new WebSocket(this.url);
    this._ws = ws;
    ws.onmessage = (e) => this._onMessage(e.data);
    ws.onclose = () => {
      if (this._ws === ws) this._lost();
    };
    this._armWatchdog();
  }

  _detach(code) {
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onmessage = null;
      ws.onclose = null;
      try {
        ws.close(code);
      } catch (_) {
        /* already closing */
      }
    }
  }

  _lost() {
    clearTimeout(this._watchdog);
    this._detach(1000);
    this._setStatus("disconnected");
    if (this._stopped) return;
    const delay = this._backoff * (0.75 + Math.random() * 0.5);
    this._backoff = Math.min(this._backoff * 2, BACKOFF_MAX_MS);
    clearTimeout(this._retry);
    this._retry = setTimeout(() => this._connect(), delay);
  }

  _armWatchdog() {
    clearTimeout(this._watchdog);
    this._watchdog = setTimeout(() => this._lost(), this.watchdogMs);
  }

  _send(message) {
    if (this._ws && this._ws.readyState === WebSocket.OPEN) this._ws.send(JSON.stringify(message));
  }

  resync() {
    if (this._awaitingSnapshot) return;
    this._awaitingSnapshot = true;
    this.resyncs += 1;
    this._send({ type: "resync" });
  }

  _onMessage(data) {
    this._armWatchdog();
    let msg;
    try {
      msg = JSON.parse(data);
    } catch (_) {
      return;
    }
    this._handle(msg);
  }

  _handle(msg) {
    switch (msg.type) {
      case "snapshot":
        this.state = msg.state;
        this.seq = msg.seq;
        this.snapshots += 1;
        this._awaitingSnapshot = false;
        this._backoff = BACKOFF_FIRST_MS;
        this._setStatus("connected");
        this.onState(this.state, null);
        break;
      case "event":
        if (this._awaitingSnapshot) return;
        if (msg.prev_seq !== this.seq) {
          this.resync(); // a gap: an event meant for us was not applied
          return;
        }
        applyPatch(this.state, msg.patch);
        this.state.seq = msg.seq;
        this.seq = msg.seq;
        this.onState(this.state, msg.event);
        break;
      case "ping":
        this._send({ type: "pong", t: msg.t, seq: this.seq });
        if (!this._awaitingSnapshot && msg.seq !== this.seq) this.resync();
        break;
      default:
        break;
    }
  }
}
