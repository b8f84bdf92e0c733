"""Independent journal sender for the smtpd tests, on Python's smtplib.

Reads a JSON job list, builds Exchange envelope journal reports the way
Exchange 2010+ / Microsoft 365 do ([MS-XJRNL] section 2.2) around original
messages, sends every job over one SMTP session and prints one JSON result
per job: {"code": 250, "reply": "..."} or the refusal.

Job kinds:
  raw       send the bytes of "file" as they are
  exchange  wrap "original" in a journal report with the "envelope" lines,
            the envelope part in "envelope_cte" (7bit, base64,
            quoted-printable); the report is also written to "out"
"""

import base64
import json
import quopri
import smtplib
import sys
import uuid

CRLF = b"\r\n"


def report(envelope, original, cte, subject):
    boundary = "_000_" + uuid.uuid4().hex + "_"
    text = "".join(line + "\r\n" for line in envelope).encode("utf-8")
    if cte == "base64":
        body = base64.encodebytes(text).replace(b"\n", CRLF)
    elif cte == "quoted-printable":
        body = quopri.encodestring(text).replace(b"\r\n", b"\n").replace(b"\n", CRLF)
    else:
        cte, body = "7bit", text
    head = (
        "From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@acme.example>\r\n"
        "To: journal@acme.example\r\n"
        "Subject: " + subject + "\r\n"
        "Message-ID: <" + uuid.uuid4().hex + "@journal.acme.example>\r\n"
        "Content-Type: multipart/mixed;\r\n\tboundary=\"" + boundary + "\"\r\n"
        "MIME-Version: 1.0\r\n"
        "X-MS-Journal-Report: \r\n"
        "X-MS-Exchange-Organization-SCL: -1\r\n"
        "\r\n"
    ).encode()
    parts = (
        b"--" + boundary.encode() + CRLF
        + b'Content-Type: text/plain; charset="us-ascii"' + CRLF
        + b"Content-Transfer-Encoding: " + cte.encode() + CRLF + CRLF
        + body + CRLF
        + b"--" + boundary.encode() + CRLF
        + b"Content-Type: message/rfc822" + CRLF
        + b"Content-Disposition: attachment" + CRLF + CRLF
        + original + CRLF
        + b"--" + boundary.encode() + b"--" + CRLF
    )
    return head + parts


def main():
    spec = json.load(open(sys.argv[1]))
    results = []
    with smtplib.SMTP(spec["host"], spec["port"], timeout=120) as s:
        s.ehlo("py.test")
        for job in spec["jobs"]:
            if job["kind"] == "exchange":
                original = open(job["original"], "rb").read()
                msg = report(job["envelope"], original, job.get("envelope_cte", "7bit"), job.get("subject", "journal report"))
                open(job["out"], "wb").write(msg)
            else:
                msg = open(job["file"], "rb").read()
            try:
                refused = s.sendmail(job["from"], job["to"], msg)
                if refused:
                    code, reply = next(iter(refused.values()))
                    results.append({"code": code, "reply": reply.decode(errors="replace")})
                else:
                    results.append({"code": 250, "reply": ""})
            except smtplib.SMTPRecipientsRefused as e:
                code, reply = next(iter(e.recipients.values()))
                results.append({"code": code, "reply": reply.decode(errors="replace")})
                s.rset()
            except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as e:
                results.append({"code": e.smtp_code, "reply": e.smtp_error.decode(errors="replace")})
                s.rset()
    json.dump(results, sys.stdout)


main()
