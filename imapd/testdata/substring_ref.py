"""Reference answers for IMAP SEARCH text keys, computed independently of
the server: every message is fetched whole, decoded with Python's email
package, and each key is a case-insensitive substring match (runs of white
space as one space) over what a reader sees. The same keys are then sent as
UID SEARCH; both answers are printed as JSON.

usage: substring_ref.py host port user password < spec.json
spec: {"folders": [...], "queries": [[key, arg], ...]}
"""
import email, email.header, email.policy, email.utils, imaplib, json, re, sys
from html.parser import HTMLParser

BLOCK = {"title", "br", "p", "div", "tr", "li", "ul", "ol", "dl", "dt", "dd", "table", "tbody", "thead",
         "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr", "section", "article", "header",
         "footer", "address", "center", "body", "html", "form", "fieldset", "nav", "main", "td", "th", "img"}
SKIP = {"script", "style", "template", "noscript"}


class Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in SKIP:
            self.skip += 1
        elif tag in BLOCK:
            self.out.append(" ")

    def handle_endtag(self, tag):
        if tag in SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in BLOCK:
            self.out.append(" ")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)


def html_text(s):
    p = Text()
    p.feed(s)
    p.close()
    return "".join(p.out)


def calendar_text(s):
    # RFC 5545: unfold, then the values of the properties a reader sees.
    s = re.sub(r"\r?\n[ \t]", "", s)
    out = []
    for line in s.splitlines():
        name, sep, value = line.partition(":")
        if not sep:
            continue
        if name.split(";")[0].upper() in ("SUMMARY", "LOCATION", "DESCRIPTION", "COMMENT"):
            value = re.sub(r"\\([nN,;\\])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)
            out.append(value)
    return "\n".join(out)


def decode_part(part):
    payload = part.get_payload(decode=True) or b""
    cs = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(cs, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


SHOWN = ("from", "to", "cc", "subject", "date")


def raw8(v):
    # compat32 keeps raw 8-bit header bytes as surrogate escapes: they are
    # UTF-8 when they can be.
    return str(v).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def decoded(v):
    try:
        chunks = email.header.decode_header(v if isinstance(v, email.header.Header) else raw8(v))
    except Exception:
        return raw8(v)
    out = []
    for b, cs in chunks:
        if isinstance(b, str):
            out.append(b)
            continue
        try:
            out.append(b.decode(cs if cs and cs != "unknown-8bit" else "utf-8", "replace"))
        except LookupError:
            out.append(b.decode("utf-8", "replace"))
    return "".join(out)


def header_value(msg, name):
    return " ".join(raw8(v) for v in msg.get_all(name, []))


def visible(msg, out):
    ct = msg.get_content_type()
    if ct in ("message/rfc822", "message/global"):
        for sub in msg.get_payload():
            for name, value in sub.items():
                if name.lower() in SHOWN:
                    out.append("%s: %s" % (name, decoded(value)))
            visible(sub, out)
        return
    if msg.is_multipart():
        for sub in msg.get_payload():
            visible(sub, out)
        return
    if msg.get_content_maintype() == "multipart":
        # Without a usable boundary the body is one text.
        out.append(decode_part(msg))
        return
    if msg.get_content_maintype() != "text":
        return
    text = decode_part(msg)
    sub = msg.get_content_subtype()
    if sub == "html":
        text = html_text(text)
    elif sub == "calendar":
        text = calendar_text(text)
    out.append(text)


def norm(s):
    return " ".join(s.lower().split())


def sent_day(raw):
    # The first Date: field of the header, read from the bytes: a broken
    # line earlier in the header does not end it. A time of day out of
    # range (RFC 5322 3.3) makes the date unusable.
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    m = re.search(rb"(?im)^date:[ \t]*(.*(?:\r?\n[ \t].*)*)", head)
    if not m:
        return None
    try:
        t = email.utils.parsedate_tz(" ".join(m.group(1).decode("utf-8", "replace").split()))
    except Exception:
        return None
    if t is None or t[3] > 23 or t[4] > 59 or t[5] > 60:
        return None
    return (t[0], t[1], t[2])


MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}


def imap_day(s):
    d, m, y = s.split("-")
    return (int(y), MONTHS[m.lower()], int(d))


def matches(m, key, arg):
    if key in ("SENTSINCE", "SENTBEFORE", "SENTON"):
        day = m["day"]
        if day is None:
            return False
        want = imap_day(arg)
        return {"SENTSINCE": day >= want, "SENTBEFORE": day < want, "SENTON": day == want}[key]
    return norm(arg) in m[key]


def main():
    host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    spec = json.load(sys.stdin)
    M = imaplib.IMAP4(host, port)
    M.login(user, pw)
    out = {}
    for folder in spec["folders"]:
        typ, d = M.select(folder, readonly=True)
        assert typ == "OK", (folder, d)
        msgs = {}
        typ, d = M.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
        for x in d:
            if not isinstance(x, tuple):
                continue
            uid = int(re.search(rb"UID (\d+)", x[0]).group(1))
            msg = email.message_from_bytes(x[1], policy=email.policy.compat32)
            parts = []
            visible(msg, parts)
            # Text beyond the indexed cap (1 MiB of decoded text) is not
            # searched.
            body = norm("\n".join(parts).encode("utf-8", "replace")[:1 << 20].decode("utf-8", "ignore"))
            def dec(name):
                return norm(" ".join(decoded(v) for v in msg.get_all(name, [])))
            header = " ".join(name + ": " + dec(name) for name in set(msg.keys()))
            msgs[uid] = {"BODY": body, "TEXT": norm(header) + " " + body, "SUBJECT": dec("subject"),
                         "FROM": dec("from"), "day": sent_day(x[1])}
        res = {}
        for key, arg in spec["queries"]:
            expected = sorted(u for u, m in msgs.items() if matches(m, key, arg))
            if key.startswith("SENT"):
                typ, d = M.uid("SEARCH", key, arg)
            else:
                M.literal = arg.encode()
                typ, d = M.uid("SEARCH", "CHARSET", "UTF-8", key)
            assert typ == "OK", (key, arg, d)
            got = sorted(int(u) for u in d[0].split())
            res[key + " " + arg] = {"expected": expected, "got": got}
        out[folder] = {"messages": len(msgs), "results": res}
    M.logout()
    print(json.dumps(out))


main()
