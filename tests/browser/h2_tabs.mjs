// One page opens 10 EventSources and a roomcast.v1 WebSocket on one origin, in headless
// Chromium. Over HTTP/1.1 a browser holds at most 6 connections per origin, so the seventh
// stream waits; over HTTP/2 (TLS) they all share one connection, and the WebSocket rides it too
// (RFC 8441, extended CONNECT).
//
// Usage: node tests/browser/h2_tabs.mjs <base URL> <publish URL>
//
// Run by servers/roomcast/tests/tls_browser.rs, which starts the server and publishes when told.
// Prints one JSON line: how many streams opened, what each received, the protocols Chromium used.
// Exit codes: 0 ran, 2 bad usage, 3 the browser could not run.
import readline from 'node:readline';
import { chromium } from 'playwright-core';

if (process.argv.length !== 3) {
  process.stderr.write('usage: node h2_tabs.mjs <base URL>\n');
  process.exit(2);
}
const base = process.argv[2].replace(/\/$/, '');

let browser;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--ignore-certificate-errors'],
  });
} catch (error) {
  process.stderr.write(`h2_tabs: could not launch Chromium: ${error}\n`);
  process.exit(3);
}
const input = readline.createInterface({ input: process.stdin });
const lines = input[Symbol.asyncIterator]();
try {
  const page = await browser.newPage();
  await page.goto(`${base}/healthz`);
  await page.evaluate((base) => {
    window.seen = { open: Array(10).fill(false), messages: Array(10).fill(0), ws: 'connecting', wsMessages: 0 };
    window.sources = [];
    for (let i = 0; i < 10; i++) {
      const source = new EventSource(`${base}/events?user=tab${i}`);
      source.onopen = () => { window.seen.open[i] = true; };
      source.addEventListener('broadcast', () => { window.seen.messages[i] += 1; });
      window.sources.push(source);
    }
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws?user=socket`, 'roomcast.v1');
    ws.onopen = () => { window.seen.ws = 'open'; };
    ws.onerror = () => { window.seen.ws = 'error'; };
    ws.onmessage = (event) => {
      if (JSON.parse(event.data).type === 'broadcast') window.seen.wsMessages += 1;
    };
  }, base);
  // Let every stream that can open, open; then tell the test, which publishes 3 broadcasts.
  await page.waitForTimeout(2000);
  process.stdout.write('@@publish\n');
  await lines.next();
  await page.waitForTimeout(2000);
  const seen = await page.evaluate(() => {
    const protocols = performance.getEntriesByType('resource')
      .concat(performance.getEntriesByType('navigation'))
      .map((entry) => entry.nextHopProtocol);
    const opened = window.seen.open.filter((open) => open).length;
    return { ...window.seen, opened, protocols };
  });
  process.stdout.write(`${JSON.stringify(seen)}\n`);
} finally {
  input.close();
  await browser.close();
}
