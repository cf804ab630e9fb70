// The example app git-sync keeps in step with its repository: push this folder (server.js and
// public/) to your repository. Files are read from APP_ROOT on every request, so a pushed page
// is served as soon as git-sync publishes it; server.js itself runs from the commit it started
// with (the stack's livenessProbe restarts it when a newer commit is published).
"use strict";
const fs = require("fs");
const http = require("http");
const path = require("path");

const root = process.env.APP_ROOT || "/srv/app/current";
const port = Number(process.env.PORT || 3000);
const types = { ".html": "text/html; charset=utf-8", ".txt": "text/plain; charset=utf-8",
  ".css": "text/css", ".js": "text/javascript", ".json": "application/json" };
let notified = null; // the last commit git-sync's webhook announced

http.createServer((req, res) => {
  const url = new URL(req.url, "http://app");
  if (url.pathname === "/-/synced") {
    if (req.method === "POST") {
      notified = req.headers["gitsync-hash"] || null;
      console.log(`git-sync published ${notified}`);
      res.writeHead(204).end();
    } else {
      res.writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ commit: notified }));
    }
    return;
  }
  const name = url.pathname.endsWith("/") ? url.pathname + "index.html" : url.pathname;
  const file = path.join(root, "public", path.normalize(name));
  fs.readFile(file, (err, body) => {
    if (err) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    res.writeHead(200, { "content-type": types[path.extname(file)] || "application/octet-stream" })
      .end(body);
  });
}).listen(port, () => console.log(`serving ${root}/public on :${port}`));
