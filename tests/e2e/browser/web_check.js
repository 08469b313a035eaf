// Drives libprof-collector's page in Debian's chromium (headless, through
// playwright-core) for tests/e2e/24_collector_web.sh, and prints one line per
// check: "ok: ..." or "FAIL: ... (what was seen)". Exit status: 0 when every
// check passed, 1 otherwise, 2 when the browser could not be driven at all.
//
// Usage: node web_check.js   with the environment:
//   WEB_URL      the collector's address (http://127.0.0.1:PORT)
//   WEB_SERVICE  the service to choose; WEB_TYPE its profile type
//   WEB_FUNC     a function the service's flame graph must show
//   WEB_TRACE    a trace id in the traces list; WEB_TRACE_FUNC its function;
//   WEB_NOT_IN_TRACE  a function of the service that the trace's graph must not show
//   WEB_SHOTS    directory for the screenshots; WEB_PROFILE_DIR a fresh browser profile
//   CHROMIUM     the browser (default /usr/bin/chromium)
//   WEB_TOKEN_URL, WEB_TOKEN  (optional) a collector run with --token TOKEN that
//                holds WEB_SERVICE's WEB_FUNC: the page asks for the token, then draws
"use strict";

const path = require("path");
const { chromium } = require(path.join(process.env.WEB_NODE_MODULES, "playwright-core"));

const env = (k) => {
  if (!process.env[k]) throw new Error(k + " is not set");
  return process.env[k];
};
const url = env("WEB_URL");
let failures = 0;

function check(what, ok, seen) {
  if (ok) console.log("  ok: " + what);
  else {
    failures++;
    console.log("  FAIL: " + what + (seen !== undefined ? " (seen: " + JSON.stringify(seen) + ")" : ""));
  }
}

// The names of the frames drawn, and whether a function is among them.
const frameNames = (page) =>
  page.$$eval("#chart svg g.frame", (gs) => gs.map((g) => g.getAttribute("name")));

async function waitFrames(page, want, notWanted) {
  try {
    await page.waitForFunction(([w, nw]) => {
      const names = [...document.querySelectorAll("#chart svg g.frame")].map((g) => g.getAttribute("name"));
      return names.includes(w) && (!nw || !names.includes(nw));
    }, [want, notWanted || null], { timeout: 15000 });
    return true;
  } catch (e) {
    return false;
  }
}

async function main() {
  const ctx = await chromium.launchPersistentContext(env("WEB_PROFILE_DIR"), {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1400, height: 820 },
    timeout: 30000,
  });
  const errors = [];
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    page.setDefaultTimeout(15000);
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });

    await page.goto(url + "/", { waitUntil: "load" });
    check("the page loads with its title", (await page.title()) === "libprof", await page.title());
    await page.waitForSelector("#service option", { state: "attached" });
    const services = await page.$$eval("#service option", (os) => os.map((o) => o.value));
    check("the services list offers " + env("WEB_SERVICE"), services.includes(env("WEB_SERVICE")), services);

    // choose the service, then the type
    await page.selectOption("#service", env("WEB_SERVICE"));
    await page.waitForFunction((s) => location.hash.includes("service=" + s), env("WEB_SERVICE"));
    await page.selectOption("#type", env("WEB_TYPE"));
    const drawn = await waitFrames(page, env("WEB_FUNC"));
    const names = await frameNames(page);
    check("the flame graph is drawn (SVG frames)", names.length >= 3, names.length);
    check("the flame graph shows " + env("WEB_FUNC"), drawn, names);
    check("the flame graph shows " + env("WEB_NOT_IN_TRACE") + " among all samples",
          names.includes(env("WEB_NOT_IN_TRACE")), names);
    await page.waitForTimeout(700);             // labels appear after the transition

    // hover: the tooltip names the function, its value and share
    await page.hover(`#chart g.frame[name="${env("WEB_FUNC")}"] rect`, { force: true });
    const tip = await page.waitForSelector(".d3-flame-graph-tip", { state: "visible" })
      .then((t) => t.textContent()).catch(() => "");
    check("hovering shows the function, its value and share",
          tip.includes(env("WEB_FUNC")) && /%/.test(tip) && /of the total/.test(tip), tip);
    await page.waitForTimeout(400);             // the tooltip fades in
    await page.screenshot({ path: path.join(env("WEB_SHOTS"), "web-hover.png") });
    const details = await page.textContent("#details");
    check("hovering fills the details line", details.includes(env("WEB_FUNC")), details);
    await page.mouse.move(5, 5);

    // search: matching frames are highlighted
    await page.fill("#search", env("WEB_FUNC"));
    const lit = await page.waitForFunction((fn) => {
      const r = document.querySelector(`#chart g.frame[name="${fn}"] rect`);
      return r && /230, ?0, ?230|#e600e6/i.test(r.getAttribute("fill"));
    }, env("WEB_FUNC"), { timeout: 5000 }).then(() => true).catch(() => false);
    check("searching highlights the matching frame", lit,
          await page.$eval(`#chart g.frame[name="${env("WEB_FUNC")}"] rect`, (r) => r.getAttribute("fill")));
    const searchLine = await page.textContent("#details");
    check("searching tells the matched share", /match/.test(searchLine) && /%/.test(searchLine), searchLine);
    await page.screenshot({ path: path.join(env("WEB_SHOTS"), "web-service.png") });
    await page.fill("#search", "");

    // click: zoom into the function; the frame then spans the graph
    const width = async (fn) => page.$eval(`#chart g.frame[name="${fn}"] rect`,
                                           (r) => parseFloat(r.getAttribute("width")));
    const before = await width(env("WEB_FUNC"));
    await page.click(`#chart g.frame[name="${env("WEB_FUNC")}"] rect`, { force: true });
    await page.waitForTimeout(900);
    const after = await width(env("WEB_FUNC"));
    const full = await page.$eval("#chart svg", (s) => parseFloat(s.getAttribute("width")));
    check("clicking zooms: the frame then spans the graph", after > before && after > 0.95 * full,
          { before, after, full });
    await page.click("#reset");
    await page.waitForTimeout(900);
    check("reset zoom restores the frame's width", Math.abs((await width(env("WEB_FUNC"))) - before) < 1,
          { before, now: await width(env("WEB_FUNC")) });

    // the traces list: a trace id shows the flame graph of that trace alone
    const ids = await page.$$eval("#traces td.id a", (as) => as.map((a) => a.textContent));
    check("the traces list shows " + env("WEB_TRACE"), ids.includes(env("WEB_TRACE")), ids);
    await page.click(`#traces td.id a:text-is("${env("WEB_TRACE")}")`);
    const only = await waitFrames(page, env("WEB_TRACE_FUNC"), env("WEB_NOT_IN_TRACE"));
    const traceNames = await frameNames(page);
    check("the trace's graph shows " + env("WEB_TRACE_FUNC"), traceNames.includes(env("WEB_TRACE_FUNC")),
          traceNames);
    check("the trace's graph has only that trace's functions (no " + env("WEB_NOT_IN_TRACE") + ")",
          only, traceNames);
    const title = await page.textContent("#title");
    check("the title names the trace", title.includes(env("WEB_TRACE")), title);
    check("the trace is marked in the list",
          (await page.$$eval("#traces tr.selected td.id a", (as) => as.map((a) => a.textContent)))
            .includes(env("WEB_TRACE")));
    const cmd = await page.textContent("#pprof-cmd");
    check("the go tool pprof command of the trace is shown",
          cmd.includes("/api/v1/profiles?") && cmd.includes("trace_id=" + env("WEB_TRACE")), cmd);
    await page.waitForTimeout(700);
    await page.screenshot({ path: path.join(env("WEB_SHOTS"), "web-trace.png") });

    // back to all samples
    await page.click("#all-samples a");
    check("'all samples' shows the whole service again", await waitFrames(page, env("WEB_NOT_IN_TRACE")),
          await frameNames(page));
    check("no script errors on the page", errors.length === 0, errors);

    // a collector with a token: the page asks for it, then shows the graph
    if (process.env.WEB_TOKEN_URL) {
      await page.goto(process.env.WEB_TOKEN_URL + "/#service=" + env("WEB_SERVICE"), { waitUntil: "load" });
      const asked = await page.waitForSelector("#auth", { state: "visible" }).then(() => true, () => false);
      check("with --token, the page asks for the token", asked, await page.textContent("#message"));
      await page.fill("#token", env("WEB_TOKEN"));
      await page.click("#auth button");
      check("with the token given, the flame graph is drawn", await waitFrames(page, env("WEB_FUNC")),
            await frameNames(page));
    }
  } finally {
    await ctx.close();
  }
}

const timer = setTimeout(() => {
  console.log("  FAIL: the browser test did not finish within 90 s");
  process.exit(1);
}, 90000);
main().then(() => {
  clearTimeout(timer);
  process.exit(failures ? 1 : 0);
}, (e) => {
  clearTimeout(timer);
  console.log("  FAIL: " + (e && e.stack || e));
  process.exit(2);
});
