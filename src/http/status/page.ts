// The status page document: inline CSS and JS, no external resources (the CSP of the
// route allows nothing else). The script renders a StatusSnapshot (see ../status.ts) into
// the section elements, then polls status.json and re-renders only the sections whose
// data changed. All text goes in through textContent, never innerHTML: titles and labels
// come from file names and tags, which anyone who can drop a file on the NAS controls.
//
// The client code below is kept free of backticks and dollar-brace so it can live in a
// String.raw template.

import { escAttr, escText } from '../../util/xml.js';

const CSS = String.raw`
:root{--bg:#f4f5f7;--card:#fff;--fg:#1d2330;--mut:#687083;--line:#e3e6ec;--acc:#2f6fd6;
--disk:#2f8f5b;--tape:#b8741a;--both:#5b5fc7;--warn:#b3261e;--warnbg:#fdecea;--ok:#2f8f5b;--track:#e9ecf1}
@media (prefers-color-scheme:dark){:root{--bg:#14171c;--card:#1d2128;--fg:#e6e8ec;--mut:#98a0ae;--line:#2c313a;
--acc:#7aa7ff;--disk:#4cc287;--tape:#e0a045;--both:#9a9dff;--warn:#ff8a80;--warnbg:#3a1f1f;--track:#2a2f38}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif}
header{display:flex;flex-wrap:wrap;gap:8px 24px;align-items:flex-end;justify-content:space-between;padding:20px 28px 8px;max-width:1280px;margin:0 auto}
h1{margin:0;font-size:22px;font-weight:650;display:flex;align-items:center;gap:10px}
h1 img{width:32px;height:32px}
h2{margin:0 0 12px;font-size:13px;font-weight:650;letter-spacing:.06em;text-transform:uppercase;color:var(--mut)}
.meta{color:var(--mut);font-size:13px}
.meta b{color:var(--fg);font-weight:600}
.live{display:inline-flex;align-items:center;gap:6px;font-size:12px;color:var(--mut)}
.live i{width:8px;height:8px;border-radius:50%;background:var(--ok);display:inline-block}
.live.down i{background:var(--warn)}
main{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);align-items:start;gap:16px;padding:12px 28px 28px;max-width:1280px;margin:0 auto}
@media (max-width:900px){main{grid-template-columns:minmax(0,1fr)}header,main{padding-left:12px;padding-right:12px}}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 18px;min-width:0}
section.wide{grid-column:1/-1}
.kpis{display:flex;flex-wrap:wrap;gap:10px 28px;margin-bottom:14px}
.kpi .n{display:block;font-size:24px;font-weight:650;font-variant-numeric:tabular-nums}
.kpi .l{color:var(--mut);font-size:12px}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:middle}
th{font-size:12px;color:var(--mut);font-weight:600}
td.r,th.r{text-align:right}
tfoot td{font-weight:650;border-bottom:0}
.bar{height:8px;border-radius:4px;background:var(--track);overflow:hidden;display:flex;min-width:80px}
.bar>span{display:block;height:100%}
.bar .disk{background:var(--disk)}.bar .tape{background:var(--tape)}.bar .both{background:var(--both)}.bar .fill{background:var(--acc)}
.legend{display:flex;flex-wrap:wrap;gap:14px;margin-top:8px;font-size:12px;color:var(--mut)}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;border:1px solid currentColor;white-space:nowrap}
.t-disk{color:var(--disk)}.t-tape{color:var(--tape)}.t-both{color:var(--both)}
.s-running,.s-reading,.s-writing,.s-locating,.s-loading,.s-unloading{color:var(--acc)}
.s-ready,.s-done{color:var(--ok)}.s-failed,.s-error,.s-offline,.s-down{color:var(--warn)}
.s-queued,.s-empty,.s-cancelled{color:var(--mut)}
.s-starting,.s-restarting,.s-waiting{color:var(--tape)}
.tablewrap{overflow-x:auto}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
.muted{color:var(--mut)}
.empty{color:var(--mut);margin:4px 0}
.err{color:var(--warn);font-size:13px;margin:6px 0 0}
.drives{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:10px;margin-bottom:14px}
.drive{border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.drive .top{display:flex;justify-content:space-between;align-items:center;gap:8px}
.drive .cart{font-size:18px;font-weight:650;margin:6px 0 2px}
.drive .cart.none{color:var(--mut);font-weight:400;font-size:15px}
.slots{display:grid;grid-template-columns:repeat(auto-fill,minmax(92px,1fr));gap:6px;margin-bottom:12px}
.slot{border:1px solid var(--line);border-radius:6px;padding:4px 6px;font-size:12px}
.slot .no{color:var(--mut);font-size:11px}
.slot.vacant{border-style:dashed;color:var(--mut)}
.slot.ie{background:var(--track)}
.alert{border:1px solid var(--warn);background:var(--warnbg);border-radius:8px;padding:10px 12px;margin-bottom:12px}
.alert h3{margin:0 0 6px;font-size:14px;color:var(--warn)}
.alert ul{margin:0;padding-left:18px}
.sub{margin:14px 0 6px;font-size:12px;color:var(--mut);font-weight:600}
.line{color:var(--mut);font-size:13px;margin-top:8px}
.line b{color:var(--fg);font-weight:600}
.prog{display:flex;align-items:center;gap:8px;min-width:160px}
.prog .bar{flex:1}
button{font:inherit;font-size:13px;padding:5px 12px;border-radius:6px;border:1px solid var(--line);background:var(--card);color:var(--fg);cursor:pointer}
button:disabled{opacity:.6;cursor:default}
.clip{max-width:340px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.noscript{padding:0 28px}
[hidden]{display:none!important}
`;

const JS = String.raw`
(function () {
  'use strict';
  var POLL = Number(document.body.getAttribute('data-poll')) || 3000;
  var lastKey = {};
  var snap = null;
  var timer = 0;

  // ---- small helpers ------------------------------------------------------------------
  function h(tag, cls, kids) {
    var el = document.createElement(tag);
    if (cls) el.className = cls;
    add(el, kids);
    return el;
  }
  function add(el, kids) {
    if (kids === undefined || kids === null || kids === false) return;
    if (Array.isArray(kids)) { kids.forEach(function (k) { add(el, k); }); return; }
    el.appendChild(typeof kids === 'object' ? kids : document.createTextNode(String(kids)));
  }
  function num(n) {
    if (typeof n !== 'number' || !isFinite(n)) return '\u2013';
    return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  }
  function bytes(n) {
    if (typeof n !== 'number' || !isFinite(n)) return '\u2013';
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    var i = 0;
    while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)) + ' ' + u[i];
  }
  function dur(s) {
    if (typeof s !== 'number' || !isFinite(s) || s < 0) return '\u2013';
    s = Math.floor(s);
    if (s < 60) return s + ' s';
    var m = Math.floor(s / 60);
    if (m < 60) return m + ' min ' + (s % 60) + ' s';
    var hh = Math.floor(m / 60);
    if (hh < 48) return hh + ' h ' + (m % 60) + ' min';
    return Math.floor(hh / 24) + ' d ' + (hh % 24) + ' h';
  }
  function pct(a, b) { return b > 0 ? Math.max(0, Math.min(100, (a / b) * 100)) : 0; }
  function bar(parts) {
    var el = h('div', 'bar');
    parts.forEach(function (p) {
      if (!(p[1] > 0)) return;
      var s = h('span', p[0]);
      s.style.width = p[1].toFixed(3) + '%';
      el.appendChild(s);
    });
    return el;
  }
  function badge(text, cls) { return h('span', 'badge ' + cls, text); }
  function row(cells, header) {
    var tr = h('tr');
    cells.forEach(function (c) {
      var right = Array.isArray(c) && c[0] === 'r';
      var td = h(header ? 'th' : 'td', right ? 'r' : '', right ? c[1] : c);
      tr.appendChild(td);
    });
    return tr;
  }
  function table(head, rows, foot) {
    var t = h('table');
    t.appendChild(h('thead', '', row(head, true)));
    t.appendChild(h('tbody', '', rows));
    if (foot) t.appendChild(h('tfoot', '', foot));
    return h('div', 'tablewrap', t);
  }
  function kpi(n, label, cls) { return h('div', 'kpi ' + (cls || ''), [h('span', 'n', n), h('span', 'l', label)]); }
  function ago(ms) { return snap && ms ? dur((snap.generatedAt - ms) / 1000) : '\u2013'; }
  var TIER_NAMES = { disk: 'Disk', tape: 'Tape', both: 'Disk + tape', none: 'Nowhere' };
  function tierBadge(t) { return badge(TIER_NAMES[t] || t, 't-' + t); }
  function stateBadge(s) { return badge(s, 's-' + String(s).toLowerCase().replace(/[^a-z]/g, '')); }
  function errLine(name) {
    var e = snap && snap.errors && snap.errors[name];
    return e ? h('p', 'err', name.charAt(0).toUpperCase() + name.slice(1) + ' status unavailable: ' + e) : null;
  }

  // ---- sections -------------------------------------------------------------------------
  function renderServer(s) {
    var kids = [];
    kids.push(h('span', '', ['Tapedeck ', h('b', '', s.version || '')]));
    if (s.startedAt) kids.push(h('span', '', [' \u00b7 up ', h('b', 'uptime', ago(s.startedAt))]));
    var scan = s.lastScan;
    if (s.scanning) {
      kids.push(h('span', 'scan', [' \u00b7 ', h('b', '', 'scanning'), ': ' + num(scan ? scan.seen : 0) + ' files seen, ' + num(scan ? scan.probed : 0) + ' read']));
    } else if (scan) {
      kids.push(h('span', 'scan', ' \u00b7 last scan: ' + num(scan.seen) + ' files in ' + dur(scan.elapsedMs / 1000) + (scan.failed ? ', ' + num(scan.failed) + ' unreadable' : '')));
    }
    if (s.watch) {
      kids.push(h('span', 'watch', s.watch.limited ? ' \u00b7 watch limit reached: ' + num(s.watch.dirs) + ' folders watched, ' + num(s.watch.unwatched) + ' left to the periodic rescan' : ' \u00b7 watching ' + num(s.watch.dirs) + ' folders'));
    }
    if (s.urls && s.urls.length) kids.push(h('span', 'mono', ' \u00b7 ' + s.urls.join(' ')));
    return h('div', 'meta', kids);
  }

  var CLASSES = ['audio', 'video', 'image'];
  var TIERS = ['disk', 'both', 'tape'];
  function renderLibrary(lib) {
    if (!lib) return [h('p', 'empty', 'Library totals are not available.'), errLine('library')];
    var classes = CLASSES.slice();
    var tiers = TIERS.slice();
    lib.cells.forEach(function (c) {
      if (classes.indexOf(c.class) < 0) classes.push(c.class);
      if (tiers.indexOf(c.tier) < 0) tiers.push(c.tier);
    });
    var cell = {};
    lib.cells.forEach(function (c) { cell[c.class + '/' + c.tier] = c; });
    function count(cls, tier) { var c = cell[cls + '/' + tier]; return c ? c.items : 0; }
    var tierBytes = {};
    lib.cells.forEach(function (c) { tierBytes[c.tier] = (tierBytes[c.tier] || 0) + c.bytes; });
    var by = lib.byTier || {};
    var rows = classes.map(function (cls) {
      var total = 0;
      var cells = [cls.charAt(0).toUpperCase() + cls.slice(1)];
      tiers.forEach(function (t) { var n = count(cls, t); total += n; cells.push(['r', num(n)]); });
      cells.push(['r', num(total)]);
      return row(cells);
    });
    var foot = ['All items'];
    tiers.forEach(function (t) { foot.push(['r', num(by[t] || 0)]); });
    foot.push(['r', num(lib.items)]);
    var head = ['Class'];
    tiers.forEach(function (t) { head.push(['r', TIER_NAMES[t] || t]); });
    head.push(['r', 'Total']);
    var legend = h('div', 'legend', tiers.map(function (t) {
      var i = h('i');
      i.style.background = 'var(--' + (t === 'none' ? 'mut' : t) + ')';
      return h('span', '', [i, (TIER_NAMES[t] || t) + ' ' + num(by[t] || 0) + ' \u00b7 ' + bytes(tierBytes[t] || 0)]);
    }));
    return [
      h('div', 'kpis', [
        kpi(num(lib.items), 'items'),
        kpi(bytes(lib.bytes), 'total size'),
        kpi(num((by.disk || 0) + (by.both || 0)), 'on disk'),
        kpi(num((by.tape || 0) + (by.both || 0)), 'on tape'),
      ]),
      table(head, rows, row(foot)),
      h('div', 'sub', 'By tier'),
      bar(tiers.map(function (t) { return [t, pct(by[t] || 0, lib.items)]; })),
      legend,
      errLine('library'),
    ];
  }

  function renderTape(tape) {
    var stager = snap.stager;
    if (!tape) {
      if (snap.errors.tape) return [errLine('tape'), stager ? stagerLine(stager) : null];
      return [h('p', 'empty', 'No tape library is configured: the whole library lives on disk.'), stager ? stagerLine(stager) : null, errLine('stager')];
    }
    var out = [];
    var need = tape.offlineNeeded || [];
    if (need.length) {
      out.push(h('div', 'alert offline-needed', [
        h('h3', '', need.length === 1 ? '1 cartridge needed but offline' : need.length + ' cartridges needed but offline'),
        h('ul', '', need.map(function (c) {
          var bits = [h('span', 'mono', c.label)];
          if (c.items) bits.push(' \u2014 needed by ' + num(c.items) + (c.items === 1 ? ' item' : ' items'));
          if (c.reason) bits.push(' \u2014 ' + c.reason);
          if (c.since) bits.push(' (for ' + ago(c.since) + ')');
          return h('li', '', bits);
        })),
      ]));
    }
    out.push(h('div', 'drives', tape.drives.map(function (d) {
      return h('div', 'drive', [
        h('div', 'top', [h('b', '', 'Drive ' + d.index), stateBadge(d.state)]),
        d.label ? h('div', 'cart mono', d.label) : h('div', 'cart none', 'no cartridge'),
        h('div', 'muted', [d.generation, d.name && d.name !== 'drive' + d.index ? d.name : null, d.position !== undefined && d.position !== null ? 'block ' + num(d.position) : null].filter(Boolean).join(' \u00b7 ')),
        d.activity ? h('div', 'activity', d.activity) : null,
      ]);
    })));
    var storage = tape.slots.filter(function (s) { return !s.importExport; });
    var used = storage.filter(function (s) { return s.label || s.full; }).length;
    out.push(h('div', 'sub', 'Slots \u00b7 ' + used + ' of ' + storage.length + ' full'));
    out.push(h('div', 'slots', tape.slots.map(function (s) {
      var full = !!(s.label || s.full);
      return h('div', 'slot' + (full ? '' : ' vacant') + (s.importExport ? ' ie' : ''), [
        h('div', 'no', (s.importExport ? 'I/E ' : 'Slot ') + s.slot),
        h('div', 'mono', s.label || (full ? 'unlabelled' : 'empty')),
      ]);
    })));
    var c = tape.counters;
    if (c) {
      var parts = [];
      if (c.mounts !== undefined) parts.push(['mounts', num(c.mounts)]);
      if (c.locates !== undefined) parts.push(['locates', num(c.locates)]);
      if (c.bytesRead !== undefined) parts.push(['read', bytes(c.bytesRead)]);
      if (c.bytesWritten !== undefined) parts.push(['written', bytes(c.bytesWritten)]);
      if (c.readErrors) parts.push(['read errors', num(c.readErrors)]);
      out.push(h('div', 'line', parts.map(function (p, i) { return h('span', '', [(i ? ' \u00b7 ' : '') + p[0] + ' ', h('b', '', p[1])]); })));
    }
    if (tape.offline && tape.offline.length) out.push(h('div', 'line', 'Outside the library: ' + tape.offline.join(', ')));
    if (stager) out.push(stagerLine(stager));
    out.push(errLine('tape'));
    out.push(errLine('stager'));
    return out;
  }

  function stagerLine(s) {
    var bits = ['Stager worker: ', stateBadge(s.state)];
    if (s.pid) bits.push(' pid ' + s.pid);
    bits.push(' \u00b7 ' + num(s.restarts) + (s.restarts === 1 ? ' restart' : ' restarts'));
    if (s.queued !== undefined) bits.push(' \u00b7 ' + num(s.queued) + ' queued');
    if (s.recallHolds) bits.push(' \u00b7 ' + num(s.recallHolds) + (s.recallHolds === 1 ? ' cartridge' : ' cartridges') + ' kept loaded for a recall');
    if (s.prestages !== undefined) bits.push(' \u00b7 ' + num(s.prestages) + (s.prestages === 1 ? ' pre-stage' : ' pre-stages') + (s.prestagedBytes ? ' (' + bytes(s.prestagedBytes) + ')' : ''));
    if (s.preemptions !== undefined) bits.push(' \u00b7 ' + num(s.preemptions) + (s.preemptions === 1 ? ' job pre-empted by playback' : ' jobs pre-empted by playback'));
    if (s.cacheWriteErrors) bits.push(h('span', 'err', ' \u00b7 ' + num(s.cacheWriteErrors) + (s.cacheWriteErrors === 1 ? ' cache write error' : ' cache write errors')));
    if (s.uncachedReads) bits.push(' \u00b7 ' + num(s.uncachedReads) + (s.uncachedReads === 1 ? ' read' : ' reads') + ' uncached' + (s.uncachedBytes ? ' (' + bytes(s.uncachedBytes) + ')' : ''));
    var stalled = (s.stalls || 0) + (s.stalledReads || 0);
    if (stalled) bits.push(h('span', 'err', ' \u00b7 ' + num(stalled) + (stalled === 1 ? ' stalled read' : ' stalled reads') + ' (worker ' + num(s.stalls || 0) + ', server ' + num(s.stalledReads || 0) + ')'));
    if (s.lastError) bits.push(h('span', 'err', ' \u00b7 ' + s.lastError));
    return h('div', 'line stager', bits);
  }

  function progressOf(j) {
    var p = j.progress;
    if (!p) return h('span', 'muted', '\u2013');
    var fmt = p.unit === 'bytes' ? bytes : num;
    if (!(p.total > 0)) return h('span', '', fmt(p.done));
    if (typeof p.written === 'number') {
      // archive: written, then read back and verified; each pass over the same item bytes
      var w = pct(p.written, p.total), d = pct(p.done, p.total);
      return h('div', 'prog', [bar([['fill', d], ['tape', Math.max(0, w - d)]]), h('span', '', fmt(p.written) + ' of ' + fmt(p.total) + ' written \u00b7 ' + fmt(p.done) + ' verified')]);
    }
    var v = pct(p.done, p.total);
    return h('div', 'prog', [bar([['fill', v]]), h('span', '', Math.floor(v) + '% \u00b7 ' + fmt(p.done) + ' of ' + fmt(p.total))]);
  }
  function renderJobs(jobs) {
    if (!jobs) return snap.errors.jobs ? errLine('jobs') : h('p', 'empty', 'No job queue: archiving and recall need a tape library.');
    if (!jobs.length) return [h('p', 'empty', 'No jobs.'), errLine('jobs')];
    return [
      table(['Job', 'State', 'Progress', 'Details', ['r', 'Started']], jobs.map(function (j) {
        var details = [j.label ? h('span', 'mono', j.label + ' ') : null, j.description || ''];
        if (j.error) details.push(h('div', 'err', j.error));
        return row([[h('b', '', j.kind), ' ', h('span', 'muted mono', '#' + j.id)], stateBadge(j.state), progressOf(j), details, ['r', j.startedAt ? ago(j.startedAt) + ' ago' : '\u2013']]);
      })),
      errLine('jobs'),
    ];
  }

  function renderStreams(list) {
    if (!list.length) return [h('p', 'empty', 'No active streams.'), errLine('streams')];
    return [
      table(['Item', 'Tier', 'Client', ['r', 'Range'], ['r', 'Sent'], ['r', 'Rate'], ['r', 'For']], list.map(function (s) {
        var range = s.size !== undefined ? bytes(s.start || 0) + '\u2013' + bytes((s.end || 0) + 1) + ' of ' + bytes(s.size) : '\u2013';
        var client = h('div', 'clip', [s.remote ? h('span', 'mono', s.remote) : '', s.client ? h('span', 'muted', ' ' + s.client) : '']);
        if (s.client) client.title = s.client;
        return row([h('div', 'clip', s.title || s.id), tierBadge(s.tier), client, ['r', range], ['r', bytes(s.bytes)], ['r', s.rate ? bytes(s.rate) + '/s' : '\u2013'], ['r', ago(s.startedAt)]]);
      })),
      errLine('streams'),
    ];
  }

  function renderCache(c) {
    if (!c) return snap.errors.cache ? errLine('cache') : h('p', 'empty', 'No staging cache: it exists only with a tape tier.');
    var lookups = c.hits + c.misses;
    var ratio = lookups > 0 ? (100 * c.hits / lookups).toFixed(1) + '%' : '\u2013';
    var used = pct(c.usedBytes, c.capacityBytes);
    return [
      h('div', 'kpis', [kpi(ratio, 'hit ratio', 'ratio'), kpi(num(c.hits), 'hits'), kpi(num(c.misses), 'misses'), c.evictions !== undefined ? kpi(num(c.evictions), 'evictions') : null]),
      bar([['fill', used]]),
      h('div', 'line', [h('b', '', bytes(c.usedBytes)), ' of ' + bytes(c.capacityBytes) + ' used (' + used.toFixed(0) + '%)' + (c.segments !== undefined ? ' \u00b7 ' + num(c.segments) + ' segments' : '')]),
      errLine('cache'),
    ];
  }

  function renderPolicy(p) {
    if (!p) return snap.errors.policy ? errLine('policy') : h('p', 'empty', 'No storage policy.');
    var next = p.nextPass === undefined ? 'manual only' : p.nextPass <= snap.generatedAt ? 'due now' : 'in ' + dur((p.nextPass - snap.generatedAt) / 1000);
    var out = [
      h('div', 'kpis', [kpi(next, 'next pass'), kpi(num(p.planned.archive), 'to archive'), kpi(num(p.planned.recall), 'to recall'), kpi(num(p.candidates), 'candidates'), kpi(num(p.promotions), 'promotions'), kpi(num(p.containerPromotions || 0), 'of containers')]),
      h('div', 'line', ['Window: ' + (p.window ? p.window + (p.inWindow ? ' (open now)' : ' (closed now)') : 'any time') + ' \u00b7 every ' + (p.interval > 0 ? dur(p.interval) : '\u2013 (manual only)')]),
    ];
    (p.usage || []).forEach(function (u) {
      var f = function (n) { return u.kind === 'percent' ? n + '%' : bytes(n); };
      var top = u.kind === 'percent' ? 100 : Math.max(u.high, u.before) * 1.1;
      out.push(bar([['fill', pct(u.before, top)]]));
      out.push(h('div', 'line', [h('b', '', u.scope), ': disk ' + f(u.before) + ' (high ' + f(u.high) + ', low ' + f(u.low) + ')' + (u.after !== u.before ? ', ' + f(u.after) + ' after the planned pass' : '')]));
    });
    if (!(p.usage || []).length) out.push(h('div', 'line', 'No disk watermark set.'));
    var l = p.lastPass;
    out.push(h('div', 'line', l ? ['Last pass ', ago(Date.parse(l.at)), ' ago (' + l.trigger + '): ', stateBadge(l.result), ' ' + l.archive + ' archived, ' + l.recall + ' recalled' + (l.reason ? ' \u2013 ' + l.reason : '')] : 'No pass yet.'));
    out.push(errLine('policy'));
    return out;
  }

  var REMOVED = ['expired', 'unsubscribed', 'failed', 'gone', 'replaced', 'left'];
  function renderEvents(list) {
    if (!list) return snap.errors.events ? errLine('events') : h('p', 'empty', 'No event services.');
    return [
      table(['Service', ['r', 'Subscriptions'], ['r', 'NOTIFYs sent'], ['r', 'Failed'], 'Ended'], list.map(function (e) {
        var ended = REMOVED.filter(function (r) { return e.removed && e.removed[r]; }).map(function (r) { return num(e.removed[r]) + ' ' + r; });
        return row([h('b', '', e.service), ['r', num(e.subscriptions)], ['r', num(e.sent)], ['r', e.failed ? h('span', 'err', num(e.failed)) : '0'], ended.length ? ended.join(', ') : h('span', 'muted', '\u2013')]);
      })),
      errLine('events'),
    ];
  }

  // ---- update loop ------------------------------------------------------------------------
  function section(id, data, fn) {
    var key = JSON.stringify([data, snap.errors[id] || null, id === 'tape' ? snap.stager : null]);
    // ages ('3 min ago') change every poll, so sections showing them always re-render
    if (lastKey[id] === key && id !== 'server' && id !== 'jobs' && id !== 'streams' && id !== 'tape' && id !== 'policy') return;
    lastKey[id] = key;
    var body = document.querySelector('#' + id + ' .body');
    if (!body) return;
    var frag = document.createDocumentFragment();
    add(frag, fn(data));
    body.replaceChildren(frag);
  }
  function render(s) {
    snap = s;
    if (s.server && s.server.name && document.title !== s.server.name) {
      document.title = s.server.name;
      document.getElementById('name').textContent = s.server.name;
    }
    section('server', s.server, renderServer);
    section('library', s.library, renderLibrary);
    section('tape', s.tape, renderTape);
    section('jobs', s.jobs, renderJobs);
    section('streams', s.streams, renderStreams);
    section('cache', s.cache, renderCache);
    section('policy', s.policy, renderPolicy);
    section('events', s.events, renderEvents);
    var btn = document.getElementById('rescan');
    btn.hidden = s.actions.indexOf('rescan') < 0;
    var d = new Date(s.generatedAt);
    document.getElementById('updated').textContent = '\u00b7 updated ' + d.toLocaleTimeString();
    document.body.setAttribute('data-generated', String(s.generatedAt));
  }
  function setLive(ok, why) {
    var el = document.getElementById('live');
    el.className = ok ? 'live' : 'live down';
    el.lastChild.textContent = ok ? 'live' : 'offline (' + why + '), retrying';
  }
  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }
  function poll() {
    if (document.hidden) return; // resumed by visibilitychange
    fetch('status.json', { cache: 'no-store', headers: { accept: 'application/json' } })
      .then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      })
      .then(function (s) { render(s); setLive(true); schedule(POLL); })
      .catch(function (e) { setLive(false, e && e.message ? e.message : 'error'); schedule(Math.min(POLL * 4, 30000)); });
  }
  document.addEventListener('visibilitychange', function () { if (!document.hidden) schedule(0); });
  document.getElementById('rescan').addEventListener('click', function (ev) {
    var b = ev.currentTarget;
    b.disabled = true;
    fetch('status/rescan', { method: 'POST', headers: { 'X-Tapedeck-Action': 'rescan' } })
      .then(function () { schedule(300); })
      .finally(function () { setTimeout(function () { b.disabled = false; }, 2000); });
  });
  var icon = document.querySelector('h1 img');
  function dropIcon() { if (icon && icon.parentNode) icon.parentNode.removeChild(icon); }
  if (icon) {
    icon.addEventListener('error', dropIcon);
    if (icon.complete && icon.naturalWidth === 0) dropIcon();
  }
  try {
    render(JSON.parse(document.getElementById('initial').textContent));
  } catch (e) {
    setLive(false, 'no data');
  }
  schedule(POLL);
})();
`;

export interface StatusPageOptions {
  title: string;
  nonce: string;
  pollMs: number;
  /** The first snapshot, already safe for a <script> element (see jsonForScript). */
  initialJson: string;
}

export function statusPageHtml(o: StatusPageOptions): string {
  const n = escAttr(o.nonce);
  const sec = (id: string, title: string, wide = false) =>
    `<section id="${id}"${wide ? ' class="wide"' : ''} aria-labelledby="${id}-h"><h2 id="${id}-h">${escText(title)}</h2><div class="body"></div></section>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escText(o.title)}</title><link rel="icon" href="icons/icon-48.png">
<style nonce="${n}">${CSS}</style></head>
<body data-poll="${Math.round(o.pollMs)}">
<header><div><h1><img src="icons/icon-48.png" alt=""><span id="name">${escText(o.title)}</span></h1><div id="server"><div class="body"></div></div></div>
<div><button id="rescan" type="button" hidden>Rescan library</button> <span id="live" class="live"><i></i><span>live</span></span> <span id="updated" class="meta"></span></div></header>
<noscript><p class="noscript">This page needs JavaScript; the same data is at <a href="status.json">status.json</a>.</p></noscript>
<main>
${sec('library', 'Library', false)}
${sec('cache', 'Staging cache')}
${sec('policy', 'Storage policy', true)}
${sec('tape', 'Tape library', true)}
${sec('jobs', 'Jobs', true)}
${sec('streams', 'Active streams', true)}
${sec('events', 'Event subscriptions (GENA)', true)}
</main>
<script type="application/json" id="initial">${o.initialJson}</script>
<script nonce="${n}">${JS}</script>
</body></html>
`;
}
