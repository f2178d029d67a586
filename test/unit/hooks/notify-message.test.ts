import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { notifyRequest, renderTemplate } from '../../../src/hooks/transports/notify-message.ts';

const payload = {
  upload: { id: 'abc', length: 1024, metadata: { filename: 'report.pdf' } },
  hook: 'post-finish',
};

describe('notify templates', () => {
  it('renders payload paths; a missing key renders empty, never throws', () => {
    assert.equal(
      renderTemplate(
        '{{upload.metadata.filename}} finished ({{ upload.length }} bytes){{upload.nope.deeper}}',
        payload,
      ),
      'report.pdf finished (1024 bytes)',
    );
  });

  it('runs no code and reads no prototype: only own keys of the payload', () => {
    assert.equal(
      renderTemplate('[{{constructor}}][{{upload.__proto__}}][{{process.env.HOME}}]', payload),
      '[][][]',
    );
    assert.equal(
      renderTemplate('{{ 1 + 1 }} {{upload}}', payload).startsWith('{{ 1 + 1 }} {"id":"abc"'),
      true,
    );
  });
});

describe('notify bodies, as each service documents them', () => {
  it('Slack {"text"}, Discord {"content"}, generic {"message"}', () => {
    assert.deepEqual(JSON.parse(notifyRequest('slack', 'hi').body), { text: 'hi' });
    assert.deepEqual(JSON.parse(notifyRequest('discord', 'hi').body), { content: 'hi' });
    assert.equal(JSON.parse(notifyRequest('discord', 'x'.repeat(2500)).body).content.length, 2000);
    assert.deepEqual(JSON.parse(notifyRequest('json', 'hi').body), { message: 'hi' });
    assert.equal(notifyRequest('slack', 'hi').headers['Content-Type'], 'application/json');
  });

  it('Teams: a message with one Adaptive Card attachment', () => {
    const body = JSON.parse(notifyRequest('teams', 'hi', 'Upload').body);
    assert.equal(body.type, 'message');
    assert.equal(body.attachments[0].contentType, 'application/vnd.microsoft.card.adaptive');
    assert.equal(body.attachments[0].content.type, 'AdaptiveCard');
    assert.deepEqual(
      body.attachments[0].content.body.map((block: { text: string }) => block.text),
      ['Upload', 'hi'],
    );
  });

  it('ntfy: the plain text body and a one-line Title header', () => {
    const request = notifyRequest('ntfy', 'report.pdf finished', 'Upload\r\ndone');
    assert.equal(request.body, 'report.pdf finished');
    assert.equal(request.headers.Title, 'Uploaddone');
    assert.equal(request.headers['Content-Type'], 'text/plain; charset=utf-8');
  });
});
