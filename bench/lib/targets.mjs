// The targets of issue 20, each checked on one run's medians: one row per target with what was measured, the
// goal, and pass, short or not measured (a server, scenario or mode that did not run, or failed every round).
// report.mjs prints them as the "Targets" table of RESULTS.md.

export const PASS = 'pass';
export const SHORT = '**short**';
export const NOT_MEASURED = 'not measured';

/** The name of the backlog row, and of the hooks mode (or the `hooks-backlog` scenario) that measures it. */
export const BACKLOG = 'post hooks with a 50,000-event backlog';
/** The mode a backlog run is compared with when its records name none (`baseline`). */
const BACKLOG_BASELINE = 'all post hooks on HTTP';

export function median(values) {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const ratioText = (value) => `${value.toFixed(2)}×`;
const percent = (value) => `${(value * 100).toFixed(0)}%`;
const figure = (value) =>
  Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 10 ? value.toFixed(1) : value.toFixed(2);

/**
 * @param runs      the `run` records of results.jsonl
 * @param subject   the server the targets are about (wharf)
 * @param labels    { concurrent, small } row names with the run's sizes in them
 * @returns [{ target, measured, goal, verdict }]
 */
export function issueTargets(runs, subject, labels) {
  const good = (run, key) => !run.error && !run.skipped && typeof run[key] === 'number';
  const of = (scenario, server, key) =>
    median(runs.filter((r) => r.scenario === scenario && r.server === server && good(r, key)).map((r) => r[key]));
  const hooks = (mode, key = 'uploadsPerSecond') =>
    median(runs.filter((r) => r.hooks === mode && good(r, key)).map((r) => r[key]));

  /** The subject against each peer: ratio subject/peer must be ≥ (higher) or ≤ (lower) factor. */
  const versusPeers = (target, scenario, key, better, factor, peerList, unit) => {
    const mine = of(scenario, subject, key);
    const goal = `${better === 'higher' ? '≥' : '≤'} ${factor.toFixed(1)}× ${peerList.join(' and ')}`;
    const parts = [mine === undefined ? `${subject} not measured` : `${subject} ${figure(mine)}${unit}`];
    let verdict = mine === undefined ? NOT_MEASURED : PASS;
    for (const peer of peerList) {
      const theirs = of(scenario, peer, key);
      if (mine === undefined || theirs === undefined || theirs === 0) {
        verdict = NOT_MEASURED;
        if (theirs === undefined) parts.push(`${peer} not measured`);
        continue;
      }
      const ratio = mine / theirs;
      parts.push(`${peer} ${figure(theirs)}${unit} (${ratioText(ratio)})`);
      const ok = better === 'higher' ? ratio >= factor : ratio <= factor;
      if (!ok && verdict !== NOT_MEASURED) verdict = SHORT;
    }
    return { target, measured: parts.join(', '), goal, verdict };
  };

  /**
   * Uploads/s lost to a hooks mode against no hooks, at most `limit`. Where the run measured them, the cell also
   * gives the CPU per upload that the hooks added to the server and what `receiver` (the HTTP receiver or the
   * broker, on the same cores) spent: the uploads/s lost is what both take from the machine.
   */
  const hookCost = (target, mode, limit, receiver) => {
    const on = hooks(mode);
    const off = hooks('no hooks');
    const goal = `≤ ${percent(limit)}`;
    if (on === undefined || off === undefined || off === 0) {
      return { target, measured: 'not measured', goal, verdict: NOT_MEASURED };
    }
    const cost = 1 - on / off;
    const serverOn = hooks(mode, 'cpuMsPerUpload');
    const serverOff = hooks('no hooks', 'cpuMsPerUpload');
    const receiving = hooks(mode, 'targetCpuMsPerUpload');
    const cpu =
      serverOn === undefined || serverOff === undefined
        ? ''
        : `; CPU per upload: ${subject} +${figure(serverOn - serverOff)} ms (${figure(serverOn)} against ` +
          `${figure(serverOff)})` +
          (receiving === undefined ? '' : `, ${receiver} ${figure(receiving)} ms`);
    return {
      target,
      measured: `${percent(cost)} (${figure(on)} against ${figure(off)} uploads/s with no hooks)${cpu}`,
      goal,
      verdict: cost <= limit ? PASS : SHORT,
    };
  };

  const kept = of('resume', subject, 'keptFraction');
  const concurrent = versusPeers(labels.concurrent, 'concurrent', 'mbPerSecond', 'higher', 1.0, ['tusd'], ' MB/s');
  // How close to the physical limit, when the sink ran.
  const mine = of('concurrent', subject, 'mbPerSecond');
  const sink = of('concurrent', 'sink', 'mbPerSecond');
  if (mine !== undefined && sink) concurrent.measured += `; ${subject} = ${(mine / sink).toFixed(2)} of the sink`;
  const rows = [
    concurrent,
    versusPeers('same, peak RSS', 'concurrent', 'peakRssMB', 'lower', 1.5, ['tusd'], ' MB'),
    {
      target: 'share of the bytes sent before a cut that the server kept',
      measured: kept === undefined ? 'not measured' : `${subject} ${kept.toFixed(2)}`,
      goal: '≥ 0.95',
      verdict: kept === undefined ? NOT_MEASURED : kept >= 0.95 ? PASS : SHORT,
    },
    versusPeers(labels.small, 'small', 'uploadsPerSecond', 'higher', 1.0, ['rustus', 'tusd'], ''),
    hookCost('uploads/s lost to all post hooks on AMQP', 'all post hooks on AMQP', 0.1, 'RabbitMQ'),
    hookCost('uploads/s lost to all post hooks on Kafka', 'all post hooks on Kafka', 0.1, 'Kafka'),
    hookCost('uploads/s lost to all post hooks on HTTP', 'all post hooks on HTTP', 0.15, 'the HTTP receiver'),
  ];

  // The backlog row: runs of a hooks mode named after it (or the `hooks-backlog` scenario), each with the
  // uploads/s of the same hooks while 50,000 events wait, compared with `baseline` (the same hooks and no
  // backlog) from the same run. Adding and dispatching must cost the same with the backlog as without: within
  // 10% (the noise of one run on this machine).
  const backlogRuns = runs.filter(
    (r) => (r.hooks?.startsWith(BACKLOG) || r.scenario === 'hooks-backlog') && good(r, 'uploadsPerSecond'),
  );
  const baselineMode = backlogRuns.find((r) => typeof r.baseline === 'string')?.baseline ?? BACKLOG_BASELINE;
  const withBacklog = median(backlogRuns.map((r) => r.uploadsPerSecond));
  const without = hooks(baselineMode);
  const backlogGoal = `≤ 10% fewer uploads/s than ${baselineMode} with no backlog`;
  rows.push(
    withBacklog === undefined || without === undefined || without === 0
      ? { target: BACKLOG, measured: NOT_MEASURED, goal: backlogGoal, verdict: NOT_MEASURED }
      : {
          target: BACKLOG,
          measured: `${figure(withBacklog)} against ${figure(without)} uploads/s (${percent(1 - withBacklog / without)} fewer)`,
          goal: backlogGoal,
          verdict: withBacklog / without >= 0.9 ? PASS : SHORT,
        },
  );
  return rows;
}
