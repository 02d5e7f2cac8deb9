// alloc_buffers.js MiB [holdMs]: allocates MiB of off-heap Buffers in 16 MiB
// steps, touching every page (fill 1, so the kernel must back them), then
// holds them for holdMs and exits 0. Heap flags do not bound these bytes; a
// cgroup or the watchdog must.
'use strict';
const total = Number(process.argv[2] || 512);
const hold = Number(process.argv[3] || 0);
const bufs = [];
const step = 16;
function grow(done) {
  if (done >= total) {
    process.stderr.write(`alloc_buffers: holding ${done} MiB\n`);
    setTimeout(() => { process.stdout.write(`allocated ${done}\n`); process.exit(0); }, hold);
    return;
  }
  const n = Math.min(step, total - done);
  bufs.push(Buffer.alloc(n * 1024 * 1024, 1));
  // Yield between steps so a sampling watchdog sees the growth.
  setTimeout(() => grow(done + n), 5);
}
grow(0);
