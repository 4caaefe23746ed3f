// The control page: the browser client (mqtt-client-wasm) subscribes to the device's topics
// and switches its LED. The device is found from its topics (devices/<id>/...).
import init, { MqttClient } from "./pkg/mqtt_client_wasm.js";

const $ = (id) => document.getElementById(id);
const WATCHED = ["status", "led/state", "led/error", "telemetry"];
const decoder = new TextDecoder();
let device = null;
let connections = 0;
let disconnections = 0;

function log(text) {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  $("log").prepend(item);
  while ($("log").children.length > 50) $("log").lastChild.remove();
}

function show(id, state, text = state) {
  $(id).dataset.state = state;
  $(id).textContent = text;
}

function forget() {
  show("status", "unknown");
  show("led", "unknown");
}

function showTelemetry(text) {
  const list = $("telemetry");
  list.replaceChildren();
  let fields;
  try { fields = Object.entries(JSON.parse(text)); } catch { fields = [["raw", text]]; }
  for (const [key, value] of fields) {
    const dt = document.createElement("dt");
    dt.textContent = key.replaceAll("_", " ");
    const dd = document.createElement("dd");
    dd.textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
    list.append(dt, dd);
  }
}

const config = await (await fetch("config.json", { cache: "no-store" })).json();
await init();
const url = `ws://${location.hostname}:${config.wsPort}`;
const client = new MqttClient(url, {
  username: config.username ?? undefined,
  password: config.password ?? undefined,
  keepAlive: 10,
});

function setButtons() {
  for (const id of ["on", "off", "toggle"]) $(id).disabled = !(device && client.connected);
}

client.onEvent((event) => {
  switch (event.type) {
    case "connected":
      connections += 1;
      show("link", "connected");
      log(`connected to ${url}`);
      break;
    case "resubscribed":
      log(`the broker had lost the session: ${event.reasonCodes.length} subscriptions renewed`);
      break;
    case "disconnected":
      disconnections += 1;
      show("link", "disconnected");
      forget();
      log(`disconnected: ${event.error}`);
      break;
    case "reconnecting":
      show("link", "reconnecting", `reconnecting (attempt ${event.attempt})`);
      break;
    case "error":
      log(`error: ${event.error}`);
      break;
    default:
      return;
  }
  setButtons();
});

client.onMessage((topic, payload) => {
  const parts = topic.split("/");
  if (parts[0] !== "devices" || parts.length < 3) return;
  const id = parts[1];
  const suffix = parts.slice(2).join("/");
  const text = decoder.decode(payload);
  // The first device seen, or one that comes online, is the one the page shows.
  if (device === null || (suffix === "status" && text === "online" && id !== device)) {
    if (device !== id) {
      device = id;
      forget();
      $("device").textContent = id;
      log(`device ${id}`);
    }
  }
  if (id !== device) return;
  switch (suffix) {
    case "status": show("status", text === "online" ? "online" : "offline", text); break;
    case "led/state": show("led", text === "on" ? "on" : "off", text); break;
    case "led/error": log(`device: ${text}`); break;
    case "telemetry": showTelemetry(text); break;
  }
  setButtons();
});

for (const command of ["on", "off", "toggle"]) {
  $(command).addEventListener("click", async () => {
    if (!device) return;
    const topic = `devices/${device}/led/set`;
    try {
      const code = await client.publish(topic, command, 1, false);
      log(`${command}: PUBACK ${code}`);
    } catch (e) {
      log(`${command} failed: ${e.message}`);
    }
  });
}

// For the browser test: publishes `n` QoS 1 messages through this page's client, keeping
// `window` of them unacknowledged at a time (the session's store is bounded: a full store
// refuses a publish rather than grow), and resolves when every PUBACK is in.
window.mqttBench = async (n, window = 100) => {
  const started = performance.now();
  let next = 0;
  let failed = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      const code = await client.publish(`bench/${device ?? "page"}`, `m${i}`, 1, false);
      // 0 Success, or 16 No Matching Subscribers (5.0): delivered to the broker either way.
      if (code >= 0x80) failed += 1;
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
  return { n, window, ms: performance.now() - started, failed };
};
window.mqttPage = { client, get device() { return device; }, get connections() { return connections; },
  get disconnections() { return disconnections; } };

client.connect();
// Once: the session renews these by itself whenever a broker has lost the session.
for (const suffix of WATCHED) {
  client.subscribe(`devices/+/${suffix}`, 1).catch((e) => log(`subscribe failed: ${e.message}`));
}
