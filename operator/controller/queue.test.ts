import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkQueue } from './queue.js';

test('adds of a waiting key coalesce into one pass', async () => {
  const q = new WorkQueue();
  for (let i = 0; i < 100; i++) q.add('ns/a');
  q.add('ns/b');
  assert.equal(q.depth, 2);
  const seen: string[] = [];
  const run = q.run(2, async (k) => void seen.push(k));
  await sleep(20);
  q.shutDown();
  await run;
  assert.deepEqual(seen.sort(), ['ns/a', 'ns/b']);
});

test('a key is never processed twice at once, and an add during processing runs it again after', async () => {
  const q = new WorkQueue();
  let active = 0;
  let maxActive = 0;
  let passes = 0;
  q.add('ns/a');
  const run = q.run(4, async () => {
    active++;
    maxActive = Math.max(maxActive, active);
    passes++;
    if (passes === 1) {
      q.add('ns/a');
      q.add('ns/a');
    }
    await sleep(10);
    active--;
  });
  await sleep(80);
  q.shutDown();
  await run;
  assert.equal(maxActive, 1);
  assert.equal(passes, 2);
});

test('failures back off exponentially and a success resets the backoff', async () => {
  const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 40 });
  assert.deepEqual(
    [q.addRateLimited('k'), q.addRateLimited('k'), q.addRateLimited('k'), q.addRateLimited('k')],
    [10, 20, 40, 40],
  );
  q.forget('k');
  assert.equal(q.addRateLimited('k'), 10);
  q.shutDown();

  const q2 = new WorkQueue({ baseDelayMs: 5 });
  const times: number[] = [];
  let calls = 0;
  q2.add('k');
  const run = q2.run(1, async () => {
    times.push(Date.now());
    if (++calls < 4) throw new Error('transient');
  });
  await sleep(200);
  q2.shutDown();
  await run;
  assert.equal(calls, 4);
  assert.equal(q2.retries('k'), 0, 'success resets the failure count');
  const gaps = times.slice(1).map((t, i) => t - times[i]!);
  assert.ok(gaps[2]! >= gaps[0]!, `gaps grow: ${gaps.join(',')}`);
});

test('addAfter delays, and shutDown releases waiting workers', async () => {
  const q = new WorkQueue();
  const seen: number[] = [];
  const start = Date.now();
  q.addAfter('k', 50);
  const run = q.run(1, async () => void seen.push(Date.now() - start));
  await sleep(120);
  q.shutDown();
  await run;
  assert.equal(seen.length, 1);
  assert.ok(seen[0]! >= 45);
});

test('the observer gets each key its queue wait (from the first add) and its work time', async () => {
  const queued: number[] = [];
  const worked: number[] = [];
  const q = new WorkQueue({ onQueued: (ms) => queued.push(ms), onWorked: (ms) => worked.push(ms) });
  q.add('k');
  await sleep(40);
  q.add('k'); // coalesces: the wait still counts from the first add
  await sleep(20);
  const run = q.run(1, async () => {
    await sleep(30);
  });
  await sleep(100);
  q.shutDown();
  await run;
  assert.equal(queued.length, 1);
  assert.ok(queued[0]! >= 55, `queue wait ${queued[0]} ms counts from the first add`);
  assert.equal(worked.length, 1);
  assert.ok(worked[0]! >= 25 && worked[0]! < queued[0]! + 1000, `work ${worked[0]} ms`);
});
