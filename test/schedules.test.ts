import { Code } from "@connectrpc/connect";
import { BadRequestSchema } from "@jobwire/sdk/gen/google/rpc/error_details_pb";
import { MissedTickPolicy, createJobwireClient, type JobwireClient } from "@jobwire/sdk";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { CronSchedule, type JobwireServer } from "@jobwire/server";
import pg from "pg";
import { beforeAll, describe, expect, it } from "vitest";
import { postJson } from "./support/clients.js";
import { createTestDatabase } from "./support/database.js";
import { failureOf } from "./support/failure-of.js";
import { startTestServer } from "./support/server.js";
import { waitFor } from "./support/wait-for.js";

// Two replicas of the server on one database. The fallback poll is far longer than any wait
// here: ticks come from each replica's timer, armed by the database's next_run_at and, for
// schedules created on the other replica, by NOTIFY.

let replica1: JobwireServer;
let replica2: JobwireServer;
let via1: JobwireClient;
let via2: JobwireClient;

beforeAll(async () => {
  const databaseUrl = await createTestDatabase();
  const config = { databaseUrl, fallbackPollMs: 60_000 };
  replica1 = await startTestServer(config);
  replica2 = await startTestServer(config);
  via1 = createJobwireClient({ baseUrl: replica1.url });
  via2 = createJobwireClient({ baseUrl: replica2.url });
});

interface TickRow {
  id: string;
  tickMs: number;
  queue: string;
  kind: string;
  payload: unknown;
  owner: string;
}

/** The jobs a schedule enqueued, by tick. */
async function ticksOf(server: JobwireServer, scheduleId: string): Promise<TickRow[]> {
  const { rows } = await server.db.pool.query<TickRow>(
    `SELECT id, extract(epoch FROM schedule_tick)::float8 * 1000 AS "tickMs", queue, kind, payload, owner
     FROM job WHERE schedule_id = $1 ORDER BY schedule_tick`,
    [scheduleId],
  );
  return rows;
}

async function databaseNowMs(server: JobwireServer): Promise<number> {
  const { rows } = await server.db.pool.query<{ ms: number }>("SELECT extract(epoch FROM clock_timestamp())::float8 * 1000 AS ms");
  return rows[0]!.ms;
}

/** The adjacent ticks that are not one second apart: empty when none was skipped. */
function gaps(ticks: readonly number[]): number[][] {
  return ticks.slice(1).map((tick, i) => [ticks[i]!, tick]).filter(([a, b]) => b! - a! !== 1000);
}

describe("schedule administration", () => {
  it("creates schedules over Connect JSON and the SDK, reads them by name and id, lists them page by page, pauses, resumes and deletes them", async () => {
    const created = await postJson(replica1.url, "jobwire.v1.ScheduleService/CreateSchedule", {
      schedule: {
        name: "crud-nightly",
        cron: "0 3 * * *",
        timeZone: "Europe/Berlin",
        template: { queue: "crud-reports", kind: "nightly", payload: { scope: "all" }, metadata: { team: "data" } },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    const nightly = created.body.schedule;
    expect(nightly).toMatchObject({
      name: "crud-nightly",
      cron: "0 3 * * *",
      timeZone: "Europe/Berlin",
      missedTickPolicy: "MISSED_TICK_POLICY_LATEST",
      owner: "local",
      template: { queue: "crud-reports", kind: "nightly", payload: { scope: "all" }, metadata: { team: "data" } },
    });
    expect(nightly.paused).toBeUndefined();
    expect(Date.parse(nightly.nextRunAt)).toBeGreaterThan(Date.now() - 1_000);

    const hourly = await via2.createSchedule({
      name: "crud-hourly",
      cron: "0 * * * *",
      job: { queue: "crud-reports", kind: "hourly", priority: 5, retry: { maxAttempts: 3 } },
      missedTicks: "skip",
    });
    expect(hourly.missedTickPolicy).toBe(MissedTickPolicy.SKIP);
    expect(hourly.timeZone).toBe("UTC");
    expect(timestampDate(hourly.nextRunAt!).getUTCMinutes()).toBe(0);
    const paused = await via1.createSchedule({ name: "crud-paused", cron: "*/5 * * * *", job: { queue: "crud-reports", kind: "x" }, paused: true });
    expect(paused.paused).toBe(true);
    expect(paused.nextRunAt).toBeUndefined();

    expect((await via2.getSchedule("crud-nightly")).id).toBe(nightly.id);
    expect((await via1.getSchedule({ id: hourly.id })).name).toBe("crud-hourly");
    expect((await via1.getSchedule({ id: hourly.id })).template?.retryPolicy?.maxAttempts).toBe(3);

    const first = await via1.listSchedules({ pageSize: 2 });
    expect(first.schedules.map((s) => s.name)).toEqual(["crud-hourly", "crud-nightly"]);
    expect(first.nextPageToken).not.toBe("");
    const second = await via2.listSchedules({ pageSize: 2, pageToken: first.nextPageToken });
    expect(second.schedules.map((s) => s.name)).toEqual(["crud-paused"]);
    expect(second.nextPageToken).toBe("");
    const badToken = await failureOf(via1.listSchedules({ pageToken: "nonsense" }));
    expect(badToken.code).toBe(Code.InvalidArgument);
    expect(badToken.rawMessage).toBe("page_token is not a token returned by ListSchedules");

    const taken = await failureOf(via2.createSchedule({ name: "crud-nightly", cron: "* * * * *", job: { queue: "q", kind: "k" } }));
    expect(taken.code).toBe(Code.AlreadyExists);
    expect(taken.rawMessage).toMatch(/^schedule\.name crud-nightly /);

    const pausedNightly = await via1.pauseSchedule("crud-nightly");
    expect(pausedNightly.paused).toBe(true);
    expect(pausedNightly.nextRunAt).toBeUndefined();
    expect((await via2.pauseSchedule({ id: nightly.id })).paused).toBe(true);
    const resumed = await via2.resumeSchedule("crud-nightly");
    expect(resumed.paused).toBe(false);
    expect(timestampDate(resumed.nextRunAt!).getTime()).toBe(Date.parse(nightly.nextRunAt));
    expect((await via1.resumeSchedule("crud-nightly")).nextRunAt).toEqual(resumed.nextRunAt);

    // The database holds the invariant too: an active schedule has a next tick, a paused one none.
    await expect(replica1.db.pool.query("UPDATE schedule SET paused = true WHERE name = 'crud-nightly'")).rejects.toMatchObject({ code: "23514" });
    await expect(replica1.db.pool.query("UPDATE schedule SET next_run_at = NULL WHERE name = 'crud-nightly'")).rejects.toMatchObject({ code: "23514" });

    const listed = await postJson(replica2.url, "jobwire.v1.ScheduleService/ListSchedules", { pageSize: 20 });
    expect(listed.body.schedules.map((s: { name: string }) => s.name)).toEqual(["crud-hourly", "crud-nightly", "crud-paused"]);
    const deleted = await postJson(replica2.url, "jobwire.v1.ScheduleService/DeleteSchedule", { name: "crud-nightly" });
    expect(deleted).toEqual({ status: 200, body: {} });
    await via2.deleteSchedule({ id: hourly.id });
    await via1.deleteSchedule("crud-paused");
    for (const call of [
      () => via1.getSchedule("crud-nightly"),
      () => via2.deleteSchedule({ id: hourly.id }),
      () => via1.pauseSchedule("crud-paused"),
      () => via2.resumeSchedule("crud-paused"),
    ]) {
      expect((await failureOf(call())).code).toBe(Code.NotFound);
    }
    expect((await via1.listSchedules()).schedules.filter((s) => s.name.startsWith("crud-"))).toEqual([]);
  });

  it("refuses bad schedules with INVALID_ARGUMENT naming the field, and writes nothing", async () => {
    const template = { queue: "refused", kind: "k" };
    const cases: [unknown, string][] = [
      [{}, "schedule"],
      [{ schedule: { name: "", cron: "* * * * *", template } }, "schedule.name"],
      [{ schedule: { name: "has space", cron: "* * * * *", template } }, "schedule.name"],
      [{ schedule: { name: "bad-cron", cron: "", template } }, "schedule.cron"],
      [{ schedule: { name: "bad-cron", cron: "* * *", template } }, "schedule.cron"],
      [{ schedule: { name: "bad-cron", cron: "* * * * * * *", template } }, "schedule.cron"],
      [{ schedule: { name: "bad-cron", cron: "61 * * * *", template } }, "schedule.cron"],
      [{ schedule: { name: "bad-cron", cron: "0 0 30 2 *", template } }, "schedule.cron"],
      [{ schedule: { name: "bad-cron", cron: "every minute please", template } }, "schedule.cron"],
      [{ schedule: { name: "bad-cron", cron: `${"1,".repeat(200)}1 * * * *`, template } }, "schedule.cron"],
      [{ schedule: { name: "bad-zone", cron: "* * * * *", timeZone: "Mars/Olympus", template } }, "schedule.time_zone"],
      [{ schedule: { name: "bad-zone", cron: "* * * * *", timeZone: "+01:00", template } }, "schedule.time_zone"],
      [{ schedule: { name: "bad-zone", cron: "* * * * *", timeZone: "local", template } }, "schedule.time_zone"],
      [{ schedule: { name: "no-template", cron: "* * * * *" } }, "schedule.template"],
      [{ schedule: { name: "bad-template", cron: "* * * * *", template: { queue: "", kind: "k" } } }, "schedule.template.queue"],
      [{ schedule: { name: "bad-template", cron: "* * * * *", template: { queue: "q", kind: "k", priority: 5000 } } }, "schedule.template.priority"],
      [{ schedule: { name: "bad-template", cron: "* * * * *", template: { queue: "q", kind: "k", runAt: "2030-01-01T00:00:00Z" } } }, "schedule.template.run_at"],
      [{ schedule: { name: "bad-template", cron: "* * * * *", template: { queue: "q", kind: "k", idempotencyKey: "once" } } }, "schedule.template.idempotency_key"],
      [{ schedule: { name: "bad-policy", cron: "* * * * *", template, missedTickPolicy: 99 } }, "schedule.missed_tick_policy"],
    ];
    for (const [body, field] of cases) {
      const answer = await postJson(replica1.url, "jobwire.v1.ScheduleService/CreateSchedule", body);
      expect(answer.status, `${JSON.stringify(body)} → ${JSON.stringify(answer.body)}`).toBe(400);
      expect(answer.body.code).toBe("invalid_argument");
      expect(answer.body.message, JSON.stringify(body)).toMatch(new RegExp(`^${field.replace(/\./g, "\\.")} \\S`));
    }
    // The detail names the field too, for clients that read details.
    const refused = await failureOf(via2.createSchedule({ name: "bad-zone", cron: "* * * * *", timeZone: "Nowhere/Land", job: template }));
    expect(refused.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("schedule.time_zone");
    for (const [call, field] of [
      [() => via1.getSchedule({ id: "not-a-uuid" }), "id"],
      [() => via1.getSchedule({ name: "" }), "name"],
      [() => via1.schedules.deleteSchedule({}), "id"],
      [() => via1.listSchedules({ pageSize: 5000 }), "page_size"],
    ] as const) {
      const failure = await failureOf(call());
      expect(failure.code).toBe(Code.InvalidArgument);
      expect(failure.rawMessage.startsWith(`${field} `)).toBe(true);
    }
    const { rows } = await replica1.db.pool.query("SELECT name FROM schedule WHERE name LIKE 'bad-%' OR name = 'no-template'");
    expect(rows).toEqual([]);
    const jobs = await replica1.db.pool.query("SELECT 1 FROM job WHERE queue IN ('refused', 'q')");
    expect(jobs.rows).toEqual([]);
  });
});

describe("time zones", () => {
  it("computes the next tick in the schedule's time zone, named canonically", async () => {
    const schedule = await via1.createSchedule({ name: "tz-new-york", cron: "0 9 * * *", timeZone: "US/Eastern", job: { queue: "tz", kind: "k" } });
    expect(schedule.timeZone).toBe("America/New_York");
    const next = timestampDate(schedule.nextRunAt!);
    const wallClock = new Intl.DateTimeFormat("en-GB", { timeZone: "America/New_York", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
    expect(wallClock.format(next)).toBe("09:00:00");
    // 09:00 in New York is 13:00 or 14:00 UTC, never 09:00 UTC.
    expect([13, 14]).toContain(next.getUTCHours());
    const now = await databaseNowMs(replica1);
    expect(next.getTime()).toBeGreaterThan(now);
    expect(next.getTime() - now).toBeLessThanOrEqual(25 * 3_600_000);
    await via1.deleteSchedule("tz-new-york");
  });

  it("follows daylight saving time: a skipped time runs an hour later, a repeated time runs once, short intervals keep their pace", () => {
    const at = (iso: string) => new Date(iso);
    const daily = CronSchedule.parse("30 2 * * *", "Europe/Berlin", "seed");
    // 2025-03-30: Berlin's clocks jump from 02:00 to 03:00; 02:30 does not exist that day.
    expect(daily.nextAfter(at("2025-03-29T12:00:00Z")).toISOString()).toBe("2025-03-30T01:30:00.000Z"); // 03:30 CEST
    expect(daily.nextAfter(at("2025-03-30T01:30:00Z")).toISOString()).toBe("2025-03-31T00:30:00.000Z"); // 02:30 CEST
    // 2025-10-26: clocks go back from 03:00 to 02:00; 02:30 happens twice and runs once.
    expect(daily.nextAfter(at("2025-10-25T12:00:00Z")).toISOString()).toBe("2025-10-26T00:30:00.000Z"); // 02:30 CEST
    expect(daily.nextAfter(at("2025-10-26T00:30:00Z")).toISOString()).toBe("2025-10-27T01:30:00.000Z"); // 02:30 CET
    const halfHourly = CronSchedule.parse("*/30 * * * *", "Europe/Berlin", "seed");
    let tick = at("2025-10-25T23:00:00Z");
    for (let i = 0; i < 8; i++) {
      const next = halfHourly.nextAfter(tick);
      expect(next.getTime() - tick.getTime()).toBe(30 * 60_000);
      tick = next;
    }
    expect(daily.latestAtOrBefore(at("2025-10-27T01:30:00Z")).toISOString()).toBe("2025-10-27T01:30:00.000Z");
  });
});

describe("ticks across two replicas", () => {
  it("enqueues every tick of a per-second schedule exactly once, with no gaps, from the template", async () => {
    const schedule = await via1.createSchedule({
      name: "every-second",
      cron: "* * * * * *",
      job: { queue: "ticks", kind: "tick", payload: { from: "cron" }, metadata: { origin: "schedule" } },
    });
    const firstTick = timestampDate(schedule.nextRunAt!).getTime();
    const ticks = await waitFor("six ticks of the per-second schedule", async () => {
      const rows = await ticksOf(replica2, schedule.id);
      return rows.length >= 6 ? rows : undefined;
    }, 30_000);
    await via2.deleteSchedule("every-second");
    const all = (await ticksOf(replica1, schedule.id)).map((row) => row.tickMs);
    expect(all.length).toBeGreaterThanOrEqual(ticks.length);
    expect(all[0]).toBe(firstTick);
    expect(new Set(all).size).toBe(all.length);
    expect(gaps(all)).toEqual([]);

    const job = await via2.getJob(ticks[0]!.id);
    expect(job.queue).toBe("ticks");
    expect(job.kind).toBe("tick");
    expect(job.owner).toBe("local");
    expect(job.metadata).toEqual({ origin: "schedule" });
    expect(job.fromSchedule?.scheduleId).toBe(schedule.id);
    expect(timestampDate(job.fromSchedule!.tickAt!).getTime()).toBe(firstTick);
    // Enqueued through the same path as Enqueue: one ENQUEUED event per job.
    const { rows: events } = await replica1.db.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM job_event WHERE type = 'enqueued' AND job_id = ANY($1::uuid[])",
      [ticks.map((row) => row.id)],
    );
    expect(events[0]!.n).toBe(ticks.length);
    // A second job for a tick is impossible, whoever tries.
    await expect(replica1.db.pool.query(
      "UPDATE job SET schedule_id = $1, schedule_tick = to_timestamp($2 / 1000.0) WHERE id = $3",
      [schedule.id, ticks[0]!.tickMs, ticks[1]!.id],
    )).rejects.toMatchObject({ code: "23505" });
  });

  it("stops ticking at once on every replica when a schedule is deleted; its jobs stay", async () => {
    const doomed = await via1.createSchedule({ name: "doomed", cron: "* * * * * *", job: { queue: "doomed", kind: "tick" } });
    await waitFor("two ticks of the doomed schedule", async () => (await ticksOf(replica1, doomed.id)).length >= 2, 30_000);
    await via2.deleteSchedule("doomed");
    const deletedAt = await databaseNowMs(replica2);
    const before = await ticksOf(replica1, doomed.id);
    expect(before.every((row) => row.tickMs <= deletedAt)).toBe(true);

    // No sleep to prove an absence: a second per-second schedule shows that both replicas ran
    // passes for ticks after the deletion; the deleted one got none of them.
    const witness = await via2.createSchedule({ name: "witness", cron: "* * * * * *", job: { queue: "doomed", kind: "witness" } });
    await waitFor("the witness to tick twice after the deletion", async () =>
      (await ticksOf(replica1, witness.id)).filter((row) => row.tickMs > deletedAt + 1_000).length >= 2, 30_000);
    await via1.deleteSchedule("witness");
    expect(await ticksOf(replica2, doomed.id)).toEqual(before);
  });
});

describe("pausing", () => {
  it("a paused schedule gets no ticks on any replica; resuming goes on from now, without the ticks that fell while paused", async () => {
    const pausable = await via1.createSchedule({ name: "pausable", cron: "* * * * * *", job: { queue: "pausable", kind: "tick" } });
    await waitFor("two ticks before the pause", async () => (await ticksOf(replica1, pausable.id)).length >= 2, 30_000);
    await via2.pauseSchedule("pausable");
    const pausedAt = await databaseNowMs(replica2);
    const beforePause = await ticksOf(replica1, pausable.id);
    expect(beforePause.every((row) => row.tickMs <= pausedAt)).toBe(true);

    // As for deletion: a witness schedule's ticks show that passes ran while it was paused.
    const witness = await via1.createSchedule({ name: "pause-witness", cron: "* * * * * *", job: { queue: "pausable", kind: "witness" } });
    await waitFor("the witness to tick twice during the pause", async () =>
      (await ticksOf(replica2, witness.id)).filter((row) => row.tickMs > pausedAt + 1_000).length >= 2, 30_000);
    await via2.deleteSchedule("pause-witness");
    expect(await ticksOf(replica2, pausable.id)).toEqual(beforePause);

    const resumed = await via1.resumeSchedule("pausable");
    const resumedFrom = timestampDate(resumed.nextRunAt!).getTime();
    await waitFor("a tick after resuming", async () => (await ticksOf(replica1, pausable.id)).length > beforePause.length, 30_000);
    await via1.deleteSchedule("pausable");
    const afterResume = (await ticksOf(replica1, pausable.id)).slice(beforePause.length).map((row) => row.tickMs);
    expect(afterResume[0]).toBe(resumedFrom);
    expect(resumedFrom).toBeGreaterThan(pausedAt + 2_000);
    expect(gaps(afterResume)).toEqual([]);
  });
});

describe("ticks missed while no server ran", () => {
  it("enqueues the latest missed tick (LATEST), none (SKIP) or each (ALL) after a restart, then goes on from now", async () => {
    const databaseUrl = await createTestDatabase();
    const first = await startTestServer({ databaseUrl, fallbackPollMs: 60_000 });
    const client = createJobwireClient({ baseUrl: first.url });
    // Daily at the UTC hour twelve hours from now: the latest tick is about half a day ago,
    // far outside the one-minute grace whenever the test runs.
    const hour = (new Date().getUTCHours() + 12) % 24;
    const created = new Map<string, string>();
    for (const policy of ["latest", "skip", "all"] as const) {
      const schedule = await client.createSchedule({ name: `missed-${policy}`, cron: `0 ${hour} * * *`, job: { queue: "missed", kind: policy }, missedTicks: policy });
      created.set(policy, schedule.id);
    }
    // Every minute, catching up everything: more ticks than one transaction takes (100).
    const minutely = await client.createSchedule({ name: "missed-all-minutely", cron: "* * * * *", job: { queue: "missed", kind: "minutely" }, missedTicks: "all" });
    const { rows: [original] } = await first.db.pool.query<{ next: Date }>("SELECT next_run_at AS next FROM schedule WHERE name = 'missed-latest'");
    await first.close();

    // Waiting days for real missed ticks is not an option. With every server down, moving
    // next_run_at three days back is exactly the state a server finds after an outage that
    // began then: the ticks since are due and none has a job.
    const { rows: [rewound] } = await pgQuery(databaseUrl,
      `UPDATE schedule SET next_run_at = next_run_at - interval '3 days' WHERE name LIKE 'missed-%' AND name <> 'missed-all-minutely'
       RETURNING extract(epoch FROM next_run_at)::float8 * 1000 AS ms`);
    const outageTicks = [0, 1, 2].map((day) => rewound.ms + day * 86_400_000);
    const { rows: [minutelyRewound] } = await pgQuery(databaseUrl,
      `UPDATE schedule SET next_run_at = next_run_at - interval '3 hours' WHERE name = 'missed-all-minutely'
       RETURNING extract(epoch FROM next_run_at)::float8 * 1000 AS ms`);

    const second = await startTestServer({ databaseUrl, fallbackPollMs: 60_000 });
    const originalNext = new Date(original!.next).getTime();
    await waitFor("every schedule to be past its missed ticks", async () => {
      const { rows } = await second.db.pool.query<{ name: string; next: number; now: number }>(
        `SELECT name, extract(epoch FROM next_run_at)::float8 * 1000 AS next, extract(epoch FROM clock_timestamp())::float8 * 1000 AS now FROM schedule`);
      return rows.length === 4 && rows.every((row) => (row.name === "missed-all-minutely" ? row.next > row.now : row.next === originalNext));
    }, 30_000);

    expect((await ticksOf(second, created.get("latest")!)).map((row) => row.tickMs)).toEqual([outageTicks[2]]);
    expect(await ticksOf(second, created.get("skip")!)).toEqual([]);
    expect((await ticksOf(second, created.get("all")!)).map((row) => row.tickMs)).toEqual(outageTicks);
    // Minute after minute from the rewound tick to the one before next_run_at, none twice.
    const caughtUp = (await ticksOf(second, minutely.id)).map((row) => row.tickMs);
    const { rows: [after] } = await second.db.pool.query<{ ms: number }>(
      "SELECT extract(epoch FROM next_run_at)::float8 * 1000 AS ms FROM schedule WHERE id = $1", [minutely.id]);
    expect(caughtUp.length).toBeGreaterThanOrEqual(180);
    expect(caughtUp[0]).toBe(minutelyRewound.ms);
    expect(caughtUp.at(-1)).toBe(after!.ms - 60_000);
    expect(caughtUp.slice(1).filter((tick, i) => tick - caughtUp[i]! !== 60_000)).toEqual([]);
    const latest = await createJobwireClient({ baseUrl: second.url }).getSchedule("missed-latest");
    expect(timestampDate(latest.lastTickAt!).getTime()).toBe(outageTicks[2]);
    expect(latest.lastJobId).toBe((await ticksOf(second, created.get("latest")!))[0]!.id);
  });
});

describe("NOTIFY between replicas", () => {
  it("a schedule created through replica 1 ticks on replica 2 after replica 1 stops (fallback poll 60 s)", async () => {
    // Ticks from four seconds on: replica 1 is gone by then, and any timer replica 2 had
    // armed for an earlier test has fired and found nothing. Only the NOTIFY sent when the
    // schedule was created can wake replica 2 in time.
    const second = new Date(await databaseNowMs(replica2)).getUTCSeconds();
    const seconds = Array.from({ length: 16 }, (_, i) => (second + 4 + i) % 60);
    const schedule = await via1.createSchedule({ name: "survivor", cron: `${seconds.join(",")} * * * * *`, job: { queue: "survivor", kind: "tick" } });
    await replica1.close();
    const stoppedAt = await databaseNowMs(replica2);
    await waitFor("replica 2 to enqueue a tick after replica 1 stopped", async () =>
      (await ticksOf(replica2, schedule.id)).some((row) => row.tickMs > stoppedAt), 30_000);
    await via2.deleteSchedule("survivor");
    const ticks = (await ticksOf(replica2, schedule.id)).map((row) => row.tickMs);
    expect(new Set(ticks).size).toBe(ticks.length);
    expect(gaps(ticks)).toEqual([]);
  });
});

/** Runs one statement on its own connection: for the database while no server runs. */
async function pgQuery(url: string, text: string): Promise<{ rows: any[] }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}
