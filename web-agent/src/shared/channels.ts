//! One small badge per channel kind, so an agent sees at a glance where a customer writes from.
//! Drawn with CSS and a short glyph (no icon font, no emoji: both render unevenly across systems).

import type { ChannelKind } from "./protocol";
import { h } from "./dom";
import type { I18n } from "./i18n";

const GLYPHS: Record<ChannelKind, { glyph: string; color: string }> = {
  web: { glyph: "</>", color: "#1f6feb" },
  api: { glyph: "{ }", color: "#6e7781" },
  telegram: { glyph: "TG", color: "#229ed9" },
  whatsapp: { glyph: "WA", color: "#25d366" },
  messenger: { glyph: "M", color: "#0084ff" },
  instagram: { glyph: "IG", color: "#c13584" },
  line: { glyph: "L", color: "#06c755" },
  wechat: { glyph: "W", color: "#07c160" },
};

export function channelBadge(kind: ChannelKind, i18n: I18n): HTMLElement {
  const spec = GLYPHS[kind] ?? { glyph: "?", color: "#6e7781" };
  const label = i18n.tDynamic("channel", kind);
  return h("span", {
    class: "channel-badge",
    style: `background:${spec.color}`,
    title: label,
    "aria-label": label,
    "data-channel": kind,
    role: "img",
  }, spec.glyph);
}
