import { optionTable } from './options.ts';

/**
 * `WHARF_*` and `RUSTUS_*` variables that are not options but are Wharf's own: set by Wharf for its hooks and
 * cluster workers, or read by its test and service scripts. They never warn. A unit test greps the repository
 * for such names, so a new one must be added here (or made an option).
 */
const notOptions: ReadonlySet<string> = new Set([
  // Set for file and dir hooks (a Wharf started from a hook inherits them).
  'WHARF_HOOK_NAME',
  'WHARF_HOOK_ARGS',
  'WHARF_UPLOAD_ID',
  'WHARF_UPLOAD_OFFSET',
  'WHARF_UPLOAD_LENGTH',
  'WHARF_EVENT_ID',
  'WHARF_ENDPOINT',
  // scripts/services/*.sh, bench/setup.sh and bench/run.sh.
  'WHARF_MINIO_PORT',
  'WHARF_MINIO_DATA_DIR',
  'WHARF_S3PROXY_PORT',
  'WHARF_S3PROXY_DATA_DIR',
  'WHARF_FAKE_GCS_PORT',
  'WHARF_AZURITE_PORT',
  'WHARF_REDIS_PORT',
  'WHARF_POSTGRES_PORT',
  'WHARF_POSTGRES_DIR',
  'WHARF_REDIS_DIR',
  'WHARF_RABBITMQ_DIR',
  'WHARF_KAFKA_STATE_DIR',
  'WHARF_KAFKA_VERSION',
  'WHARF_CELERY_VERSION',
  'WHARF_CELERY_BROKER',
  'WHARF_CELERY_PREFIXES',
  'WHARF_CELERY_RECORD',
  'WHARF_ARGS',
  'RUSTUS_VERSION',
  // The fault suite's knobs (test/fault): other seeds and more rounds.
  'WHARF_FUZZ_SEED',
  'WHARF_FUZZ_RUNS',
  'WHARF_KILL_SEED',
  'WHARF_KILL_ROUNDS',
]);
/** Families of non-option variables: the test suite's settings and what the cluster primary gives its workers. */
const notOptionPrefixes = ['WHARF_TEST_', 'WHARF_WORKER_'] as const;

/** An environment variable that looks meant for Wharf but is not one it reads, and the known name nearest it. */
export interface UnknownVariable {
  readonly variable: string;
  readonly nearest: string;
}

const knownNames: readonly string[] = optionTable.flatMap((spec) => spec.env);
const known: ReadonlySet<string> = new Set(knownNames);

function prefixOf(name: string): string {
  return name.slice(0, name.indexOf('_') + 1);
}

/** The words after `WHARF_` / `RUSTUS_`. */
function wordsOf(name: string): readonly string[] {
  return name
    .slice(prefixOf(name).length)
    .split('_')
    .filter((word) => word !== '');
}

export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** The same word, or one typo away (PORT/PORTS, URL/URLS) for words of three letters or more. */
function sameWord(a: string, b: string): boolean {
  return a === b || (Math.min(a.length, b.length) >= 3 && editDistance(a, b) <= 1);
}

/**
 * The known variable nearest `name`: most words in common first (`RUSTUS_PORT` shares `PORT` with
 * `RUSTUS_SERVER_PORT`, though `RUSTUS_URL` is fewer edits away), then the same prefix (a rustus name for a
 * rustus name), then the fewest words of its own (`RUSTUS_SERVER_WORKERS` -> `RUSTUS_WORKERS`, not
 * `RUSTUS_SERVER_PORT`), then the fewest edits after the prefix (`WHARF_DATADIR` -> `WHARF_DATA_DIR`).
 */
export function nearestKnownVariable(name: string): string {
  const words = wordsOf(name);
  const rest = words.join('_');
  let best: { name: string; score: readonly number[] } | undefined;
  for (const candidate of knownNames) {
    const candidateWords = wordsOf(candidate);
    const shared = words.filter((word) => candidateWords.some((other) => sameWord(word, other))).length;
    // Counted only once a word matched: with none in common, edits alone say how near a name is.
    const unmatched =
      shared === 0
        ? 0
        : candidateWords.filter((other) => !words.some((word) => sameWord(word, other))).length;
    const score = [
      -shared,
      prefixOf(candidate) === prefixOf(name) ? 0 : 1,
      unmatched,
      editDistance(rest, candidateWords.join('_')),
    ];
    if (best === undefined || compareScores(score, best.score) < 0) best = { name: candidate, score };
  }
  return best?.name ?? '';
}

function compareScores(a: readonly number[], b: readonly number[]): number {
  for (let index = 0; index < a.length; index++) {
    const difference = (a[index] ?? 0) - (b[index] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

/** Whether Wharf reads or sets `name` itself (an option's variable, or one of its own non-option ones). */
export function isWharfVariable(name: string): boolean {
  return (
    known.has(name) || notOptions.has(name) || notOptionPrefixes.some((prefix) => name.startsWith(prefix))
  );
}

/**
 * `WHARF_*` and `RUSTUS_*` variables Wharf does not read, each with the nearest one it does: a misspelt
 * variable (`RUSTUS_PORT`) is otherwise silently ignored and the default used. Sorted by name.
 */
export function unknownVariables(env: Readonly<Record<string, string | undefined>>): UnknownVariable[] {
  return Object.keys(env)
    .filter((name) => /^(WHARF|RUSTUS)_/.test(name) && env[name] !== undefined && !isWharfVariable(name))
    .sort()
    .map((variable) => ({ variable, nearest: nearestKnownVariable(variable) }));
}
