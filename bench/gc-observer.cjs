// Preloaded into ocimirror by bench/warm-gc.ts (node --require): appends one line per V8 garbage collection,
// "<epoch ms> <minor|major|incremental|weakcb> <ms>", to $OCIMIRROR_BENCH_GC_LOG, flushed every 100 ms.
'use strict';
const fs = require('node:fs');
const { PerformanceObserver, constants } = require('node:perf_hooks');

const file = process.env.OCIMIRROR_BENCH_GC_LOG;
const KINDS = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};
if (file) {
  let lines = [];
  const origin = performance.timeOrigin;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) lines.push(`${Math.round(origin + e.startTime)} ${KINDS[e.detail?.kind] ?? e.detail?.kind} ${e.duration.toFixed(2)}`);
  }).observe({ entryTypes: ['gc'] });
  const flush = () => { if (lines.length) { fs.appendFileSync(file, `${lines.join('\n')}\n`); lines = []; } };
  setInterval(flush, 100).unref();
  process.on('exit', flush);
}
