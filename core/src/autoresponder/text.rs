//! How the auto-responder reads what a customer typed: normalisation (case, full-width forms,
//! surrounding blanks), keyword matching that respects word boundaries in spaced scripts but not
//! in Chinese, Japanese, Korean or Thai, the built-in field validators, and `{placeholder}`
//! rendering for bot replies.
//!
//! Pure string functions; nothing here knows about flows or state.

use std::collections::BTreeMap;

use serde_json::Value;

/// Customer text longer than this is cut before any matching, so one huge message cannot make a
/// step expensive. Generous for chat; a pasted essay is still matched on its first 4 KiB.
pub const MAX_MATCHED_CHARS: usize = 4096;

/// Lower-cases, maps full-width ASCII (`ＡＧＥＮＴ`, `１`) to ASCII, turns the ideographic space
/// into a plain one, and trims. Used on both sides of every comparison.
pub fn normalize(text: &str) -> String {
    let folded: String = text
        .chars()
        .take(MAX_MATCHED_CHARS)
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        })
        .flat_map(char::to_lowercase)
        .collect();
    folded.trim().to_string()
}

/// Scripts written without spaces between words. A keyword edge in one of these needs no word
/// boundary: `人工` must match inside `转人工服务`, `オペレーター` inside `オペレーターをお願いします`.
fn is_unspaced_script(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0E7F      // Thai
        | 0x1100..=0x11FF    // Hangul Jamo
        | 0x3040..=0x30FF    // Hiragana, Katakana (incl. the prolonged sound mark)
        | 0x3130..=0x318F    // Hangul compatibility Jamo
        | 0x31F0..=0x31FF    // Katakana phonetic extensions
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0xFF66..=0xFF9F    // half-width Katakana
        | 0x20000..=0x2FFFF  // CJK extensions B–F
    )
}

/// A character that glues to its neighbours in a spaced script (so `agent` does not match inside
/// `management`).
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && !is_unspaced_script(c)
}

/// Whether `keyword` occurs in `text`. Both must already be [`normalize`]d. An edge of the
/// keyword that is a letter or digit of a spaced script must sit on a word boundary in `text`;
/// an edge in an unspaced script (or punctuation) matches anywhere.
pub fn contains_keyword(text: &str, keyword: &str) -> bool {
    if keyword.is_empty() {
        return false;
    }
    let (Some(first), Some(last)) = (keyword.chars().next(), keyword.chars().next_back()) else {
        return false;
    };
    let mut from = 0;
    while let Some(offset) = text[from..].find(keyword) {
        let start = from + offset;
        let end = start + keyword.len();
        let before_ok = !is_word_char(first) || text[..start].chars().next_back().is_none_or(|c| !is_word_char(c));
        let after_ok = !is_word_char(last) || text[end..].chars().next().is_none_or(|c| !is_word_char(c));
        if before_ok && after_ok {
            return true;
        }
        // Advance by one character, not one byte, to stay on a char boundary.
        from = start + text[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// Whether any of `keywords` (raw, as configured) occurs in the normalised `text`.
pub fn contains_any(text: &str, keywords: &[String]) -> bool {
    keywords.iter().any(|k| contains_keyword(text, &normalize(k)))
}

/// Whether the normalised `text` is exactly one of `words`, ignoring trailing punctuation
/// (`yes!`, `はい。`).
pub fn is_one_of(text: &str, words: &[String]) -> bool {
    let answer = strip_trailing_punctuation(text);
    words.iter().any(|w| strip_trailing_punctuation(&normalize(w)) == answer)
}

/// `1.` / `1)` / `yes!` / `はい。` → `1` / `1` / `yes` / `はい`.
pub fn strip_trailing_punctuation(text: &str) -> &str {
    text.trim_end_matches(|c: char| c.is_ascii_punctuation() || matches!(c, '。' | '、' | '！' | '？' | ' '))
}

/// Accepts `local@domain.tld`: one `@`, no blanks, a dot in the domain that is neither first nor
/// last. Deliberately loose: the only sure check of an address is mailing it.
pub fn valid_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !text.chars().any(char::is_whitespace)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && text.len() <= 254
}

/// Normalises a phone number to `+` and digits, or `None` if it is not one: an optional leading
/// `+`, then digits separated by blanks, dashes, dots or parentheses; 6 to 15 digits (E.164's
/// maximum).
pub fn normalize_phone(text: &str) -> Option<String> {
    let text = text.trim();
    let (plus, rest) = match text.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", text),
    };
    if !rest.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')')) {
        return None;
    }
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    (6..=15).contains(&digits.len()).then(|| format!("{plus}{digits}"))
}

/// Accepts an optionally signed integer or decimal (`42`, `-3`, `12.50`, `0012`). The value is
/// kept as typed (so order numbers keep their leading zeros).
pub fn valid_number(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (int, frac) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    !int.is_empty()
        && int.chars().all(|c| c.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()))
}

/// Replaces `{name}` with `values[name]` (strings as they are, other JSON as its text); unknown
/// placeholders and lone braces are left as typed.
pub fn render(template: &str, values: &BTreeMap<String, Value>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
        let name = &after[..name_len];
        match (after[name_len..].starts_with('}'), values.get(name)) {
            (true, Some(value)) if !name.is_empty() => {
                match value {
                    Value::String(s) => out.push_str(s),
                    other => out.push_str(&other.to_string()),
                }
                rest = &after[name_len + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_respect_word_boundaries_only_in_spaced_scripts() {
        let k = |t: &str, kw: &str| contains_keyword(&normalize(t), &normalize(kw));
        assert!(k("I want an AGENT please", "agent"));
        assert!(k("agent!", "agent"));
        assert!(!k("change management", "agent"), "inside a word is not a match");
        assert!(!k("agents", "agent"));
        assert!(k("转人工服务", "人工"));
        assert!(k("我要转人工", "转人工"));
        assert!(k("オペレーターをお願いします", "オペレーター"));
        assert!(k("ＡＧＥＮＴ", "agent"), "full-width forms fold to ASCII");
        assert!(k("talk to a real person", "real person"));
        assert!(!k("", "agent"));
        assert!(!k("agent", ""));
    }

    #[test]
    fn validators_accept_and_refuse() {
        assert!(valid_email("ada@example.com"));
        assert!(!valid_email("ada@example"));
        assert!(!valid_email("ada example@x.com"));
        assert!(!valid_email("@x.com"));
        assert_eq!(normalize_phone("+86 138-0013 8000").as_deref(), Some("+8613800138000"));
        assert_eq!(normalize_phone("(030) 123456").as_deref(), Some("030123456"));
        assert_eq!(normalize_phone("12345"), None);
        assert_eq!(normalize_phone("call me"), None);
        assert!(valid_number("0012") && valid_number("-3.5") && !valid_number("1.") && !valid_number("x1"));
    }

    #[test]
    fn render_fills_known_placeholders_only() {
        let values = BTreeMap::from([("name".to_string(), Value::from("Ada")), ("n".to_string(), Value::from(3))]);
        assert_eq!(render("Hi {name}, {n} {unknown} {", &values), "Hi Ada, 3 {unknown} {");
        assert_eq!(render("{{name}}", &values), "{Ada}");
    }
}
