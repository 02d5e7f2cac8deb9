// self_kill.js: sends itself SIGTERM.
'use strict';
process.kill(process.pid, 'SIGTERM');
setInterval(() => {}, 1000);
