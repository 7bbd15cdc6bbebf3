/** Per-peer limiter and audit throttle (bounded state, no timing assertions). */
import { PeerLimiter } from '@xcai/shared/src/security/peer-limits';
import { AuditThrottle } from '@xcai/shared/src/security/server-guards';

const limits = { maxConcurrentRequests: 2, requestsPerSecond: 1, burst: 3, maxConnections: 1 };

describe('PeerLimiter', () => {
  it('lets a burst through, then refuses until tokens come back; peers do not share tokens', () => {
    const l = new PeerLimiter(100);
    const taken = Array.from({ length: 10 }, () => l.take('community:b', limits));
    // At 1 token/s, 10 back-to-back calls get the burst of 3 (plus at most what refilled meanwhile).
    expect(taken.slice(0, 3)).toEqual([true, true, true]);
    expect(taken.filter(Boolean).length).toBeLessThan(10);
    expect(l.take('community:c', limits)).toBe(true);
  });

  it('counts requests in flight and connections per peer, released once', () => {
    const l = new PeerLimiter(100);
    const a = l.startRequest('p', limits);
    const b = l.startRequest('p', limits);
    expect(a && b).toBeTruthy();
    expect(l.startRequest('p', limits)).toBeUndefined();
    expect(l.startRequest('q', limits)).toBeDefined();
    a?.();
    a?.(); // a second release must not free a second slot
    expect(l.startRequest('p', limits)).toBeDefined();
    expect(l.startRequest('p', limits)).toBeUndefined();
    const c = l.openConnection('p', limits);
    expect(c).toBeDefined();
    expect(l.openConnection('p', limits)).toBeUndefined();
    c?.();
    expect(l.openConnection('p', limits)).toBeDefined();
  });

  it('keeps at most maxTrackedPeers idle peers (memory stays bounded)', () => {
    const l = new PeerLimiter(100);
    for (let i = 0; i < 10_000; i++) l.take(`address:10.0.${i >> 8}.${i & 255}`, limits);
    expect(l.tracked).toBeLessThanOrEqual(100);
  });

  it('never forgets a peer with requests in flight', () => {
    const l = new PeerLimiter(10);
    const held = l.startRequest('busy', limits);
    l.startRequest('busy', limits);
    for (let i = 0; i < 1000; i++) l.take(`address:${i}`, limits);
    expect(l.startRequest('busy', limits)).toBeUndefined();
    held?.();
  });
});

describe('AuditThrottle', () => {
  it('passes the first event per key and interval and counts the rest', () => {
    const t = new AuditThrottle(60_000, 10);
    expect(t.pass('in:1.2.3.4')).toBe(0);
    expect(t.pass('in:1.2.3.4')).toBeUndefined();
    expect(t.pass('in:1.2.3.4')).toBeUndefined();
    expect(t.pass('in:5.6.7.8')).toBe(0);
    const zero = new AuditThrottle(0, 10);
    zero.pass('k');
    expect(zero.pass('k')).toBe(0);
  });

  it('remembers a bounded number of keys', () => {
    const t = new AuditThrottle(60_000, 10);
    for (let i = 0; i < 1000; i++) t.pass(`k${i}`);
    expect(t.pass('k0')).toBe(0); // forgotten long ago, so it passes again
  });
});
