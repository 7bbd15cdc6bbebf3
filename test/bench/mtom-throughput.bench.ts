// MTOM relay throughput: MtomWriter → parser → sink versus a plain pipe of the same bytes, in one process.
//   node test/bench/run.js mtom-throughput [--mib 1024] [--part-kib 512] [--chunk-kib 64] [--rounds 5]
//                                          [--mode memory|tcp|both] [--pooled] [--smoke]
// Modes: `memory` moves the bytes through an in-process PassThrough ("wire"); `tcp` moves them through a
// loopback TCP connection, as the gateway does (socket in, socket out). Source chunks are fresh buffers
// (as a socket delivers them) unless --pooled, which reuses a few buffers and so measures pure overhead.
// Figures are medians over the rounds (after one warm-up round), the two variants alternating, in MiB per
// wall-clock second and per CPU-second (user + system, steadier on a busy machine); machines are noisy.
import { randomBytes } from 'node:crypto';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { PassThrough, Readable, Writable } from 'node:stream';
import { readSoapMessage } from '@xcai/shared/src/mtom/read';
import { MtomWriter } from '@xcai/shared/src/mtom/writer';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}
const smoke = process.argv.includes('--smoke');
const MIB = Number(arg('mib', smoke ? '8' : '1024'));
const PART = Number(arg('part-kib', '512')) * 1024;
const CHUNK = Number(arg('chunk-kib', '64')) * 1024;
const ROUNDS = Number(arg('rounds', smoke ? '1' : '5'));
const MODE = arg('mode', 'both');
const POOLED = process.argv.includes('--pooled');
const TOTAL = MIB * 1024 * 1024;
const POOL = Array.from({ length: 16 }, () => randomBytes(CHUNK));
const LIMITS = {
  maxPartHeaderBytes: 16 * 1024,
  maxParts: 10_000_000,
  maxRootBytes: 1 << 20,
  maxTotalBytes: 2 ** 50,
};

/** `size` bytes of random data in CHUNK-sized buffers. */
function source(size: number, start = 0): Readable {
  let sent = 0;
  let k = start;
  return new Readable({
    highWaterMark: CHUNK,
    read() {
      while (sent < size) {
        const n = Math.min(CHUNK, size - sent);
        const from = POOL[k++ % POOL.length];
        let c: Buffer;
        if (POOLED) {
          c = from.subarray(0, n);
        } else {
          c = Buffer.allocUnsafeSlow(n);
          from.copy(c, 0, 0, n);
        }
        sent += n;
        if (!this.push(c)) return;
      }
      this.push(null);
    },
  });
}

function sink(): { stream: Writable; bytes: () => number } {
  let n = 0;
  const stream = new Writable({
    highWaterMark: CHUNK,
    write(c: Buffer, _e, cb) {
      n += c.length;
      cb();
    },
  });
  return { stream, bytes: () => n };
}

/** Writes the whole MTOM package for TOTAL bytes of attachments into `wire`, then ends it. */
async function writeMtom(wire: Writable, w: MtomWriter): Promise<void> {
  await w.writeRoot('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>');
  for (let sent = 0, i = 0; sent < TOTAL; sent += PART, i++) {
    await w.writePart(w.newContentId(), 'application/dicom', source(Math.min(PART, TOTAL - sent), i));
  }
  await w.end();
  wire.end();
}

/** Reads an MTOM package from `wire` and pipes every attachment into one sink; returns the bytes. */
async function readMtom(wire: Readable, contentType: string): Promise<number> {
  const msg = await readSoapMessage(wire, contentType, LIMITS);
  const s = sink();
  for (;;) {
    const part = await msg.attachments.next();
    if (!part) break;
    await new Promise<void>((resolve, reject) => {
      part.body.on('end', resolve);
      part.body.on('error', reject);
      part.body.pipe(s.stream, { end: false });
    });
  }
  return s.bytes();
}

async function plainMemory(): Promise<number> {
  const s = sink();
  const done = new Promise<void>((resolve, reject) => {
    s.stream.on('finish', resolve);
    s.stream.on('error', reject);
  });
  source(TOTAL).pipe(new PassThrough()).pipe(s.stream);
  await done;
  return s.bytes();
}

async function mtomMemory(): Promise<number> {
  const wire = new PassThrough();
  const w = new MtomWriter(wire);
  const [, n] = await Promise.all([writeMtom(wire, w), readMtom(wire, w.contentType)]);
  return n;
}

let server: Server;
let onConnection: (socket: Socket) => void = () => undefined;

async function listen(): Promise<number> {
  // As Node's HTTP server and client do, turn Nagle's algorithm off.
  server = createServer({ noDelay: true }, (socket) => onConnection(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function accepted(): Promise<Socket> {
  return new Promise((resolve) => (onConnection = resolve));
}

async function plainTcp(port: number): Promise<number> {
  const incoming = accepted();
  const out = connect({ port, host: '127.0.0.1', noDelay: true });
  source(TOTAL).pipe(out);
  const socket = await incoming;
  const s = sink();
  await new Promise<void>((resolve, reject) => {
    s.stream.on('finish', resolve);
    s.stream.on('error', reject);
    socket.pipe(s.stream);
  });
  return s.bytes();
}

async function mtomTcp(port: number): Promise<number> {
  const incoming = accepted();
  const out = connect({ port, host: '127.0.0.1', noDelay: true });
  const w = new MtomWriter(out);
  const writing = writeMtom(out, w);
  const n = await readMtom(await incoming, w.contentType);
  await writing;
  return n;
}

interface Rate {
  /** MiB per wall-clock second. */
  wall: number;
  /** MiB per second of process CPU time (user + system): steadier on a busy machine. */
  cpu: number;
}

async function rate(fn: () => Promise<number>): Promise<Rate> {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const n = await fn();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  if (n !== TOTAL) throw new Error(`moved ${n} bytes, expected ${TOTAL}`);
  return { wall: MIB / s, cpu: MIB / ((c.user + c.system) / 1e6) };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function compare(
  label: string,
  plain: () => Promise<number>,
  mtom: () => Promise<number>,
): Promise<void> {
  const p: Rate[] = [];
  const m: Rate[] = [];
  if (!smoke) {
    // One uncounted round of each, so both are measured warm (JIT, socket buffers).
    await plain();
    await mtom();
  }
  for (let r = 0; r < ROUNDS; r++) {
    p.push(await rate(plain));
    m.push(await rate(mtom));
    console.log(
      `  ${label} round ${r + 1}: plain ${p[r].wall.toFixed(0)} MiB/s (${p[r].cpu.toFixed(0)} per CPU-s), ` +
        `MTOM ${m[r].wall.toFixed(0)} MiB/s (${m[r].cpu.toFixed(0)} per CPU-s)`,
    );
  }
  const pw = median(p.map((x) => x.wall));
  const mw = median(m.map((x) => x.wall));
  const pc = median(p.map((x) => x.cpu));
  const mc = median(m.map((x) => x.cpu));
  console.log(
    `${label}: plain pipe ${pw.toFixed(0)} MiB/s | MTOM writer→parser ${mw.toFixed(0)} MiB/s | ratio ${(mw / pw).toFixed(2)}` +
      ` (per CPU-second: ${pc.toFixed(0)} vs ${mc.toFixed(0)} MiB, ratio ${(mc / pc).toFixed(2)})`,
  );
}

async function main(): Promise<void> {
  console.log(
    `MTOM relay: ${MIB} MiB in ${PART / 1024} KiB parts, ${CHUNK / 1024} KiB chunks (${POOLED ? 'pooled' : 'fresh'}), ` +
      `${ROUNDS} round(s), node ${process.version}; target ratio ≥ 0.80`,
  );
  if (MODE === 'memory' || MODE === 'both') await compare('memory', plainMemory, mtomMemory);
  if (MODE === 'tcp' || MODE === 'both') {
    const port = await listen();
    try {
      await compare(
        'tcp',
        () => plainTcp(port),
        () => mtomTcp(port),
      );
    } finally {
      server.close();
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
