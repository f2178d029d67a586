import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DirHookTransport, FileHookTransport } from '../../../src/hooks/transports/file.ts';
import { HttpHookTransport } from '../../../src/hooks/transports/http.ts';
import { describeHookTransport, type TargetBehaviour } from '../../contract/hook-transport.ts';
import { startHookServer, temporaryDirectory, writeScript } from './fixtures.ts';

const timeoutFor = (behaviour: TargetBehaviour): number => (behaviour === 'hang' ? 300 : 5000);

/** A script for each behaviour; each run saves its stdin as a new numbered file in `out`. */
function scriptFor(behaviour: TargetBehaviour, out: string): string {
  const save = `cat > "${out}/$(date +%s%N)-$$"`;
  if (behaviour === 'accept') return save;
  if (behaviour === 'reject') return `${save}\necho refused >&2\nexit 1`;
  return `${save}\nsleep 30`;
}

async function receivedFiles(out: string): Promise<string[]> {
  const names = (await readdir(out)).sort();
  return Promise.all(names.map((name) => readFile(join(out, name), 'utf8')));
}

describeHookTransport('file', async (behaviour, context) => {
  const directory = await temporaryDirectory(context);
  const out = join(directory, 'out');
  await mkdir(out);
  const file = await writeScript(directory, 'hook.sh', scriptFor(behaviour, out));
  return {
    transport: new FileHookTransport(file, { timeoutMs: timeoutFor(behaviour), baseEnv: process.env }),
    received: () => receivedFiles(out),
  };
});

describeHookTransport('dir', async (behaviour, context) => {
  const directory = await temporaryDirectory(context);
  const out = join(directory, 'out');
  await mkdir(out);
  await writeScript(directory, 'pre-create', scriptFor(behaviour, out));
  return {
    transport: new DirHookTransport(directory, { timeoutMs: timeoutFor(behaviour), baseEnv: process.env }),
    received: () => receivedFiles(out),
  };
});

describeHookTransport('http', async (behaviour, context) => {
  const server = await startHookServer(context, (_request, response) => {
    if (behaviour === 'accept') response.writeHead(204).end();
    else if (behaviour === 'reject') response.writeHead(422).end('refused');
    // 'hang': never answers.
  });
  return {
    transport: new HttpHookTransport(server.url, { timeoutMs: timeoutFor(behaviour), proxyHeaders: [] }),
    received: async () => server.requests.map((request) => request.body),
  };
});
