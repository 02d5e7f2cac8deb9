// fork_tree.js N: starts N grandchildren (half of them detached into their own
// session, escaping the process group), each of which starts one more
// sleeping child, prints every pid as a JSON line on stdout and then sleeps
// forever, so only a timeout or cancellation ends it.
'use strict';
const { spawn } = require('child_process');
const n = Number(process.argv[2] || 4);
const sleeper = `
const { spawn } = require('child_process');
const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
process.stdout.write(JSON.stringify({ pid: c.pid }) + '\\n');
setInterval(() => {}, 1000);
`;
process.stdout.write(JSON.stringify({ pid: process.pid }) + '\n');
for (let i = 0; i < n; i++) {
  const c = spawn(process.execPath, ['-e', sleeper], {
    detached: i % 2 === 1,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  process.stdout.write(JSON.stringify({ pid: c.pid }) + '\n');
  c.stdout.on('data', (d) => process.stdout.write(d));
}
setInterval(() => {}, 1000);
