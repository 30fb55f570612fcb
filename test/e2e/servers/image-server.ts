// An HTTP server of disk images for the DataVolume tests and the import
// benchmark, run in a pod from the e2e-servers image: it serves the files of
// its directory with Range reads (as a web server would), and
// /truncated/<file>, the first MiB of one, as a download cut short.
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, normalize } from 'node:path';

const DIR = process.argv[2] ?? '/srv/images';
const TRUNCATED = 1024 * 1024;

createServer((req, res) => {
  const path = decodeURIComponent((req.url ?? '/').split('?')[0]);
  const truncated = path.startsWith('/truncated/');
  const file = join(DIR, normalize(truncated ? path.slice('/truncated'.length) : path));
  let size: number;
  try {
    size = statSync(file).size;
    if (!file.startsWith(DIR)) throw new Error('outside');
  } catch {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    return;
  }
  if (truncated) size = Math.min(size, TRUNCATED);
  const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
  let start = 0;
  let end = size - 1;
  if (range) {
    start = range[1] ? Number(range[1]) : size - Number(range[2]);
    end = range[1] && range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
    if (start > end || start >= size) {
      res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
      return;
    }
  }
  const headers = { 'accept-ranges': 'bytes', 'content-length': String(end - start + 1), 'content-type': 'application/octet-stream' };
  res.writeHead(range ? 206 : 200, range ? { ...headers, 'content-range': `bytes ${start}-${end}/${size}` } : headers);
  if (req.method === 'HEAD') return void res.end();
  createReadStream(file, { start, end }).pipe(res);
}).listen(8080);
