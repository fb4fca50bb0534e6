"""The widget's pages, stylesheet and script, as Python strings.

Rules this module enforces:

* Every value that reaches a page goes through :func:`html.escape` (text and attributes alike);
  colours are validated hex values before they are written into CSS; group names are
  percent-encoded in URLs. Nothing here trusts its arguments.
* No inline scripts and no ``style=`` attributes: the pages run under a strict CSP; the one
  ``<style>`` element (the accent colour) carries the response's nonce.
* The embed snippet is built by :func:`embed_snippet` here and by ``snippet()`` in the script,
  identically, so the code shown with and without JavaScript is the same.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape
from urllib.parse import quote

from agupshup.models import Message, format_ms
from agupshup.wire.validate import MAX_TEXT

__all__ = [
    "BAD_NAME",
    "CSS",
    "DEFAULT_COLOR",
    "FAVICON",
    "JS",
    "NOT_FOUND",
    "SWATCHES",
    "customizer_page",
    "embed_page",
    "embed_snippet",
    "embed_url",
    "normalize_color",
]

NOT_FOUND = "This group doesn't exist or it's a private group."
#: A name no group can have: said by the rule, not as "doesn't exist".
BAD_NAME = ("Group names use only letters, digits, '_', '-' and '.', start with a letter or "
            "digit, and have at most 64 characters.")
DEFAULT_COLOR = "#e4572e"
SWATCHES = ("#e4572e", "#2e86de", "#10ac84", "#8e44ad", "#f39c12", "#34495e")
SNIPPET_WIDTH, SNIPPET_HEIGHT = 340, 460
_HEX = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")


def normalize_color(value: str | None, default: str = DEFAULT_COLOR) -> str:
    """``#rrggbb`` in lower case, or ``default`` for anything that is not a hex colour."""
    match = _HEX.fullmatch((value or "").strip())
    if match is None:
        return default
    digits = match.group(1).lower()
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return "#" + digits


def ink_for(color: str) -> str:
    """Black or white, whichever reads better on ``color`` (WCAG relative luminance)."""
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    return "#1b1b1f" if luminance > 0.4 else "#ffffff"


def embed_url(base: str, group: str, color: str) -> str:
    return f"{base.rstrip('/')}/embed/{quote(group, safe='')}?color={quote(color, safe='')}"


def embed_snippet(base: str, group: str, color: str) -> str:
    """The ``<iframe>`` a site owner pastes into a blog."""
    url = embed_url(base, group, color)
    # No frameborder/scrolling (obsolete in HTML5): the style draws no border, and
    # max-width lets the frame shrink on a page narrower than 340 px (a 320 px phone).
    return (
        f'<iframe src="{escape(url)}" width="{SNIPPET_WIDTH}" height="{SNIPPET_HEIGHT}" '
        f'style="{SNIPPET_STYLE}" loading="lazy" title="GupShup group {escape(group)}">'
        "</iframe>"
    )


SNIPPET_STYLE = "border:0;max-width:100%"


def _when(ms: int) -> str:
    return format_ms(ms, "%d %b %Y, %H:%M UTC")


def ago(ms: int, now_ms: int) -> str:
    """``just now``, ``5 min ago``, ``3 h ago``, ``2 days ago``; the date beyond a week."""
    if ms <= 0:
        return ""
    seconds = max(0, (now_ms - ms) // 1000)
    for limit, unit, text in ((60, 1, "just now"), (3600, 60, "{} min ago"),
                              (86400, 3600, "{} h ago"), (7 * 86400, 86400, "{} days ago")):
        if seconds < limit:
            n = seconds // unit
            return text.format(n) if n != 1 or unit != 86400 else "yesterday"
    return format_ms(ms, "%d %b %Y")


def _accent_style(color: str, nonce: str) -> str:
    color = normalize_color(color)
    return (
        f'<style nonce="{escape(nonce)}">:root{{--accent:{color};'
        f"--accent-ink:{ink_for(color)};}}</style>"
    )


def _head(title: str, color: str, nonce: str) -> str:
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        '<link rel="icon" href="/favicon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/static/widget.css">'
        f"{_accent_style(color, nonce)}</head>"
    )


def customizer_page(
    *,
    base: str,
    group: str,
    color: str,
    error: str | None,
    nonce: str,
) -> str:
    """``/``: enter a group, choose a colour, see the preview, copy the embed code."""
    color = normalize_color(color)
    valid = bool(group) and error is None
    snippet = embed_snippet(base, group, color) if valid else ""
    swatches = "".join(
        f'<button type="button" class="swatch swatch-{i}" data-color="{c}" '
        f'aria-pressed="{str(c == color).lower()}" aria-label="Colour {c}" title="{c}"></button>'
        for i, c in enumerate(SWATCHES)
    )
    # Before a group is chosen: a hint, not an empty white frame.
    preview = (
        f'<p id="preview-hint" class="placeholder"{" hidden" if group else ""}>'
        "Enter a group name: its widget shows here.</p>"
        f'<iframe id="preview" title="Widget preview" width="{SNIPPET_WIDTH}" '
        f'height="{SNIPPET_HEIGHT}"'
        + (f' src="{escape(embed_url("", group, color))}"' if group else " hidden")
        + "></iframe>"
    )
    return (
        _head("GupShup featured widget", color, nonce)
        + f'<body class="customizer" data-base="{escape(base)}">'
        '<main class="layout">'
        '<section class="card customize">'
        "<h1>Featured widget</h1>"
        '<p class="lede">Show your GupShup group\'s latest messages on your blog or site, '
        "with a box your readers can post from.</p>"
        '<form id="customize" method="get" action="/" autocomplete="off">'
        '<h2>Customize Widget</h2>'
        '<label for="group">Enter Group Name:</label>'
        '<div class="row">'
        f'<input id="group" name="group" value="{escape(group)}" placeholder="e.g. jumpy" '
        'spellcheck="false" maxlength="64" required>'
        '<button type="submit" class="secondary">Preview</button></div>'
        f'<p id="group-error" class="error" role="alert"{"" if error else " hidden"}>'
        f"{escape(error or NOT_FOUND)}</p>"
        '<label for="color">Choose Color:</label>'
        '<div class="row colors">'
        f'<input id="color" name="color" type="color" value="{escape(color)}">'
        f'<div class="swatches">{swatches}</div></div>'
        '<label for="embed">Embed Code:</label>'
        f'<textarea id="embed" readonly rows="4" spellcheck="false">{escape(snippet)}</textarea>'
        '<div class="row end"><span id="copied" class="hint" hidden>Copied!</span>'
        f'<button type="button" id="copy"{"" if valid else " disabled"}>Copy code</button></div>'
        "</form></section>"
        '<section class="card preview"><h2>Live preview</h2>'
        f'<div class="frame">{preview}</div></section>'
        "</main>"
        '<script src="/static/widget.js"></script>'
        "</body></html>"
    )


def embed_page(
    *,
    group: str,
    color: str,
    messages: Sequence[Message] | None,
    error: str | None,
    notice: str | None,
    can_post: bool,
    text: str,
    updated: str,
    nonce: str,
    now_ms: int = 0,
) -> str:
    """``/embed/{group}``: the group's latest messages and, for the owner's groups, a post box.
    ``now_ms``: the time the messages' ages are told from (0: absolute times only)."""
    color = normalize_color(color)
    if messages is None:
        body = f'<p class="empty error" role="alert">{escape(error or NOT_FOUND)}</p>'
    elif not messages:
        body = '<p class="empty">No messages yet.</p>'
    else:
        body = ('<ul class="messages">' + "".join(_message(m, now_ms) for m in messages)
                + "</ul>")
    banner = ""
    if messages is not None and error:
        banner = f'<p class="banner error" role="alert">{escape(error)}</p>'
    elif notice:
        banner = f'<p class="banner ok" role="status">{escape(notice)}</p>'
    form = ""
    if can_post and messages is not None:
        form = (
            f'<form class="post" method="post" action="{escape(embed_url("", group, color))}" '
            'autocomplete="off">'
            f'<input type="hidden" name="color" value="{escape(color)}">'
            # No maxlength: it would cut a pasted 170 characters to 160 without a word. The
            # counter says it instead, and the server refuses what is too long.
            f'<input name="text" value="{escape(text)}" required data-max="{MAX_TEXT}" '
            f'placeholder="Say something to {escape(group)}" aria-label="Message" '
            'aria-describedby="count">'
            f'<span id="count" class="count" aria-live="polite">{len(text)}/{MAX_TEXT}</span>'
            '<button type="submit">Post</button></form>'
        )
    return (
        _head(f"{group} on GupShup", color, nonce)
        + f'<body class="embed" data-group="{escape(group)}">'
        '<div class="widget">'
        '<header><span class="dot"></span>'
        f'<span class="name">{escape(group)}</span>'
        '<span class="brand">on GupShup</span></header>'
        f"{banner}"
        f'<div class="body" id="feed">{body}</div>'
        f"{form}"
        f'<footer><span id="updated">{escape(updated if messages is not None else "")}'
        "</span></footer>"
        "</div>"
        '<script src="/static/embed.js"></script>'
        "</body></html>"
    )


def _message(m: Message, now_ms: int = 0) -> str:
    absolute = _when(m.timestamp)
    shown = ago(m.timestamp, now_ms) if now_ms else absolute
    iso = format_ms(m.timestamp, "%Y-%m-%dT%H:%M:%SZ")
    return (
        f'<li class="message" data-id="{m.id}">'
        f'<p class="text">{escape(m.text)}</p>'
        f'<p class="meta"><span class="sender">{escape(m.sender or "anonymous")}</span>'
        f'<time class="time" datetime="{iso}" title="{escape(absolute)}">{escape(shown)}</time>'
        "</p></li>"
    )


CSS = """
*{box-sizing:border-box}
html,body{margin:0;padding:0}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
  color:#1b1b1f;background:#f3f4f7}
button{font:inherit;cursor:pointer;border:0;border-radius:8px;padding:.55em 1.1em;
  background:var(--accent);color:var(--accent-ink);font-weight:600}
button:disabled{opacity:.45;cursor:default}
button.secondary{background:#e7e9ef;color:#1b1b1f}
input,textarea{font:inherit;border:1px solid #cfd3dc;border-radius:8px;padding:.5em .7em;
  background:#fff;color:inherit;width:100%}
input:focus,textarea:focus{outline:2px solid var(--accent);outline-offset:1px;
  border-color:transparent}
.error{color:#b3261e}
[hidden]{display:none!important}

/* the customizer */
.customizer .layout{display:flex;flex-wrap:wrap;gap:24px;max-width:980px;margin:32px auto;
  padding:0 16px;align-items:flex-start}
.card{background:#fff;border-radius:14px;box-shadow:0 1px 3px rgba(20,20,40,.08),
  0 8px 24px rgba(20,20,40,.06);padding:24px 28px}
.customize{flex:1 1 420px}
.preview{flex:0 0 auto}
h1{margin:0 0 .2em;font-size:1.7em;letter-spacing:-.01em}
h2{margin:1.2em 0 .6em;font-size:.8em;text-transform:uppercase;letter-spacing:.08em;color:#6b6f7b}
.preview h2{margin-top:0}
.lede{margin:0;color:#4a4e59}
label{display:block;font-weight:600;margin:1em 0 .4em}
.row{display:flex;gap:8px;align-items:center}
.row.end{justify-content:flex-end;margin-top:8px}
.colors input[type=color]{width:52px;height:40px;padding:2px;flex:0 0 auto}
.swatches{display:flex;gap:8px;flex-wrap:wrap}
.swatch{width:30px;height:30px;padding:0;border-radius:50%;border:2px solid #fff;
  box-shadow:0 0 0 1px #cfd3dc}
.swatch[aria-pressed=true]{box-shadow:0 0 0 2px #1b1b1f}
.swatch-0{background:#e4572e}.swatch-1{background:#2e86de}.swatch-2{background:#10ac84}
.swatch-3{background:#8e44ad}.swatch-4{background:#f39c12}.swatch-5{background:#34495e}
textarea{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px;
  resize:vertical;background:#fafbfc}
.hint{color:#10ac84;font-weight:600;margin-right:auto}
.frame{border-radius:12px;overflow:hidden;box-shadow:0 0 0 1px #e2e4ea}
.frame iframe{display:block;border:0;background:#fff;max-width:100%}
.customize,.preview{min-width:0;max-width:100%}
/* phones: the cards take the whole width, the preview shrinks to fit */
@media (max-width:480px){
  .customizer .layout{margin:12px auto;padding:0 8px;gap:12px}
  .card{padding:16px}
  .preview{flex:1 1 100%}
  .frame iframe{width:100%}
  .row{flex-wrap:wrap}
  .row input{flex:1 1 160px;min-width:0}
}

/* the embedded view */
.embed{background:transparent}
.widget{display:flex;flex-direction:column;height:100vh;max-height:460px;background:#fff;
  border:1px solid #e2e4ea;border-radius:12px;overflow:hidden}
.widget header{display:flex;align-items:center;gap:8px;padding:12px 14px;
  background:var(--accent);color:var(--accent-ink)}
.widget .dot{width:10px;height:10px;border-radius:50%;background:var(--accent-ink);opacity:.8}
.widget .name{font-weight:700;font-size:1.05em;overflow:hidden;text-overflow:ellipsis;
  white-space:nowrap}
.widget .brand{margin-left:auto;font-size:.78em;opacity:.85}
.widget .body{flex:1;overflow-y:auto}
.messages{list-style:none;margin:0;padding:0}
.message{padding:10px 14px;border-bottom:1px solid #f0f1f4}
.message:first-child{background:linear-gradient(90deg,
  color-mix(in srgb,var(--accent) 8%,#fff),#fff)}
.message .text{margin:0 0 2px;word-wrap:break-word;overflow-wrap:anywhere}
.message .meta{margin:0;font-size:.78em;color:#7a7e89;display:flex;gap:8px}
.message .sender{font-weight:600;color:var(--accent);filter:brightness(.85)}
.empty{padding:28px 16px;text-align:center;color:#6b6f7b}
.banner{margin:0;padding:8px 14px;font-size:.88em}
.banner.error{background:#fdecea}
.banner.ok{background:#e8f6ef;color:#0c6b4f}
.post{display:flex;gap:6px;padding:10px;border-top:1px solid #eceef2;background:#fafbfc}
.post input{padding:.45em .6em;min-width:0;flex:1 1 auto}
.post .count{align-self:center;font-size:.75em;color:#7a7e89;white-space:nowrap}
.post .count.over{color:#b3261e;font-weight:700}
.placeholder{width:340px;max-width:100%;height:460px;margin:0;display:flex;align-items:center;
  justify-content:center;text-align:center;padding:24px;color:#6b6f7b;background:#fafbfc}
.widget footer{padding:5px 14px;font-size:.72em;color:#9a9ea8;border-top:1px solid #f0f1f4}
"""

#: A speech bubble in the accent's default colour (also served as /favicon.ico: browsers that
#: ask for it get an icon, not a 404).
FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<path fill="#e4572e" d="M4 4h24a3 3 0 0 1 3 3v14a3 3 0 0 1-3 3H13l-7 6v-6H4a3 3 0 0 1-3-3V7'
    'a3 3 0 0 1 3-3z"/><circle cx="10" cy="14" r="2" fill="#fff"/>'
    '<circle cx="16" cy="14" r="2" fill="#fff"/><circle cx="22" cy="14" r="2" fill="#fff"/></svg>'
)

JS = r"""
(function () {
  "use strict";
  var form = document.getElementById("customize");
  if (!form) { return; }
  var group = document.getElementById("group");
  var color = document.getElementById("color");
  var embed = document.getElementById("embed");
  var preview = document.getElementById("preview");
  var hint = document.getElementById("preview-hint");
  var error = document.getElementById("group-error");
  var copy = document.getElementById("copy");
  var copied = document.getElementById("copied");
  var base = document.body.getAttribute("data-base");
  var timer = null;
  var seq = 0;

  function esc(s) {
    return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
            .replace(/"/g, "&quot;").replace(/'/g, "&#x27;");
  }
  function url(b, g, c) {
    return b.replace(/\/+$/, "") + "/embed/" + encodeURIComponent(g) +
           "?color=" + encodeURIComponent(c);
  }
  function snippet(g, c) {
    return '<iframe src="' + esc(url(base, g, c)) + '" width="340" height="460" ' +
           'style="border:0;max-width:100%" loading="lazy" title="GupShup group ' + esc(g) +
           '"></iframe>';
  }
  function ink(c) {
    var lin = [1, 3, 5].map(function (i) {
      var v = parseInt(c.substr(i, 2), 16) / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2] > 0.4 ? "#1b1b1f" : "#ffffff";
  }
  function show(ok, message) {
    var g = group.value.trim(), c = color.value.toLowerCase();
    document.documentElement.style.setProperty("--accent", c);
    document.documentElement.style.setProperty("--accent-ink", ink(c));
    if (g) { preview.src = url("", g, c); }
    preview.hidden = !g; hint.hidden = !!g;
    error.hidden = ok || !g;
    if (message) { error.textContent = message; }
    embed.value = ok && g ? snippet(g, c) : "";
    copy.disabled = !(ok && g);
    Array.prototype.forEach.call(document.querySelectorAll(".swatch"), function (b) {
      b.setAttribute("aria-pressed", String(b.getAttribute("data-color") === c));
    });
    var u = new URL(window.location.href);
    u.searchParams.set("group", g); u.searchParams.set("color", c);
    window.history.replaceState(null, "", u.pathname + u.search);
  }
  function check() {
    var g = group.value.trim();
    var mine = ++seq;
    if (!g) { show(false, null); return; }
    fetch("/api/groups/" + encodeURIComponent(g), {headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (d) { if (mine === seq) { show(d.ok, d.error || null); } })
      .catch(function () { if (mine === seq) { show(false, "Could not check the group."); } });
  }
  function later() { clearTimeout(timer); timer = setTimeout(check, 350); }

  form.addEventListener("submit", function (e) { e.preventDefault(); check(); });
  group.addEventListener("input", later);
  color.addEventListener("input", later);
  color.addEventListener("change", check);
  Array.prototype.forEach.call(document.querySelectorAll(".swatch"), function (b) {
    b.addEventListener("click", function () {
      color.value = b.getAttribute("data-color"); check();
    });
  });
  copy.addEventListener("click", function () {
    embed.select();
    var done = function () {
      copied.hidden = false;
      setTimeout(function () { copied.hidden = true; }, 1500);
    };
    if (navigator.clipboard) { navigator.clipboard.writeText(embed.value).then(done, done); }
    else { document.execCommand("copy"); done(); }
  });
})();
"""

EMBED_JS = r"""
(function () {
  "use strict";
  // Refresh the feed now and then; the server answers from its cache, so this costs no quota.
  var feed = document.getElementById("feed");
  var updated = document.getElementById("updated");
  var text = document.querySelector("form.post input[name=text]");
  var count = document.getElementById("count");
  if (text && count) {
    // Says the 160-character limit as one types or pastes (nothing is cut silently).
    var max = parseInt(text.getAttribute("data-max"), 10);
    var button = document.querySelector("form.post button");
    var tell = function () {
      var n = text.value.length;
      count.textContent = n + "/" + max;
      count.classList.toggle("over", n > max);
      button.disabled = n > max;
    };
    text.addEventListener("input", tell);
    tell();
  }
  if (!feed) { return; }
  setInterval(function () {
    if (document.hidden) { return; }
    var u = new URL(window.location.href);
    u.searchParams.delete("posted");
    fetch(u.pathname + u.search, {headers: {"Accept": "text/html"}})
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("feed"), when = doc.getElementById("updated");
        if (fresh) {
          feed.replaceChildren.apply(feed, Array.prototype.slice.call(fresh.childNodes));
        }
        if (when && updated) { updated.textContent = when.textContent; }
      })
      .catch(function () {});
  }, 15000);
})();
"""
