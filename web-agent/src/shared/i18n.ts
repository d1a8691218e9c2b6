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
