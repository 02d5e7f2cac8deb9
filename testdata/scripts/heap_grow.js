// heap_grow.js: grows the JS heap (not Buffers) without bound until V8 aborts
// with "JavaScript heap out of memory".
'use strict';
const keep = [];
for (;;) {
  keep.push(new Array(100000).fill(1.5));
}
