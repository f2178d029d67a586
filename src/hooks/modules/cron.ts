/**
 * A small cron matcher: 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first). Each field
 * takes `*`, `n`, `a-b`, lists `a,b`, and steps `*\/n`, `a-b/n`, `a/n`. Day-of-week is 0-7 (0 and 7 are
 * Sunday). As in Vixie cron, when both day fields are restricted a time matches if either one does.
 */

export class CronSyntaxError extends Error {
  constructor(expression: string, reason: string) {
    super(`invalid cron expression ${JSON.stringify(expression)}: ${reason}`);
    this.name = 'CronSyntaxError';
  }
}

interface FieldRange {
  readonly name: string;
  readonly min: number;
  readonly max: number;
}

const secondField: FieldRange = { name: 'second', min: 0, max: 59 };
const fiveFields: readonly FieldRange[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day of week', min: 0, max: 7 },
];

function integerIn(text: string, range: FieldRange, expression: string): number {
  if (!/^\d+$/.test(text)) throw new CronSyntaxError(expression, `${range.name}: "${text}" is not a number`);
  const value = Number(text);
  if (value < range.min || value > range.max) {
    throw new CronSyntaxError(expression, `${range.name}: ${value} is outside ${range.min}-${range.max}`);
  }
  return value;
}

function parseField(
  text: string,
  range: FieldRange,
  expression: string,
): { values: Set<number>; any: boolean } {
  const values = new Set<number>();
  for (const part of text.split(',')) {
    const [span = '', stepText] = part.split('/');
    const step = stepText === undefined ? 1 : integerIn(stepText, { ...range, min: 1 }, expression);
    let from: number;
    let to: number;
    if (span === '*') {
      from = range.min;
      to = range.max;
    } else if (span.includes('-')) {
      const [low = '', high = ''] = span.split('-');
      from = integerIn(low, range, expression);
      to = integerIn(high, range, expression);
      if (from > to) throw new CronSyntaxError(expression, `${range.name}: range ${span} is reversed`);
    } else {
      from = integerIn(span, range, expression);
      to = stepText === undefined ? from : range.max;
    }
    for (let value = from; value <= to; value += step) values.add(value);
  }
  return { values, any: text === '*' };
}

/** A parsed cron expression. */
export class CronSchedule {
  readonly expression: string;
  readonly #fields: { values: Set<number>; any: boolean }[];

  constructor(expression: string) {
    this.expression = expression;
    const parts = expression.trim().split(/\s+/);
    if (parts.length !== 5 && parts.length !== 6) {
      throw new CronSyntaxError(expression, `expected 5 or 6 fields, got ${parts.length}`);
    }
    const ranges =
      parts.length === 6 ? [secondField, ...fiveFields] : [{ ...secondField, max: 0 }, ...fiveFields];
    const texts = parts.length === 6 ? parts : ['0', ...parts];
    this.#fields = ranges.map((range, index) => parseField(texts[index] ?? '', range, expression));
    const dayOfWeek = this.#fields[5];
    if (dayOfWeek?.values.has(7)) dayOfWeek.values.add(0);
  }

  /** Whether the schedule fires at this second (local time, as cron). */
  matches(date: Date): boolean {
    const [second, minute, hour, dayOfMonth, month, dayOfWeek] = this.#fields;
    if (!second || !minute || !hour || !dayOfMonth || !month || !dayOfWeek) return false;
    if (!second.values.has(date.getSeconds())) return false;
    if (!minute.values.has(date.getMinutes())) return false;
    if (!hour.values.has(date.getHours())) return false;
    if (!month.values.has(date.getMonth() + 1)) return false;
    const domMatches = dayOfMonth.values.has(date.getDate());
    const dowMatches = dayOfWeek.values.has(date.getDay());
    if (!dayOfMonth.any && !dayOfWeek.any) return domMatches || dowMatches;
    return domMatches && dowMatches;
  }
}
