//! The widget's CSS, injected into its shadow root (so no separate stylesheet request and no
//! clash with the host page).

export const WIDGET_CSS = `
:host { all: initial; }
.root {
  position: fixed; right: 20px; bottom: 20px; z-index: 2147483000;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans", "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif;
  color: #1f2328; display: flex; flex-direction: column; align-items: flex-end; gap: 12px;
}
button { font: inherit; cursor: pointer; }
svg { width: 22px; height: 22px; fill: none; stroke: currentColor; stroke-width: 2; stroke-linecap: round; stroke-linejoin: round; }
.launcher {
  position: relative; width: 56px; height: 56px; border-radius: 50%; border: 0; background: #1f6feb; color: #fff;
  display: grid; place-items: center; box-shadow: 0 6px 20px rgba(31, 111, 235, .35);
}
.launcher svg { width: 26px; height: 26px; }
.badge {
  position: absolute; top: -2px; right: -2px; min-width: 20px; height: 20px; padding: 0 5px; border-radius: 10px;
  background: #cf222e; color: #fff; font-size: 11px; font-weight: 700; display: grid; place-items: center; border: 2px solid #fff;
}
.panel {
  width: 360px; height: min(540px, calc(100vh - 110px)); background: #fff; border-radius: 16px; overflow: hidden;
  box-shadow: 0 12px 40px rgba(0, 0, 0, .18); display: flex; flex-direction: column;
}
.panel[hidden] { display: none; }
.header { background: #1f6feb; color: #fff; padding: 14px 14px 12px 18px; display: flex; align-items: flex-start; gap: 8px; }
.header-text { flex: 1; min-width: 0; }
.title { font-weight: 700; font-size: 16px; }
.status { font-size: 12px; opacity: .9; display: flex; align-items: center; gap: 6px; margin-top: 2px; }
.status .dot { width: 8px; height: 8px; border-radius: 50%; background: #ffd33d; }
.status-online .dot { background: #4ac26b; }
.status-error .dot { background: #ff8182; }
.close { background: transparent; border: 0; color: #fff; padding: 4px; border-radius: 8px; display: grid; place-items: center; }
.close:hover { background: rgba(255, 255, 255, .15); }
.queue { background: #fff8c5; color: #4d2d00; font-size: 13px; padding: 8px 16px; border-bottom: 1px solid #eee; }
.queue[hidden] { display: none; }
.log { flex: 1; overflow-y: auto; padding: 14px; display: flex; flex-direction: column; gap: 2px; background: #f6f7f9; }
.msg { display: flex; flex-direction: column; max-width: 80%; margin: 3px 0; }
.bubble { padding: 8px 12px; border-radius: 14px; white-space: pre-wrap; overflow-wrap: anywhere; }
.meta { font-size: 11px; color: #656d76; margin: 2px 4px 0; }
.theirs { align-self: flex-start; }
.theirs .bubble { background: #fff; border: 1px solid #e3e6ea; border-bottom-left-radius: 4px; }
.mine { align-self: flex-end; align-items: flex-end; }
.mine .bubble { background: #1f6feb; color: #fff; border-bottom-right-radius: 4px; }
.pending .bubble { opacity: .6; }
.typing { font-size: 12px; color: #656d76; padding: 4px 16px 6px; background: #f6f7f9; font-style: italic; }
.typing[hidden] { display: none; }
.composer { display: flex; gap: 8px; padding: 10px 12px; border-top: 1px solid #e3e6ea; background: #fff; align-items: flex-end; }
textarea {
  flex: 1; resize: none; border: 1px solid #d0d7de; border-radius: 10px; padding: 9px 11px; font: inherit; color: inherit;
  max-height: 120px; min-height: 40px;
}
textarea:focus { outline: none; border-color: #1f6feb; box-shadow: 0 0 0 3px #e8f0fe; }
.send { width: 40px; height: 40px; border-radius: 10px; border: 0; background: #1f6feb; color: #fff; display: grid; place-items: center; flex: none; }
.send svg { width: 18px; height: 18px; }
.attach { width: 36px; height: 40px; border: 0; background: none; color: #656d76; display: grid; place-items: center; flex: none; border-radius: 10px; }
.attach:hover { color: #1f6feb; background: #f0f4fa; }
.attach svg { width: 20px; height: 20px; }
.attachments { display: flex; flex-wrap: wrap; align-items: flex-start; gap: 4px; margin-top: 4px; }
.mine .attachments { justify-content: flex-end; }
.attachment.image { display: block; line-height: 0; border-radius: 10px; overflow: hidden; border: 1px solid #e3e6ea; }
.thumb { max-width: 200px; max-height: 150px; display: block; object-fit: cover; }
.attachment.file svg { width: 16px; height: 16px; color: #656d76; flex: none; }
.attachment.file {
  display: inline-flex; align-items: center; gap: 6px; padding: 6px 10px; border: 1px solid #d0d7de; border-radius: 10px;
  background: #fff; color: #1f2328; text-decoration: none; font-size: 13px; max-width: 100%;
}
.file-name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; max-width: 160px; }
.file-size { color: #656d76; font-size: 12px; }
.file-action { color: #1f6feb; font-size: 12px; font-weight: 600; }
.upload.failed .meta { color: #cf222e; }
.dismiss { border: 0; background: none; color: inherit; padding: 0 4px; }
@media (max-width: 480px) {
  .root { right: 12px; bottom: 12px; left: 12px; }
  .panel { width: 100%; height: calc(100vh - 100px); }
}
.prechat-slot[hidden], .log[hidden], .composer[hidden] { display: none; }
.prechat-slot { flex: 1; overflow-y: auto; }
.prechat { display: flex; flex-direction: column; gap: 10px; padding: 16px; }
.prechat-intro { margin: 0; color: #444; }
.prechat-field { display: flex; flex-direction: column; gap: 4px; font-size: 13px; color: #555; }
.prechat-field input, .prechat-field select { font: inherit; padding: 8px 10px; border: 1px solid #d0d7de; border-radius: 8px; color: #1f2328; background: #fff; }
.prechat-error { margin: 0; color: #cf222e; font-size: 13px; }
.prechat-error:empty { display: none; }
.prechat-start { font: inherit; font-weight: 600; border: 0; border-radius: 8px; padding: 10px; background: #1f6feb; color: #fff; cursor: pointer; }
`;
