//! The words the console and the widget show, in English and Simplified Chinese. Every string a
//! person reads comes from here (`t(key, params)`); nothing else in the UI hard-codes text.
//! Adding a language means adding one dictionary with the same keys (the type checker holds
//! every dictionary to the English one's keys).

const en = {
  "app.name": "Switchboard",
  "lang.label": "Language",
  "lang.en": "English",
  "lang.zh-CN": "简体中文",

  "login.title": "Sign in to the console",
  "login.email": "Email",
  "login.password": "Password",
  "login.tenant": "Workspace (optional)",
  "login.submit": "Sign in",
  "login.busy": "Signing in…",
  "login.failed": "Sign-in failed: {message}",
  "login.expired": "Your session has ended. Please sign in again.",
  "logout": "Sign out",

  "conn.connecting": "Connecting…",
  "conn.connected": "Connected",
  "conn.reconnecting": "Reconnecting… replies are kept and sent when the connection is back",
  "conn.offline": "You are offline. Replies are kept and sent when the connection is back",
  "conn.short.reconnecting": "Reconnecting…",
  "conn.short.offline": "Offline",

  "status.label": "Status",
  "status.available": "Available",
  "status.away": "Away",
  "status.offline": "Offline",
  "load": "{load} / {capacity} chats",

  "list.title": "My conversations",
  "list.empty": "No open conversations. New chats appear here as they are assigned to you.",
  "list.noMessages": "No messages yet",
  "list.unread": "{count} unread",

  "team.title": "Agents",

  "conv.none": "Select a conversation on the left.",
  "conv.title": "Conversation #{id}",
  "conv.loading": "Loading history…",
  "conv.closedNote": "This conversation is {state}.",

  "state.bot": "with the bot",
  "state.queued": "queued",
  "state.offered": "offered",
  "state.assigned": "assigned",
  "state.waiting_on_customer": "waiting on customer",
  "state.resolved": "resolved",
  "state.closed": "closed",
  "state.abandoned": "abandoned",

  "reply.placeholder": "Write a reply — Enter sends, Shift+Enter adds a line",
  "reply.send": "Send",
  "reply.queued": "Queued — sends when reconnected",
  "reply.sending": "Sending…",
  "reply.failed": "Not sent: {message}",
  "reply.retry": "Retry",
  "reply.discard": "Discard",

  "resolve.button": "Resolve",
  "resolve.reason": "Close reason",
  "resolve.failed": "Could not resolve: {message}",
  "reason.resolved": "Resolved",
  "reason.no_response": "No response",
  "reason.customer_left": "Customer left",
  "reason.spam": "Spam",
  "reason.duplicate": "Duplicate",
  "reason.other": "Other",

  "customer.title": "Customer",
  "customer.name": "Name",
  "customer.anonymous": "Anonymous visitor",
  "customer.visitor": "Visitor #{id}",
  "customer.identifiers": "Identifiers",
  "customer.noIdentifiers": "None on this inbox",
  "customer.masked": "masked",
  "customer.inbox": "Inbox",
  "customer.started": "Started",
  "customer.state": "State",
  "customer.priority": "Priority",

  "channel.web": "Web chat",
  "channel.api": "API",
  "channel.telegram": "Telegram",
  "channel.whatsapp": "WhatsApp",
  "channel.messenger": "Messenger",
  "channel.instagram": "Instagram",
  "channel.line": "LINE",
  "channel.wechat": "WeChat",

  "sender.contact": "Customer",
  "sender.agent": "Agent",
  "sender.you": "You",
  "sender.bot": "Bot",
  "sender.system": "System",
  "message.attachment": "[attachment: {name}]",

  "widget.title": "Chat with us",
  "widget.open": "Open chat",
  "widget.close": "Close chat",
  "widget.welcome": "Hi! Send us a message and an agent will reply here.",
  "widget.placeholder": "Type a message…",
  "widget.send": "Send",
  "widget.connecting": "Connecting…",
  "widget.online": "Connected",
  "widget.reconnecting": "Reconnecting…",
  "widget.cannotConnect": "Cannot connect: {message}",
  "widget.sending": "Sending…",
  "widget.waiting": "Waiting for an agent…",
  "widget.queuePosition": "You are number {position} in line",
  "widget.queueEta": "about {minutes} min",
  "widget.queueEtaSoon": "less than a minute",
  "widget.resolved": "This conversation is closed. Write again to start a new one.",
  "widget.misconfigured": "Chat is unavailable: the snippet needs data-inbox and data-key.",
  "widget.agentTyping": "Agent is typing…",

  "nav.label": "Views",
  "nav.conversations": "Conversations",
  "nav.wallboard": "Wallboard",
  "nav.admin": "Admin",

  "typing.customer": "Customer is typing…",

  "role.agent": "Agent",
  "role.supervisor": "Supervisor",
  "role.admin": "Admin",

  "dur.s": "{s}s",
  "dur.ms": "{m}m {s}s",
  "dur.hm": "{h}h {m}m",

  "wb.title": "Wallboard",
  "wb.loading": "Loading…",
  "wb.updated": "Updated {time}",
  "wb.loadFailed": "Could not load the wallboard: {message}",
  "wb.actionFailed": "That did not work: {message}",
  "wb.assignConflict": "Not assigned: {message}",
  "wb.waiting": "Waiting",
  "wb.longestWait": "Longest wait",
  "wb.serviceLevel": "Service level",
  "wb.serviceLevelHint": "Answered within 20 s, last 30 minutes",
  "wb.asa": "Avg. speed of answer",
  "wb.abandonment": "Abandonment",
  "wb.windowHint": "Last 30 minutes",
  "wb.queues": "Queues",
  "wb.queue": "Queue",
  "wb.noQueues": "No queues yet.",
  "wb.noTeam": "No team",
  "wb.team": "Team #{id}",
  "wb.waitingEntry": "#{position} · conversation {id}",
  "wb.assignTo": "Assign to",
  "wb.assign": "Assign",
  "wb.chartTitle": "Waiting — last hour",
  "wb.chartStart": "−60 min",
  "wb.chartNow": "now",
  "wb.agents": "Agents",
  "wb.noAgents": "No agents yet.",
  "wb.load": "{load} / {capacity}",
  "wb.forceStatus": "Set {name}'s status",
  "wb.channels": "Channel health",
  "wb.noChannels": "No platform inboxes.",
  "wb.inbox": "Inbox",
  "wb.breaker": "Circuit",
  "wb.successRate": "Success",
  "wb.latency": "Latency",
  "wb.ms": "{ms} ms",
  "breaker.closed": "healthy",
  "breaker.open": "open (sends paused)",
  "breaker.half_open": "probing",

  "admin.title": "Administration",
  "admin.loadFailed": "Could not load: {message}",
  "admin.tab.inboxes": "Inboxes",
  "admin.tab.teams": "Teams",
  "admin.tab.users": "Users",
  "admin.name": "Name",
  "admin.save": "Save",
  "admin.saved": "Saved.",
  "admin.create": "Create",
  "admin.actions": "Actions",
  "admin.default": "(default)",
  "admin.required": "required",
  "admin.unchanged": "unchanged — type to replace",
  "admin.copy": "Copy",
  "admin.copied": "Copied",
  "admin.copyFailed": "Copy failed — select and copy by hand",
  "admin.json.invalid": "Not valid JSON: {message}",
  "admin.inbox.new": "New inbox",
  "admin.inbox.pick": "Pick an inbox, or create one.",
  "admin.inbox.edit": "Edit “{name}”",
  "admin.inbox.kind": "Channel",
  "admin.inbox.team": "Team queue",
  "admin.inbox.noTeam": "No team",
  "admin.inbox.mask": "Mask customer identifiers for agents",
  "admin.inbox.settings": "Settings",
  "admin.inbox.secrets": "Secrets",
  "admin.inbox.secretsOnce": "Stored on the server and never shown again.",
  "admin.inbox.secretsKeep": "Secrets are never shown. Leave a field empty to keep it.",
  "admin.inbox.webHint": "A widget key is generated; the snippet to embed is shown after creation.",
  "admin.inbox.apiHint": "An ingestion token and a webhook signing secret are generated and shown once.",
  "admin.inbox.webhookUrl": "Webhook URL — paste it into the platform's console",
  "admin.inbox.webhookHint": "POST for events, GET for the platform's verification handshake.",
  "admin.inbox.ingestUrl": "Ingestion endpoint (Bearer: the inbound token)",
  "admin.inbox.snippet": "Embed snippet",
  "admin.inbox.credentials": "Copy these now — they are not shown again.",
  "admin.flow.title": "Auto-responder flow (JSON)",
  "admin.flow.hint": "Checked by the server on save; errors name the JSON path.",
  "admin.flow.none": "No flow: conversations go straight to the queue.",
  "admin.flow.remove": "Remove flow",
  "admin.flow.removed": "Flow removed.",
  "admin.team.create": "Create team",
  "admin.team.pick": "Pick a team, or create one.",
  "admin.team.members": "Members",
  "admin.team.noMembers": "No members yet.",
  "admin.team.addMember": "Add member",
  "admin.policy.title": "Routing policy (JSON)",
  "admin.policy.hint": "Strategy, priority aging and overflow (docs/routing.md). Checked by the server on save.",
  "admin.user.new": "New user",
  "admin.user.create": "Create user",
  "admin.user.role": "Role",
  "admin.user.capacity": "Capacity",
};

export type MessageKey = keyof typeof en;
type Dictionary = Record<MessageKey, string>;

const zhCN: Dictionary = {
  "app.name": "Switchboard",
  "lang.label": "语言",
  "lang.en": "English",
  "lang.zh-CN": "简体中文",

  "login.title": "登录坐席控制台",
  "login.email": "邮箱",
  "login.password": "密码",
  "login.tenant": "工作区（可选）",
  "login.submit": "登录",
  "login.busy": "正在登录…",
  "login.failed": "登录失败：{message}",
  "login.expired": "登录已过期，请重新登录。",
  "logout": "退出登录",

  "conn.connecting": "正在连接…",
  "conn.connected": "已连接",
  "conn.reconnecting": "正在重新连接…回复会保留，连接恢复后自动发送",
  "conn.offline": "网络已断开。回复会保留，连接恢复后自动发送",
  "conn.short.reconnecting": "正在重连…",
  "conn.short.offline": "已断网",

  "status.label": "状态",
  "status.available": "在线",
  "status.away": "离开",
  "status.offline": "离线",
  "load": "{load} / {capacity} 个会话",

  "list.title": "我的会话",
  "list.empty": "暂无进行中的会话。分配给你的新会话会显示在这里。",
  "list.noMessages": "暂无消息",
  "list.unread": "{count} 条未读",

  "team.title": "坐席",

  "conv.none": "请在左侧选择一个会话。",
  "conv.title": "会话 #{id}",
  "conv.loading": "正在加载历史消息…",
  "conv.closedNote": "该会话已{state}。",

  "state.bot": "机器人接待中",
  "state.queued": "排队中",
  "state.offered": "待接入",
  "state.assigned": "已分配",
  "state.waiting_on_customer": "等待客户回复",
  "state.resolved": "已解决",
  "state.closed": "已关闭",
  "state.abandoned": "已放弃",

  "reply.placeholder": "输入回复 —— 回车发送，Shift+回车换行",
  "reply.send": "发送",
  "reply.queued": "排队中 —— 重新连接后发送",
  "reply.sending": "发送中…",
  "reply.failed": "未发送：{message}",
  "reply.retry": "重试",
  "reply.discard": "丢弃",

  "resolve.button": "结束会话",
  "resolve.reason": "结束原因",
  "resolve.failed": "无法结束会话：{message}",
  "reason.resolved": "已解决",
  "reason.no_response": "客户无回应",
  "reason.customer_left": "客户已离开",
  "reason.spam": "垃圾消息",
  "reason.duplicate": "重复会话",
  "reason.other": "其他",

  "customer.title": "客户信息",
  "customer.name": "姓名",
  "customer.anonymous": "匿名访客",
  "customer.visitor": "访客 #{id}",
  "customer.identifiers": "标识",
  "customer.noIdentifiers": "该渠道下无标识",
  "customer.masked": "已脱敏",
  "customer.inbox": "渠道",
  "customer.started": "开始时间",
  "customer.state": "状态",
  "customer.priority": "优先级",

  "channel.web": "网页聊天",
  "channel.api": "API",
  "channel.telegram": "Telegram",
  "channel.whatsapp": "WhatsApp",
  "channel.messenger": "Messenger",
  "channel.instagram": "Instagram",
  "channel.line": "LINE",
  "channel.wechat": "微信",

  "sender.contact": "客户",
  "sender.agent": "客服",
  "sender.you": "我",
  "sender.bot": "机器人",
  "sender.system": "系统",
  "message.attachment": "[附件：{name}]",

  "widget.title": "在线客服",
  "widget.open": "打开聊天",
  "widget.close": "关闭聊天",
  "widget.welcome": "您好！请留言，客服会在这里回复您。",
  "widget.placeholder": "输入消息…",
  "widget.send": "发送",
  "widget.connecting": "正在连接…",
  "widget.online": "已连接",
  "widget.reconnecting": "正在重新连接…",
  "widget.cannotConnect": "无法连接：{message}",
  "widget.sending": "发送中…",
  "widget.waiting": "正在为您转接客服…",
  "widget.queuePosition": "您当前排在第 {position} 位",
  "widget.queueEta": "预计等待约 {minutes} 分钟",
  "widget.queueEtaSoon": "预计不到一分钟",
  "widget.resolved": "本次会话已结束。再次发送消息即可开始新的会话。",
  "widget.misconfigured": "聊天不可用：代码片段缺少 data-inbox 和 data-key。",
  "widget.agentTyping": "客服正在输入…",

  "nav.label": "视图",
  "nav.conversations": "会话",
  "nav.wallboard": "监控大屏",
  "nav.admin": "管理",

  "typing.customer": "客户正在输入…",

  "role.agent": "坐席",
  "role.supervisor": "主管",
  "role.admin": "管理员",

  "dur.s": "{s}秒",
  "dur.ms": "{m}分{s}秒",
  "dur.hm": "{h}小时{m}分",

  "wb.title": "监控大屏",
  "wb.loading": "加载中…",
  "wb.updated": "更新于 {time}",
  "wb.loadFailed": "无法加载监控大屏：{message}",
  "wb.actionFailed": "操作失败：{message}",
  "wb.assignConflict": "未能分配：{message}",
  "wb.waiting": "排队人数",
  "wb.longestWait": "最长等待",
  "wb.serviceLevel": "服务水平",
  "wb.serviceLevelHint": "20 秒内接入的比例（最近 30 分钟）",
  "wb.asa": "平均应答时间",
  "wb.abandonment": "放弃率",
  "wb.windowHint": "最近 30 分钟",
  "wb.queues": "队列",
  "wb.queue": "队列",
  "wb.noQueues": "暂无队列。",
  "wb.noTeam": "未分组",
  "wb.team": "团队 #{id}",
  "wb.waitingEntry": "第 {position} 位 · 会话 {id}",
  "wb.assignTo": "分配给",
  "wb.assign": "分配",
  "wb.chartTitle": "排队人数 —— 最近一小时",
  "wb.chartStart": "−60 分钟",
  "wb.chartNow": "现在",
  "wb.agents": "坐席",
  "wb.noAgents": "暂无坐席。",
  "wb.load": "{load} / {capacity}",
  "wb.forceStatus": "设置 {name} 的状态",
  "wb.channels": "渠道健康",
  "wb.noChannels": "暂无平台渠道。",
  "wb.inbox": "渠道",
  "wb.breaker": "熔断",
  "wb.successRate": "成功率",
  "wb.latency": "延迟",
  "wb.ms": "{ms} 毫秒",
  "breaker.closed": "正常",
  "breaker.open": "已熔断（暂停发送）",
  "breaker.half_open": "探测中",

  "admin.title": "系统管理",
  "admin.loadFailed": "加载失败：{message}",
  "admin.tab.inboxes": "渠道",
  "admin.tab.teams": "团队",
  "admin.tab.users": "用户",
  "admin.name": "名称",
  "admin.save": "保存",
  "admin.saved": "已保存。",
  "admin.create": "创建",
  "admin.actions": "操作",
  "admin.default": "（默认）",
  "admin.required": "必填",
  "admin.unchanged": "不变 —— 输入新值以替换",
  "admin.copy": "复制",
  "admin.copied": "已复制",
  "admin.copyFailed": "复制失败，请手动选中复制",
  "admin.json.invalid": "JSON 格式不正确：{message}",
  "admin.inbox.new": "新建渠道",
  "admin.inbox.pick": "请选择一个渠道，或新建一个。",
  "admin.inbox.edit": "编辑“{name}”",
  "admin.inbox.kind": "渠道类型",
  "admin.inbox.team": "团队队列",
  "admin.inbox.noTeam": "不指定团队",
  "admin.inbox.mask": "对坐席隐藏客户标识",
  "admin.inbox.settings": "设置",
  "admin.inbox.secrets": "密钥",
  "admin.inbox.secretsOnce": "密钥保存后不会再显示。",
  "admin.inbox.secretsKeep": "密钥不会显示。留空表示保持不变。",
  "admin.inbox.webHint": "将自动生成组件密钥；创建后显示嵌入代码。",
  "admin.inbox.apiHint": "将自动生成接入令牌和 Webhook 签名密钥，仅显示一次。",
  "admin.inbox.webhookUrl": "Webhook 地址 —— 粘贴到平台后台",
  "admin.inbox.webhookHint": "POST 接收事件，GET 用于平台的验证握手。",
  "admin.inbox.ingestUrl": "接入地址（Bearer：接入令牌）",
  "admin.inbox.snippet": "嵌入代码",
  "admin.inbox.credentials": "请立即复制 —— 之后不会再显示。",
  "admin.flow.title": "自动应答流程（JSON）",
  "admin.flow.hint": "保存时由服务器校验；错误会标明 JSON 路径。",
  "admin.flow.none": "未设置流程：会话直接进入队列。",
  "admin.flow.remove": "删除流程",
  "admin.flow.removed": "流程已删除。",
  "admin.team.create": "创建团队",
  "admin.team.pick": "请选择一个团队，或新建一个。",
  "admin.team.members": "成员",
  "admin.team.noMembers": "暂无成员。",
  "admin.team.addMember": "添加成员",
  "admin.policy.title": "路由策略（JSON）",
  "admin.policy.hint": "分配策略、优先级老化与溢出（见 docs/routing.md）。保存时由服务器校验。",
  "admin.user.new": "新建用户",
  "admin.user.create": "创建用户",
  "admin.user.role": "角色",
  "admin.user.capacity": "接待上限",
};

export const LOCALES = ["en", "zh-CN"] as const;
export type Locale = (typeof LOCALES)[number];

const dictionaries: Record<Locale, Dictionary> = { en, "zh-CN": zhCN };

/** Picks a supported locale from a preference list such as `navigator.languages`. */
export function pickLocale(preferred: readonly string[]): Locale {
  for (const tag of preferred) {
    const lower = tag.toLowerCase();
    if (lower.startsWith("zh")) return "zh-CN";
    if (lower.startsWith("en")) return "en";
  }
  return "en";
}

/** A translator bound to one locale; `locale` can be changed and listeners re-render. */
export class I18n {
  private listeners: Array<() => void> = [];

  constructor(public locale: Locale) {}

  t(key: MessageKey, params: Record<string, string | number> = {}): string {
    const template = dictionaries[this.locale][key] ?? en[key] ?? key;
    return template.replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
  }

  /** `t` for keys built at run time (a state or channel name from the server); falls back to the raw value. */
  tDynamic(prefix: string, value: string, params: Record<string, string | number> = {}): string {
    const key = `${prefix}.${value}`;
    return key in en ? this.t(key as MessageKey, params) : value;
  }

  setLocale(locale: Locale): void {
    if (locale === this.locale) return;
    this.locale = locale;
    for (const listener of this.listeners) listener();
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  formatTime(ms: number): string {
    const d = new Date(ms);
    const today = new Date();
    const sameDay = d.toDateString() === today.toDateString();
    const opts: Intl.DateTimeFormatOptions = sameDay
      ? { hour: "2-digit", minute: "2-digit" }
      : { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
    return new Intl.DateTimeFormat(this.locale, opts).format(d);
  }
}
