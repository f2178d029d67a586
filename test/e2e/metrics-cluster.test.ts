import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout } from 'node:timers/promises';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { startWharf } from '../support/wharf-process.ts';

/** The value of an unlabelled sample in an exposition text. */
function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('/metrics under --workers', () => {
  it('sums every worker in one scrape, with process and event-loop metrics, behind --metrics-token', async () => {
    const wharf = await startWharf({ args: ['--workers', '2', '--metrics-token', 'scrape-token'] });
    try {
      // startWharf returns once one worker listens; round-robin only spreads connections over listening ones.
      const listening = () => wharf.logs.filter((line) => String(line.msg).startsWith('wharf listening'));
      for (let waited = 0; listening().length < 2 && waited < 10_000; waited += 20) await setTimeout(20);
      // A connection per request, so the cluster's round-robin spreads them over both workers.
      const uploads = 8;
      // All created first, then all sent: creations alternate between the workers, and so do the PATCHes.
      const urls: string[] = [];
      for (let index = 0; index < uploads; index++) {
        urls.push(await createUpload(wharf.endpoint, { 'Upload-Length': 5 }));
      }
      for (const url of urls) {
        const patch = await send('PATCH', url, {
          headers: { ...tus, ...octets, 'Upload-Offset': 0 },
          body: 'hello',
        });
        assert.equal(patch.status, 204);
      }
      // Each worker logs its own requests (with its pid); the lines of both arrive through one pipe, in any order.
      const posts = () => wharf.logs.filter((line) => line.msg === 'access' && line.method === 'POST');
      for (let waited = 0; posts().length < uploads && waited < 5_000; waited += 20) await setTimeout(20);
      const creators = new Set(posts().map((line) => line.pid));
      assert.equal(creators.size, 2, 'both workers created uploads');

      assert.equal((await send('GET', `${wharf.origin}/metrics`)).status, 401);
      // Whichever worker answers, the scrape holds both workers' counts; twice, to reach either.
      for (let scrape = 0; scrape < 2; scrape++) {
        const answer = await send('GET', `${wharf.origin}/metrics`, {
          headers: { Authorization: 'Bearer scrape-token' },
        });
        assert.equal(answer.status, 200);
        assert.equal(sample(answer.text, 'started_uploads'), uploads, answer.text);
        assert.equal(sample(answer.text, 'finished_uploads'), uploads);
        assert.equal(sample(answer.text, 'active_uploads'), 0);
        assert.equal(sample(answer.text, 'wharf_received_bytes_total'), 5 * uploads);
        assert.match(answer.text, /^process_cpu_user_seconds_total \d/m);
        assert.match(answer.text, /^nodejs_eventloop_lag_seconds \d/m);
        assert.equal(answer.text.includes('scrape-token'), false);
      }
    } finally {
      await wharf.stop();
    }
  });
});
