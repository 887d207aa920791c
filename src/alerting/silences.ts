import type { Kysely } from 'kysely';
import Type, { type Static } from 'typebox';
import type { Clock } from '../core/clock.ts';
import { newId } from '../core/ids.ts';
import type { DatabaseSchema } from '../storage/schema.ts';

/** Matches an alert label: equal (`=`) or not equal (`!=`). */
export const MatcherSchema = Type.Object(
  {
    name: Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,62}$' }),
    value: Type.String({ maxLength: 500 }),
    op: Type.Enum(['=', '!='], { default: '=' }),
  },
  { additionalProperties: false },
);
export type Matcher = Static<typeof MatcherSchema>;

/** A silence: alerts matching every matcher are not notified while it is active. */
export interface Silence {
  id: string;
  matchers: Matcher[];
  startsAt: string;
  endsAt: string;
  author: string;
  comment: string;
  createdBy: string | null;
  createdAt: string;
}

/** Whether every matcher holds for `labels` (a missing label is the empty string, as in Alertmanager). */
export function matches(matchers: readonly Matcher[], labels: Readonly<Record<string, string>>): boolean {
  return matchers.every((matcher) => {
    const value = labels[matcher.name] ?? '';
    return matcher.op === '!=' ? value !== matcher.value : value === matcher.value;
  });
}

/** Silences, stored in the database and cached in memory for the evaluator. */
export class Silences {
  readonly #db: Kysely<DatabaseSchema>;
  readonly #clock: Clock;
  #cache: Silence[] = [];

  constructor(options: { db: Kysely<DatabaseSchema>; clock: Clock }) {
    this.#db = options.db;
    this.#clock = options.clock;
  }

  /** Reloads the silences that have not ended (the evaluator calls this every cycle). */
  async refresh(): Promise<void> {
    const now = new Date(this.#clock.now()).toISOString();
    const rows = await this.#db.selectFrom('alert_silences').selectAll().where('ends_at', '>', now).execute();
    this.#cache = rows.map(toSilence);
  }

  /** The active silence muting `labels`, if any. */
  muting(labels: Readonly<Record<string, string>>): Silence | null {
    const now = this.#clock.now();
    return (
      this.#cache.find(
        (silence) =>
          Date.parse(silence.startsAt) <= now &&
          now < Date.parse(silence.endsAt) &&
          matches(silence.matchers, labels),
      ) ?? null
    );
  }

  async create(input: {
    matchers: Matcher[];
    startsAt: string;
    endsAt: string;
    author: string;
    comment: string;
    createdBy: string | null;
  }): Promise<Silence> {
    if (input.matchers.length === 0) throw new TypeError('A silence needs at least one matcher');
    const starts = Date.parse(input.startsAt);
    const ends = Date.parse(input.endsAt);
    if (Number.isNaN(starts) || Number.isNaN(ends))
      throw new TypeError('starts_at and ends_at must be ISO-8601 times');
    if (ends <= starts) throw new TypeError('ends_at must be after starts_at');
    if (ends <= this.#clock.now()) throw new TypeError('ends_at is in the past');
    const silence: Silence = {
      id: newId(this.#clock.now()),
      matchers: input.matchers,
      startsAt: new Date(starts).toISOString(),
      endsAt: new Date(ends).toISOString(),
      author: input.author,
      comment: input.comment,
      createdBy: input.createdBy,
      createdAt: new Date(this.#clock.now()).toISOString(),
    };
    await this.#db
      .insertInto('alert_silences')
      .values({
        id: silence.id,
        matchers: JSON.stringify(silence.matchers),
        starts_at: silence.startsAt,
        ends_at: silence.endsAt,
        author: silence.author,
        comment: silence.comment,
        created_by: silence.createdBy,
        created_at: silence.createdAt,
      })
      .execute();
    await this.refresh();
    return silence;
  }

  /** Ends a silence now; false when there is no active silence with that id. */
  async expire(id: string): Promise<boolean> {
    const now = new Date(this.#clock.now()).toISOString();
    const result = await this.#db
      .updateTable('alert_silences')
      .set({ ends_at: now })
      .where('id', '=', id)
      .where('ends_at', '>', now)
      .executeTakeFirst();
    await this.refresh();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Silences, newest first; ended ones only when asked. */
  async list(options: { includeExpired: boolean }): Promise<Silence[]> {
    let query = this.#db.selectFrom('alert_silences').selectAll().orderBy('id', 'desc').limit(500);
    if (!options.includeExpired)
      query = query.where('ends_at', '>', new Date(this.#clock.now()).toISOString());
    return (await query.execute()).map(toSilence);
  }
}

function toSilence(row: DatabaseSchema['alert_silences']): Silence {
  return {
    id: row.id,
    matchers: JSON.parse(row.matchers) as Matcher[],
    startsAt: row.starts_at,
    endsAt: row.ends_at,
    author: row.author,
    comment: row.comment,
    createdBy: row.created_by,
    createdAt: row.created_at,
  };
}
