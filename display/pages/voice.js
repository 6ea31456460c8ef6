// Call announcements: the server's queue sends one at a time (server-sent events); this page
// plays its segments back to back with Web Audio and never starts one over another.
// Kiosk-mode TVs: start Chromium with --autoplay-policy=no-user-gesture-required, else a
// click on the page is needed once to allow sound.

export function startVoice(page) {
  const ctx = new AudioContext();
  const gain = ctx.createGain();
  gain.gain.value = page.voice.volume;
  gain.connect(ctx.destination);
  const buffers = new Map();
  const log = [];
  let busyUntil = 0;
  const hint = document.getElementById("voice-state");

  const unlock = () => {
    ctx.resume();
    hint.hidden = true;
  };
  addEventListener("click", unlock);
  addEventListener("keydown", unlock);
  const checkLock = () => (hint.hidden = ctx.state === "running");
  ctx.onstatechange = checkLock;
  setTimeout(checkLock, 1000);

  async function buffer(name) {
    let p = buffers.get(name);
    if (!p) {
      p = fetch(`${page.voice.segments}${name}.wav`)
        .then((r) => r.arrayBuffer())
        .then((b) => ctx.decodeAudioData(b));
      buffers.set(name, p);
    }
    return p;
  }

  let chain = Promise.resolve();
  function play(a) {
    chain = chain.then(async () => {
      const bufs = await Promise.all(a.segments.map(buffer));
      let t = Math.max(ctx.currentTime + 0.05, busyUntil);
      const start = t;
      for (let i = 0; i < a.repeat; i++) {
        for (const b of bufs) {
          const src = ctx.createBufferSource();
          src.buffer = b;
          src.connect(gain);
          src.start(t);
          t += b.duration;
        }
        t += a.pause_s;
      }
      busyUntil = t;
      log.push({ seq: a.seq, number: a.number, counter: a.counter, recall: a.recall, start, end: t });
    }).catch((e) => console.warn("voice", e));
  }

  const url = `/api/v1/halls/${encodeURIComponent(page.hall)}/announcements`;
  const source = new EventSource(url);
  source.addEventListener("announce", (e) => play(JSON.parse(e.data)));
  return { ctx, log, source };
}
