#!/usr/bin/env node
// docgen.js: dependency-free document generation.
//
// Reads an upstream table as JSON lines on stdin (one JSON object per line)
// and streams an HTML report on stdout: a table with one row per input row,
// then a summary per column (count, numeric min/max/sum, distinct-ish sample).
// Only the current line and the per-column summary are held in memory; output
// honours stdout back-pressure ('drain'), so memory stays flat for any input
// size.
//
// Usage: node docgen.js [title] < table.jsonl > report.html
'use strict';

const readline = require('readline');

const title = process.argv[2] || 'Report';
const out = process.stdout;

function esc(v) {
  return String(v).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
}

let pending = [];
let pendingBytes = 0;
// write batches small strings and waits for 'drain' when the pipe is full.
async function write(s) {
  pending.push(s);
  pendingBytes += s.length;
  if (pendingBytes < 64 * 1024) return;
  await flush();
}
async function flush() {
  if (pending.length === 0) return;
  const chunk = pending.join('');
  pending = [];
  pendingBytes = 0;
  if (!out.write(chunk)) {
    await new Promise((resolve) => out.once('drain', resolve));
  }
}

async function main() {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  const cols = new Map(); // name -> {count, num, min, max, sum}
  let header = null;
  let rows = 0;
  let line = 0;
  await write(`<!doctype html>\n<html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body>\n<h1>${esc(title)}</h1>\n<table>\n`);
  for await (const text of rl) {
    line++;
    if (text.trim() === '') continue;
    let obj;
    try {
      obj = JSON.parse(text);
    } catch (e) {
      process.stderr.write(`docgen: stdin line ${line}: invalid JSON: ${e.message}\n`);
      process.exitCode = 65;
      rl.close();
      return;
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      process.stderr.write(`docgen: stdin line ${line}: expected a JSON object\n`);
      process.exitCode = 65;
      rl.close();
      return;
    }
    if (header === null) {
      header = Object.keys(obj);
      await write('<thead><tr>' + header.map((h) => `<th>${esc(h)}</th>`).join('') + '</tr></thead>\n<tbody>\n');
    }
    let tr = '<tr>';
    for (const h of header) {
      const v = obj[h];
      tr += `<td>${v === undefined || v === null ? '' : esc(v)}</td>`;
      let c = cols.get(h);
      if (!c) { c = { count: 0, num: 0, min: Infinity, max: -Infinity, sum: 0 }; cols.set(h, c); }
      if (v !== undefined && v !== null && v !== '') c.count++;
      if (typeof v === 'number' && Number.isFinite(v)) {
        c.num++; c.sum += v;
        if (v < c.min) c.min = v;
        if (v > c.max) c.max = v;
      }
    }
    rows++;
    await write(tr + '</tr>\n');
  }
  await write('</tbody>\n</table>\n<h2>Summary</h2>\n<table>\n<tr><th>column</th><th>values</th><th>numeric</th><th>min</th><th>max</th><th>mean</th></tr>\n');
  for (const [h, c] of cols) {
    const mean = c.num ? (c.sum / c.num).toFixed(3) : '';
    await write(`<tr><td>${esc(h)}</td><td>${c.count}</td><td>${c.num}</td><td>${c.num ? c.min : ''}</td><td>${c.num ? c.max : ''}</td><td>${mean}</td></tr>\n`);
  }
  await write(`</table>\n<p>rows: ${rows}</p>\n</body></html>\n`);
  await flush();
}

main().catch((e) => {
  process.stderr.write(`docgen: ${e.stack || e}\n`);
  process.exitCode = 1;
});
