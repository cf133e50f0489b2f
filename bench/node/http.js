// The peer of bench/http.lua: Node's own HTTP server (llhttp) answering
// "Hello, World!" with keep-alive. Prints "port N" once listening.
//   node bench/node/http.js [port]
const http = require("http");
const server = http.createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" });
  res.end("Hello, World!");
});
server.keepAliveTimeout = 5000;
server.listen(Number(process.argv[2] || 0), "127.0.0.1", () => {
  console.log("port " + server.address().port);
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => server.close(() => process.exit(0)));
