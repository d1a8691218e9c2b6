//! The supervisor wallboard: per team queue the customers waiting and the longest wait (ticking
//! between snapshots), the tenant's service level, average speed of answer and abandonment over
//! the last 30 minutes, agents by status with their load, a chart of customers waiting over the
//! last hour, and provider health per platform inbox.
//!
//! Seeded from `GET /api/v1/supervisor/queues` (and `/supervisor/channels`, `/teams`), then kept
//! live by the `queue` socket event (a full snapshot on every change) and `agent` events (one
//! agent's status and load). The chart is drawn from the snapshots this page has seen; they are
//! kept in localStorage for an hour so a reload does not start it from nothing.
//!
//! Supervisors act from here: force an agent's status (`PUT /users/{id}/status`) and assign a
//! waiting conversation to an agent (`POST /conversations/{id}/assign`); drill into an agent (their
//! open conversations, `GET /conversations?assignee_id=…&open=true`) or a queue (its waiting
//! conversations), and open any of them read only, live, with a reassign control (watch.ts).

import { h, replaceChildren } from "../shared/dom";
import type { I18n } from "../shared/i18n";
import type { AgentLoad, AgentStatus, ChannelHealth, ConversationView, Inbox, QueueSnapshot, Team, User } from "../shared/protocol";
import { channelBadge } from "../shared/channels";
import { RestError, type Rest } from "./rest";

const HOUR_MS = 60 * 60 * 1000;
const STATUSES: AgentStatus[] = ["available", "away", "offline"];

interface Point {
  at: number;
  waiting: number;
}

export class Wallboard {
  private snapshot: QueueSnapshot | null = null;
  /** Local time the snapshot arrived: waits tick from here (no dependence on clock skew). */
  private receivedAt = 0;
  private agents = new Map<number, AgentLoad>();
  private teams = new Map<number, string>();
  private inboxes = new Map<number, Inbox>();
  private channels: ChannelHealth[] = [];
  private history: Point[];
  private el: HTMLElement | null = null;
  private ticker: ReturnType<typeof setInterval> | null = null;
  private notice = "";
  /** The agent whose open conversations are listed under their row, if any. */
  private drilled: number | null = null;
  private drill: ConversationView[] | null = null;

  constructor(
    private readonly i18n: I18n,
    private readonly rest: Rest,
    private readonly historyKey: string,
    private readonly watch: (conversationId: number) => void,
  ) {
    this.history = loadHistory(historyKey);
  }

  /** The agents as last seen (for the watch dialog's reassign choices). */
  agentLoads(): AgentLoad[] {
    return [...this.agents.values()];
  }

  private async drillInto(userId: number): Promise<void> {
    if (this.drilled === userId) {
      this.drilled = null;
      this.renderAgents();
      return;
    }
    this.drilled = userId;
    this.drill = null;
    this.renderAgents();
    try {
      const list = await this.rest.get<ConversationView[]>(`/conversations?assignee_id=${userId}&open=true&limit=100`);
      if (this.drilled === userId) this.drill = list;
    } catch (e) {
      this.notice = this.i18n.t("wb.loadFailed", { message: (e as Error).message });
    }
    this.renderAgents();
  }

  /** Shows the wallboard in `el` and refreshes its data from the API. */
  mount(el: HTMLElement): void {
    this.el = el;
    this.render();
    if (this.ticker === null) this.ticker = setInterval(() => this.tick(), 1_000);
    void this.load();
  }

  unmount(): void {
    this.el = null;
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
  }

  onQueue(snapshot: QueueSnapshot): void {
    this.snapshot = snapshot;
    this.receivedAt = Date.now();
    this.agents = new Map(snapshot.agents.map((a) => [a.user_id, a]));
    this.record(snapshot);
    this.render();
  }

  onAgent(u: User): void {
    this.agents.set(u.id, { user_id: u.id, name: u.name, status: u.status, load: u.active_load, capacity: u.capacity });
    this.renderAgents();
  }

  private async load(): Promise<void> {
    try {
      const [snapshot, teams, channels, inboxes] = await Promise.all([
        this.rest.get<QueueSnapshot>("/supervisor/queues"),
        this.rest.get<Team[]>("/teams"),
        this.rest.get<ChannelHealth[]>("/supervisor/channels"),
        this.rest.get<Inbox[]>("/inboxes"),
      ]);
      this.teams = new Map(teams.map((t) => [t.id, t.name]));
      this.inboxes = new Map(inboxes.map((i) => [i.id, i]));
      this.channels = channels;
      // A live `queue` event may have arrived meanwhile; keep whichever is newer.
      if (!this.snapshot || snapshot.at >= this.snapshot.at) this.onQueue(snapshot);
      else this.render();
    } catch (e) {
      this.notice = this.i18n.t("wb.loadFailed", { message: (e as Error).message });
      this.render();
    }
  }

  private record(s: QueueSnapshot): void {
    const now = Date.now();
    const waiting = totalWaiting(s);
    const last = this.history[this.history.length - 1];
    if (!last || last.waiting !== waiting || now - last.at > 60_000) this.history.push({ at: now, waiting });
    this.history = this.history.filter((p) => p.at >= now - HOUR_MS);
    try {
      localStorage.setItem(this.historyKey, JSON.stringify(this.history));
    } catch {
      // Storage full or disabled: the chart still works for this page.
    }
  }

  // ------------------------------------------------------------------------------------------
  // actions

  private async forceStatus(userId: number, status: AgentStatus): Promise<void> {
    try {
      const user = await this.rest.request<User>("PUT", `/users/${userId}/status`, { status });
      this.notice = "";
      this.onAgent(user);
    } catch (e) {
      this.notice = this.i18n.t("wb.actionFailed", { message: (e as Error).message });
      this.renderAgents();
    }
  }

  private async assign(conversationId: number, userId: number): Promise<void> {
    try {
      await this.rest.request("POST", `/conversations/${conversationId}/assign`, { user_id: userId });
      this.notice = "";
    } catch (e) {
      this.notice = this.i18n.t(e instanceof RestError && e.status === 409 ? "wb.assignConflict" : "wb.actionFailed", { message: (e as Error).message });
    }
    this.render();
  }

  // ------------------------------------------------------------------------------------------
  // rendering

  private render(): void {
    const el = this.el;
    if (!el) return;
    const t = this.i18n.t.bind(this.i18n);
    const s = this.snapshot;
    replaceChildren(el,
      h("div", { class: "wb-head" },
        h("h1", null, t("wb.title")),
        h("span", { class: "muted" }, s ? t("wb.updated", { time: this.i18n.formatTime(s.at) }) : t("wb.loading"))),
      this.notice ? h("p", { class: "error", role: "alert" }, this.notice) : null,
      h("div", { class: "wb-tiles" },
        tile("waiting", t("wb.waiting"), s ? String(totalWaiting(s)) : "–"),
        tile("longest", t("wb.longestWait"), s && totalWaiting(s) ? this.duration(longest(s) + this.elapsed()) : "–"),
        tile("service-level", t("wb.serviceLevel"), this.percent(s?.service_level), {}, t("wb.serviceLevelHint")),
        tile("asa", t("wb.asa"), s?.average_speed_of_answer_secs != null ? this.duration(s.average_speed_of_answer_secs) : "–", {}, t("wb.windowHint")),
        tile("abandonment", t("wb.abandonment"), this.percent(s?.abandonment_rate), {}, t("wb.windowHint")),
      ),
      h("div", { class: "wb-grid" },
        h("section", { class: "wb-card wb-queues" }, h("h2", { class: "section-title" }, t("wb.queues")), this.queuesTable()),
        h("section", { class: "wb-card wb-chart" }, h("h2", { class: "section-title" }, t("wb.chartTitle")), h("div", { class: "chart-slot" })),
        h("section", { class: "wb-card wb-agents" }, h("h2", { class: "section-title" }, t("wb.agents")), h("div", { class: "agents-slot" })),
        h("section", { class: "wb-card wb-channels" }, h("h2", { class: "section-title" }, t("wb.channels")), this.channelsTable()),
      ),
    );
    this.renderChart();
    this.renderAgents();
  }

  private queuesTable(): HTMLElement {
    const t = this.i18n.t.bind(this.i18n);
    const s = this.snapshot;
    // Every team, waiting or not, and the queue of inboxes routed to no team.
    const rows = new Map<number | null, QueueSnapshot["queues"][number]>();
    for (const id of this.teams.keys()) rows.set(id, { team_id: id, waiting: [], longest_wait_secs: 0 });
    if (!this.inboxes.size || [...this.inboxes.values()].some((i) => i.team_id === null)) rows.set(null, { team_id: null, waiting: [], longest_wait_secs: 0 });
    for (const q of s?.queues ?? []) rows.set(q.team_id, q);
    if (!rows.size) return h("p", { class: "empty" }, t("wb.noQueues"));
    const available = [...this.agents.values()].filter((a) => a.status === "available" && a.load < a.capacity);
    const stats = new Map((s?.queue_stats ?? []).map((q) => [q.team_id, q]));
    const statCells = (team: number | null) => {
      const q = stats.get(team);
      return [
        h("td", { class: "num", "data-field": "service-level", title: t("wb.serviceLevelHint") }, this.percent(q?.service_level)),
        h("td", { class: "num", "data-field": "asa", title: t("wb.windowHint") }, q?.average_speed_of_answer_secs != null ? this.duration(q.average_speed_of_answer_secs) : "–"),
        h("td", { class: "num", "data-field": "abandonment", title: t("wb.windowHint") }, this.percent(q?.abandonment_rate)),
      ];
    };
    return h("table", { class: "wb-table" },
      h("thead", null, h("tr", null, h("th", null, t("wb.queue")), h("th", { class: "num" }, t("wb.waiting")), h("th", { class: "num" }, t("wb.longestWait")),
        h("th", { class: "num" }, t("wb.slShort")), h("th", { class: "num" }, t("wb.asaShort")), h("th", { class: "num" }, t("wb.abandonShort")))),
      h("tbody", null, ...[...rows.values()].flatMap((q) => [
        h("tr", { class: "queue-row", "data-team": q.team_id ?? "none" },
          h("td", null, q.team_id === null ? t("wb.noTeam") : this.teams.get(q.team_id) ?? t("wb.team", { id: q.team_id })),
          h("td", { class: "num", "data-field": "waiting" }, String(q.waiting.length)),
          h("td", { class: "num tick", "data-field": "longest", "data-base": q.longest_wait_secs, "data-live": q.waiting.length ? "1" : "0" },
            q.waiting.length ? this.duration(q.longest_wait_secs + this.elapsed()) : "–"),
          ...statCells(q.team_id)),
        ...q.waiting.map((w) => h("tr", { class: "waiting-row", "data-conversation": w.conversation_id },
          h("td", { colspan: 2 }, t("wb.waitingEntry", { position: w.position, id: w.conversation_id }),
            h("button", { class: "link watch-open", "data-watch-open": w.conversation_id, onclick: () => this.watch(w.conversation_id) }, t("watch.open")),
            available.length ? this.assignControl(w.conversation_id, available) : null),
          h("td", { class: "num tick", "data-base": w.waited_secs, "data-live": "1" }, this.duration(w.waited_secs + this.elapsed())),
          h("td", { colspan: 3 }))),
      ])),
    );
  }

  private assignControl(conversationId: number, agents: AgentLoad[]): HTMLElement {
    const t = this.i18n.t.bind(this.i18n);
    const select = h("select", { class: "assign-select", "aria-label": t("wb.assignTo") },
      ...agents.map((a) => h("option", { value: a.user_id }, `${a.name} (${t("wb.load", { load: a.load, capacity: a.capacity })})`)));
    return h("span", { class: "assign" }, select,
      h("button", { class: "ghost small assign-button", onclick: () => void this.assign(conversationId, Number(select.value)) }, t("wb.assign")));
  }

  private renderAgents(): void {
    const slot = this.el?.querySelector<HTMLElement>(".agents-slot");
    if (!slot) return;
    const t = this.i18n.t.bind(this.i18n);
    const all = [...this.agents.values()].sort((a, b) => a.name.localeCompare(b.name));
    const counts = h("div", { class: "by-status" }, ...STATUSES.map((st) => h("span", { class: "status-count", "data-status": st },
      h("span", { class: `status-dot s-${st}` }), `${t(`status.${st}`)} ${all.filter((a) => a.status === st).length}`)));
    const groups = STATUSES.map((st) => {
      const list = all.filter((a) => a.status === st);
      if (!list.length) return null;
      return h("div", { class: "agent-group", "data-status": st },
        h("h3", null, t(`status.${st}`)),
        ...list.flatMap((a) => [h("div", { class: "agent-row", "data-agent": a.user_id },
          h("span", { class: `status-dot s-${a.status}` }),
          h("button", {
            class: "link agent-name", "aria-expanded": String(this.drilled === a.user_id), title: t("wb.drillAgent", { name: a.name }),
            onclick: () => void this.drillInto(a.user_id),
          }, a.name),
          loadBar(a),
          h("span", { class: "agent-load", "data-field": "load" }, t("wb.load", { load: a.load, capacity: a.capacity })),
          h("select", {
            class: "force-status", "aria-label": t("wb.forceStatus", { name: a.name }),
            onchange: (ev: Event) => void this.forceStatus(a.user_id, (ev.target as HTMLSelectElement).value as AgentStatus),
          }, ...STATUSES.map((o) => h("option", { value: o, selected: o === a.status }, t(`status.${o}`))))),
        this.drilled === a.user_id ? this.drillList(a) : null]));
    });
    replaceChildren(slot, counts, ...(all.length ? groups : [h("p", { class: "empty" }, t("wb.noAgents"))]));
  }

  /** An agent's open conversations, each opening read only. */
  private drillList(a: AgentLoad): HTMLElement {
    const t = this.i18n.t.bind(this.i18n);
    const list = this.drill;
    return h("div", { class: "agent-drill", "data-drill": a.user_id },
      list === null ? h("p", { class: "muted" }, t("dialog.loading"))
        : list.length ? h("ul", null, ...list.map((c) => h("li", null, h("button", {
          class: "link watch-open", "data-watch-open": c.id, onclick: () => this.watch(c.id),
        }, t("wb.drillEntry", { id: c.id, name: c.contact.name ?? c.contact.identifiers[0] ?? "", state: this.i18n.tDynamic("state", c.state) })))))
          : h("p", { class: "muted" }, t("wb.drillNone")));
  }

  private channelsTable(): HTMLElement {
    const t = this.i18n.t.bind(this.i18n);
    if (!this.channels.length) return h("p", { class: "empty" }, t("wb.noChannels"));
    return h("table", { class: "wb-table" },
      h("thead", null, h("tr", null, h("th", null, t("wb.inbox")), h("th", null, t("wb.breaker")), h("th", { class: "num" }, t("wb.successRate")), h("th", { class: "num" }, t("wb.latency")))),
      h("tbody", null, ...this.channels.map((c) => {
        const inbox = this.inboxes.get(c.inbox_id);
        return h("tr", { "data-inbox": c.inbox_id },
          h("td", null, h("span", { class: "inbox-line" }, inbox ? channelBadge(inbox.kind, this.i18n) : null, inbox?.name ?? `#${c.inbox_id}`)),
          h("td", { title: c.last_error ?? "" }, h("span", { class: `breaker breaker-${c.state}` }, this.i18n.tDynamic("breaker", c.state))),
          h("td", { class: "num" }, this.percent(c.success_rate)),
          h("td", { class: "num" }, c.mean_latency_ms == null ? "–" : t("wb.ms", { ms: Math.round(c.mean_latency_ms) })));
      })));
  }

  /** Customers waiting over the last hour: a step line through the snapshots seen. */
  private renderChart(): void {
    const slot = this.el?.querySelector<HTMLElement>(".chart-slot");
    if (!slot) return;
    const t = this.i18n.t.bind(this.i18n);
    const now = Date.now();
    const from = now - HOUR_MS;
    const points = this.history.filter((p) => p.at >= from);
    const W = 480, H = 150, L = 28, B = 18, T = 8;
    const max = Math.max(1, ...points.map((p) => p.waiting));
    const x = (at: number) => L + ((at - from) / HOUR_MS) * (W - L - 4);
    const y = (v: number) => T + (1 - v / max) * (H - T - B);
    let d = "";
    points.forEach((p, i) => {
      d += i === 0 ? `M${x(p.at).toFixed(1)},${y(p.waiting).toFixed(1)}` : `H${x(p.at).toFixed(1)}V${y(p.waiting).toFixed(1)}`;
    });
    if (points.length) d += `H${x(now).toFixed(1)}`;
    const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": t("wb.chartTitle"), "data-points": points.length });
    for (const v of [0, max]) {
      svg.append(svgEl("line", { x1: L, x2: W - 4, y1: y(v), y2: y(v), class: "grid" }));
      svg.append(svgEl("text", { x: L - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, String(v)));
    }
    svg.append(svgEl("text", { x: L, y: H - 4, class: "axis" }, t("wb.chartStart")));
    svg.append(svgEl("text", { x: W - 4, y: H - 4, class: "axis", "text-anchor": "end" }, t("wb.chartNow")));
    if (d) svg.append(svgEl("path", { d, class: "line" }));
    const last = points[points.length - 1];
    if (last) svg.append(svgEl("circle", { cx: x(now), cy: y(last.waiting), r: 3, class: "dot" }));
    replaceChildren(slot, svg);
  }

  /** Every second: waits tick on, the chart slides every few seconds. */
  private tick(): void {
    const el = this.el;
    if (!el || !this.snapshot) return;
    const extra = this.elapsed();
    el.querySelectorAll<HTMLElement>(".tick[data-live='1']").forEach((cell) => {
      cell.textContent = this.duration(Number(cell.dataset.base) + extra);
    });
    const tileValue = el.querySelector<HTMLElement>("[data-metric=longest] .tile-value");
    if (tileValue && totalWaiting(this.snapshot) > 0) tileValue.textContent = this.duration(longest(this.snapshot) + extra);
    if (Math.floor(Date.now() / 1000) % 5 === 0) this.renderChart();
  }

  private elapsed(): number {
    return this.receivedAt ? (Date.now() - this.receivedAt) / 1000 : 0;
  }

  private duration(secs: number): string {
    const s = Math.max(0, Math.floor(secs));
    const m = Math.floor(s / 60);
    if (m >= 60) return this.i18n.t("dur.hm", { h: Math.floor(m / 60), m: m % 60 });
    if (m > 0) return this.i18n.t("dur.ms", { m, s: String(s % 60).padStart(2, "0") });
    return this.i18n.t("dur.s", { s });
  }

  private percent(v: number | null | undefined): string {
    if (v == null) return "–";
    return new Intl.NumberFormat(this.i18n.locale, { style: "percent", maximumFractionDigits: 0 }).format(v);
  }
}

function totalWaiting(s: QueueSnapshot): number {
  return s.queues.reduce((n, q) => n + q.waiting.length, 0);
}

function longest(s: QueueSnapshot): number {
  return s.queues.reduce((m, q) => (q.waiting.length ? Math.max(m, q.longest_wait_secs) : m), 0);
}

function tile(metric: string, label: string, value: string, attrs: Record<string, unknown> = {}, hint = ""): HTMLElement {
  return h("div", { class: "tile", "data-metric": metric, title: hint || null, ...attrs },
    h("div", { class: "tile-label" }, label),
    h("div", { class: "tile-value" }, value));
}

function loadBar(a: AgentLoad): HTMLElement {
  const share = a.capacity > 0 ? Math.min(1, a.load / a.capacity) : 0;
  return h("span", { class: "load-bar", "aria-hidden": "true" }, h("span", { style: `width:${Math.round(share * 100)}%` }));
}

function svgEl(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function loadHistory(key: string): Point[] {
  try {
    const raw = JSON.parse(localStorage.getItem(key) ?? "[]") as Point[];
    const from = Date.now() - HOUR_MS;
    return Array.isArray(raw) ? raw.filter((p) => typeof p?.at === "number" && typeof p.waiting === "number" && p.at >= from) : [];
  } catch {
    return [];
  }
}
