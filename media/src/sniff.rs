//! Decides what a file is from its bytes, never from its name, and refuses the kinds that would
//! run code when opened or rendered. The name only ever adds refusals (a `.exe` is refused even
//! if its bytes look like text); it never makes a file acceptable or picks its type.
//!
//! Refused, by content: every executable or bytecode format the `infer` crate recognises
//! (`MatcherType::App`: Windows PE / DLL, ELF, Mach-O, Java class, Android DEX/DEY, WebAssembly,
//! LLVM bitcode, COFF objects, ...) and any file starting with an executable's magic number
//! (`\x7fELF`, `MZ`, Mach-O, `\0asm`, `dex\n`) however short, plus OLE compound files (MSI installers), Debian and RPM
//! packages, Flash, HTML, shell scripts (`#!`), and any text carrying `<script`, `javascript:`,
//! `<iframe`, `<object`, `<embed`, `<foreignObject` or an inline `on…=` event handler inside
//! SVG/XML. Refused, by name: the extensions in [`DANGEROUS_EXTENSIONS`].

/// What the console and widget do with an attachment: show it inline or offer a download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Audio,
    Video,
    File,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::File => "file",
        }
    }

    pub fn of_mime(mime: &str) -> MediaKind {
        // SVG is an image to a browser but may carry markup; it is offered as a download.
        if mime.starts_with("image/") && mime != "image/svg+xml" {
            MediaKind::Image
        } else if mime.starts_with("audio/") {
            MediaKind::Audio
        } else if mime.starts_with("video/") {
            MediaKind::Video
        } else {
            MediaKind::File
        }
    }
}

/// The type decided from the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub mime: String,
    pub kind: MediaKind,
}

/// Why a file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} ({mime})")]
pub struct Refusal {
    /// The type the content (or name) was found to be.
    pub mime: String,
    pub reason: &'static str,
}

/// How many leading bytes decide a binary type (magic numbers sit at the start).
pub const SNIFF_LEN: usize = 8192;

/// File-name extensions refused whatever the bytes look like (the name is what the receiving
/// desktop uses to decide how to open a download).
pub const DANGEROUS_EXTENSIONS: &[&str] = &[
    "exe", "dll", "com", "scr", "pif", "cpl", "msi", "msp", "msc", "bat", "cmd", "ps1", "psm1", "vbs", "vbe", "js",
    "jse", "mjs", "wsf", "wsh", "hta", "jar", "sh", "bash", "zsh", "app", "apk", "dmg", "pkg", "deb", "rpm", "lnk",
    "reg", "html", "htm", "xhtml", "shtml", "mht", "mhtml", "svgz", "swf", "gadget", "appimage", "run",
];

/// Types refused although `infer` does not file them as applications.
const DANGEROUS_MIMES: &[&str] = &[
    "application/x-ole-storage",
    "application/vnd.debian.binary-package",
    "application/x-rpm",
    "application/x-shockwave-flash",
    "application/java-archive",
    "application/x-java-archive",
    "text/html",
    "text/x-shellscript",
];

/// Leading bytes of executables: ELF, Windows MZ, Mach-O (both byte orders, 32/64-bit, fat),
/// WebAssembly, Android DEX.
const EXECUTABLE_MAGIC: &[&[u8]] = &[
    b"\x7fELF",
    b"MZ",
    b"\xca\xfe\xba\xbe",
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\0asm",
    b"dex\n",
];

/// Markers of active content in text (compared lowercased).
const ACTIVE_TEXT_MARKERS: &[&str] = &[
    "<script",
    "javascript:",
    "<iframe",
    "<object",
    "<embed",
    "<foreignobject",
    "<!doctype html",
    "<html",
];

/// Decides the type of `content` (the whole file, or at least its first [`SNIFF_LEN`] bytes when
/// `complete` is false and the text checks will be run again on the whole) and refuses it if it
/// is dangerous. `name` is the client's file name, used only to refuse.
pub fn sniff(content: &[u8], name: Option<&str>) -> Result<Sniffed, Refusal> {
    if let Some(ext) = name.and_then(extension) {
        if DANGEROUS_EXTENSIONS.contains(&ext.as_str()) {
            return Err(Refusal { mime: format!(".{ext}"), reason: "file extension not allowed" });
        }
    }
    let head = &content[..content.len().min(SNIFF_LEN)];
    // Executable magic numbers, also when the file is too short for `infer` to be sure.
    if EXECUTABLE_MAGIC.iter().any(|m| head.starts_with(m)) {
        return Err(Refusal { mime: "application/x-executable".into(), reason: "executable content" });
    }
    if let Some(t) = infer::get(head) {
        let mime = t.mime_type();
        if t.matcher_type() == infer::MatcherType::App {
            return Err(Refusal { mime: mime.to_string(), reason: "executable content" });
        }
        if DANGEROUS_MIMES.contains(&mime) {
            let reason = if mime.starts_with("text/") { "active web content or script" } else { "executable content" };
            return Err(Refusal { mime: mime.to_string(), reason });
        }
        // XML is text: classified below (SVG or not, active or not).
        if mime != "text/xml" {
            return Ok(Sniffed { mime: mime.to_string(), kind: MediaKind::of_mime(mime) });
        }
    }
    sniff_text(content)
}

fn sniff_text(content: &[u8]) -> Result<Sniffed, Refusal> {
    // NUL bytes do not occur in text files.
    if content.contains(&0) {
        return Ok(Sniffed { mime: "application/octet-stream".into(), kind: MediaKind::File });
    }
    let text = match std::str::from_utf8(content) {
        Ok(t) => t,
        // A valid prefix cut inside a multi-byte character is still text.
        Err(e) if e.error_len().is_none() && e.valid_up_to() + 4 > content.len() => {
            std::str::from_utf8(&content[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return Ok(Sniffed { mime: "application/octet-stream".into(), kind: MediaKind::File }),
    };
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with("#!") {
        return Err(Refusal { mime: "text/x-shellscript".into(), reason: "active web content or script" });
    }
    let lower = text.to_ascii_lowercase();
    let is_svg = lower.contains("<svg");
    let is_markup = is_svg || trimmed.starts_with('<');
    if ACTIVE_TEXT_MARKERS.iter().any(|m| lower.contains(m)) || (is_markup && has_event_handler(&lower)) {
        let mime = if is_svg { "image/svg+xml" } else { "text/html" };
        return Err(Refusal { mime: mime.into(), reason: "active web content or script" });
    }
    let mime = if is_svg {
        "image/svg+xml"
    } else if trimmed.starts_with("<?xml") {
        "text/xml"
    } else {
        "text/plain; charset=utf-8"
    };
    Ok(Sniffed { mime: mime.into(), kind: MediaKind::of_mime(mime) })
}

/// An inline event handler attribute: whitespace, `on`, letters, optional spaces, `=`.
fn has_event_handler(lower: &str) -> bool {
    let b = lower.as_bytes();
    let mut i = 0;
    while let Some(pos) = lower[i..].find("on") {
        let at = i + pos;
        let preceded = at > 0 && (b[at - 1].is_ascii_whitespace() || b[at - 1] == b'/' || b[at - 1] == b'"' || b[at - 1] == b'\'');
        let mut j = at + 2;
        while j < b.len() && b[j].is_ascii_alphabetic() {
            j += 1;
        }
        let letters = j - (at + 2);
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if preceded && letters >= 3 && j < b.len() && b[j] == b'=' {
            return true;
        }
        i = at + 2;
    }
    false
}

fn extension(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    // Trailing dots and spaces are dropped by Windows when saving: "a.exe." is "a.exe".
    let base = base.trim_end_matches(['.', ' ']);
    base.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R'];

    #[test]
    fn the_name_never_decides_the_type() {
        let s = sniff(PNG, Some("holiday.txt")).expect("png accepted");
        assert_eq!(s.mime, "image/png");
        assert_eq!(s.kind, MediaKind::Image);
        let s = sniff(b"just words", Some("photo.png")).expect("text accepted");
        assert_eq!(s.mime, "text/plain; charset=utf-8");
        assert_eq!(s.kind, MediaKind::File);
    }

    #[test]
    fn executables_and_active_content_are_refused() {
        let mut pe = b"MZ".to_vec();
        pe.resize(0x40, 0);
        pe[0x3c] = 0x40;
        pe.extend_from_slice(b"PE\0\0");
        pe.resize(256, 0);
        assert!(sniff(&pe, Some("invoice.pdf")).is_err(), "PE");
        assert!(sniff(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0", None).is_err(), "ELF");
        assert!(sniff(b"\0asm\x01\0\0\0", None).is_err(), "wasm");
        assert!(sniff(b"#!/bin/sh\nrm -rf /\n", Some("notes.txt")).is_err(), "shell");
        assert!(sniff(b"<!DOCTYPE html><p>hi", None).is_err(), "html");
        assert!(sniff(b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", None).is_err());
        assert!(sniff(b"<svg xmlns='http://www.w3.org/2000/svg' onload = 'alert(1)'/>", None).is_err());
        assert!(sniff(b"plain text", Some("run.BAT")).is_err(), "extension");
        assert!(sniff(b"plain text", Some("run.exe. ")).is_err(), "trailing dot");
    }

    #[test]
    fn clean_svg_and_unknown_binaries_are_files() {
        let svg = sniff(b"<svg xmlns='http://www.w3.org/2000/svg'><circle r='4'/></svg>", Some("dot.svg")).expect("clean svg");
        assert_eq!((svg.mime.as_str(), svg.kind), ("image/svg+xml", MediaKind::File));
        let bin = sniff(&[0xff, 0xfe, 0x00, 0x81, 0x82], None).expect("unknown binary");
        assert_eq!(bin.mime, "application/octet-stream");
        // "one", "done", "online" are words, not handlers.
        assert!(sniff(b"<note>done online: one = 1</note>", None).is_ok());
    }
}
