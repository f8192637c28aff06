// Static file server for the `static` template, run inside the sandbox by the sandbox-proxy.
// Serves /work under $KILN_BASE on $PORT; directories serve their index.html.
import http from 'node:http'
import fs from 'node:fs'
import path from 'node:path'

const root = '/work'
const base = process.env.KILN_BASE || '/'
const port = Number(process.env.PORT || 5173)
const types = {
  '.html': 'text/html; charset=utf-8', '.css': 'text/css', '.js': 'text/javascript',
  '.mjs': 'text/javascript', '.json': 'application/json', '.svg': 'image/svg+xml',
  '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif',
  '.webp': 'image/webp', '.ico': 'image/x-icon', '.txt': 'text/plain; charset=utf-8',
}

http.createServer((req, res) => {
  let p = decodeURIComponent((req.url || '/').split('?')[0])
  if (p.startsWith(base)) p = '/' + p.slice(base.length)
  let file = path.join(root, path.normalize(p))
  if (!file.startsWith(root)) { res.writeHead(403).end(); return }
  try {
    if (fs.statSync(file).isDirectory()) file = path.join(file, 'index.html')
    const body = fs.readFileSync(file)
    res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream', 'cache-control': 'no-store' })
    res.end(body)
  } catch {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
  }
}).listen(port, '0.0.0.0')
