'use strict';
// S0 for Node: one turn of the event loop, then hello.
setImmediate(() => console.log('hello'));
