// The control page in a real browser: runs `demo --keep-running`, opens the page it serves in
// headless Debian Chromium (playwright-core, no browser download) and checks that the page
// shows the device online, switches the simulated device's LED on, sees a power cut as
// "offline", survives a broker restart, and measures QoS 1 publishes per second through the
// page's client, and through MQTT.js in the same page for comparison. Screenshots go to
// docs/img/. Everything is bounded in time.
//
//   bash scripts/build-wasm.sh && cargo build -p examples --bin demo
//   (cd examples/web/test && npm ci && node browser-test.mjs)
//
// DEMO_BIN overrides the demo binary ($CARGO_TARGET_DIR or target, debug); CHROMIUM the browser.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(root, "target");
const demoBin = process.env.DEMO_BIN ?? path.join(targetDir, "debug", "demo");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const imgDir = path.join(root, "docs", "img");
/** The whole test, and each wait. */
const TOTAL_MS = 180_000;
const STEP_MS = 20_000;
/** QoS 1 messages the page publishes for the rate, all queued at once. */
const BENCH_MESSAGES = 2000;
const WARM_UP = 200;
/** QoS 1 publishes each client keeps unacknowledged during the rate measurement: mosquitto's
 * Receive Maximum (max_inflight_messages, 20 by default), which the session never exceeds
 * [MQTT-4.9.0-2]; more would only wait in the session's queue. */
const WINDOW = Number(process.env.BENCH_WINDOW ?? 20);

const started = Date.now();
const say = (text) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${text}`);

/** The demo process and the lines it printed. */
class Demo {
  constructor() {
    this.lines = [];
    this.waiters = [];
    this.child = spawn(demoBin, ["--keep-running"], {
      env: { ...process.env, NO_COLOR: "1" },
      stdio: ["pipe", "pipe", "inherit"],
    });
    this.exited = new Promise((resolve) => this.child.on("exit", (code) => resolve(code)));
    let partial = "";
    this.child.stdout.on("data", (chunk) => {
      partial += chunk;
      const lines = partial.split("\n");
      partial = lines.pop();
      for (const line of lines) {
        this.lines.push(line);
        if (process.env.VERBOSE) console.log(`    demo | ${line}`);
        this.waiters = this.waiters.filter((w) => !w.check());
      }
    });
  }

  /** Where the next waits start looking. */
  mark() {
    return this.lines.length;
  }

  /** The first line at or after `from` matching `re`. */
  waitFor(re, what, from = 0, ms = STEP_MS) {
    return new Promise((resolve, reject) => {
      const waiter = {
        check: () => {
          for (let i = from; i < this.lines.length; i++) {
            const m = this.lines[i].match(re);
            if (m) { clearTimeout(timer); m.line = i; resolve(m); return true; }
          }
          return false;
        },
      };
      const timer = setTimeout(() => reject(new Error(`no demo line for ${what} within ${ms} ms`)), ms);
      if (!waiter.check()) this.waiters.push(waiter);
    });
  }

  send(command) {
    say(`demo <- ${command}`);
    this.child.stdin.write(`${command}\n`);
  }
}

async function pageState(page, id, state, what) {
  await page.waitForFunction(
    ([id, state]) => document.getElementById(id)?.dataset.state === state,
    [id, state],
    { timeout: STEP_MS },
  ).catch(() => {
    const errors = pageErrors.length ? ` (errors in the page: ${pageErrors.join("; ")})` : "";
    throw new Error(`the page did not show ${what} within ${STEP_MS} ms${errors}`);
  });
  say(`page shows ${what}`);
}

/** The same load through MQTT.js (its browser bundle, pinned in package.json) in the same
 * page, against the same broker and login, for a peer figure from the same run. */
async function mqttJsRate(page) {
  await page.addScriptTag({ path: path.join(root, "examples/web/test/node_modules/mqtt/dist/mqtt.min.js") });
  const version = JSON.parse(readFileSync(path.join(root, "examples/web/test/node_modules/mqtt/package.json"))).version;
  const result = await page.evaluate(async ([n, window, warmUp]) => {
    const config = await (await fetch("config.json")).json();
    const client = mqtt.connect(`ws://${location.hostname}:${config.wsPort}`, {
      username: config.username, password: config.password, protocolVersion: 5, reconnectPeriod: 0,
    });
    await new Promise((resolve, reject) => { client.once("connect", resolve); client.once("error", reject); });
    const round = async (n) => {
      const started = performance.now();
      let next = 0;
      const lane = async () => {
        while (next < n) {
          const i = next++;
          await client.publishAsync("bench/mqttjs", `m${i}`, { qos: 1 });
        }
      };
      await Promise.all(Array.from({ length: window }, lane));
      return performance.now() - started;
    };
    await round(warmUp);
    const ms = await round(n);
    await client.endAsync();
    return { n, window, ms };
  }, [BENCH_MESSAGES, WINDOW, WARM_UP]);
  return { ...result, version };
}

let demo;
let pageForReport;
const consoleLines = [];
const pageErrors = [];

async function main() {
  if (!existsSync(demoBin)) {
    throw new Error(`no demo binary at ${demoBin}: cargo build -p examples --bin demo (or set DEMO_BIN)`);
  }
  demo = new Demo();
  let browser;
  try {
    const [, url] = await demo.waitFor(/control page: (http:\/\/127\.0\.0\.1:\d+\/)/, "the page's URL");
    say(`page at ${url}`);
    const end = await demo.waitFor(/\bOK in /, "the end of the story", 0, 60_000);
    const powered = await demo.waitFor(/demo\s+power on/, "the device powered on again", end.line);
    await demo.waitFor(/device\s+connected/, "the device connected again", powered.line);

    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    const context = await browser.newContext({ viewport: { width: 390, height: 780 } });
    const page = await context.newPage();
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    pageForReport = page;
    await page.goto(url);
    await pageState(page, "link", "connected", "the broker connected");
    await pageState(page, "status", "online", "the device online");
    await pageState(page, "led", "off", "the LED off");

    let mark = demo.mark();
    await page.click("#on");
    await demo.waitFor(/device\s+LED on/, "the device's LED on", mark);
    say("the simulated device's LED is on");
    await pageState(page, "led", "on", "the LED on");
    mkdirSync(imgDir, { recursive: true });
    await page.screenshot({ path: path.join(imgDir, "control-page.png") });

    // A warm-up round first (not counted), for both clients alike.
    await page.evaluate(([n, w]) => window.mqttBench(n, w), [WARM_UP, WINDOW]);
    const bench = await page.evaluate(([n, w]) => window.mqttBench(n, w), [BENCH_MESSAGES, WINDOW]);
    if (bench.failed !== 0) throw new Error(`${bench.failed} of ${bench.n} publishes were refused`);
    const rate = Math.round(bench.n / (bench.ms / 1000));
    say(`RATE ${bench.n} QoS 1 publishes through the page's client (${bench.window} unacknowledged at a time) in ${bench.ms.toFixed(0)} ms: ${rate} msg/s`);

    const peer = await mqttJsRate(page);
    say(`RATE ${peer.n} QoS 1 publishes through MQTT.js ${peer.version} in the same page (${peer.window} unacknowledged at a time) in ${peer.ms.toFixed(0)} ms: ${Math.round(peer.n / (peer.ms / 1000))} msg/s`);

    demo.send("cut");
    await pageState(page, "status", "offline", "the device offline (its will)");
    await page.screenshot({ path: path.join(imgDir, "control-page-offline.png") });
    demo.send("power");
    await pageState(page, "status", "online", "the device online again");
    // Powered on again, the device starts with its LED off: switch it on for the restart.
    await pageState(page, "led", "off", "the LED off after the power cut");
    mark = demo.mark();
    await page.click("#on");
    await demo.waitFor(/device\s+LED on/, "the device's LED on again", mark);
    await pageState(page, "led", "on", "the LED on again");

    const before = await page.evaluate(() => window.mqttPage.connections);
    const lost = await page.evaluate(() => window.mqttPage.disconnections);
    mark = demo.mark();
    demo.send("restart-broker");
    await demo.waitFor(/the broker is back/, "the broker back", mark);
    await page.waitForFunction((n) => window.mqttPage.connections > n, before, { timeout: STEP_MS })
      .catch(() => { throw new Error("the page did not reconnect after the broker restart"); });
    if ((await page.evaluate(() => window.mqttPage.disconnections)) <= lost) {
      throw new Error("the page never saw the broker go away");
    }
    say("the page lost the broker and reconnected after the restart");
    await pageState(page, "status", "online", "the device online after the restart");
    await pageState(page, "led", "on", "the LED state after the restart");

    if (pageErrors.length) throw new Error(`errors in the page: ${pageErrors.join("; ")}`);
    demo.send("quit");
    const code = await Promise.race([demo.exited, new Promise((r) => setTimeout(() => r("timeout"), STEP_MS))]);
    if (code !== 0) throw new Error(`the demo ended with ${code}`);
    say("PASS");
  } catch (e) {
    if (pageForReport) {
      const log = await pageForReport.evaluate(() => document.getElementById("log")?.innerText).catch(() => null);
      if (log) consoleLines.push(`the page's log:\n${log}`);
    }
    throw e;
  } finally {
    if (browser) await browser.close();
    if (demo.child.exitCode === null) demo.child.kill("SIGKILL");
  }
}

const limit = setTimeout(() => {
  console.error(`FAIL: the browser test did not finish within ${TOTAL_MS / 1000} s`);
  process.exit(1);
}, TOTAL_MS);
main().then(
  () => { clearTimeout(limit); process.exit(0); },
  (e) => {
    console.error(`FAIL: ${e.message}`);
    if (demo) console.error(`the demo's last lines:\n${demo.lines.slice(-40).join("\n")}`);
    if (consoleLines.length) console.error(`the page's console:\n${consoleLines.join("\n")}`);
    process.exit(1);
  },
);
