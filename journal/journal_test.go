package journal

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// report builds an envelope journal report the way Exchange 2010+ and
// Microsoft 365 do ([MS-XJRNL] 2.2): report headers, a text/plain envelope
// part and the original attached as message/rfc822.
func report(envelope string, original []byte, envelopeCTE string) []byte {
	var b bytes.Buffer
	b.WriteString("From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.example>\r\n" +
		"To: journal@archive.example\r\n" +
		"Subject: Quarterly numbers\r\n" +
		"X-MS-Journal-Report:\r\n" +
		"Content-Type: multipart/mixed;\r\n\tboundary=\"_000_journal_report_\"\r\n" +
		"MIME-Version: 1.0\r\n\r\n" +
		"--_000_journal_report_\r\n" +
		"Content-Type: text/plain; charset=\"us-ascii\"\r\n")
	env := envelope
	if envelopeCTE != "" {
		b.WriteString("Content-Transfer-Encoding: " + envelopeCTE + "\r\n")
		if envelopeCTE == "base64" {
			enc := base64.StdEncoding.EncodeToString([]byte(envelope))
			var w strings.Builder
			for len(enc) > 76 {
				w.WriteString(enc[:76] + "\r\n")
				enc = enc[76:]
			}
			env = w.String() + enc + "\r\n"
		}
	}
	b.WriteString("\r\n" + env + "\r\n--_000_journal_report_\r\n" +
		"Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n")
	b.Write(original)
	b.WriteString("\r\n--_000_journal_report_--\r\n")
	return b.Bytes()
}

const sampleEnvelope = "Sender: alice@contoso.example\r\n" +
	"Subject: Quarterly numbers\r\n" +
	"Message-Id: <q3@contoso.example>\r\n" +
	"To: bob@contoso.example\r\n" +
	"Cc: carol@fabrikam.example\r\n" +
	"Bcc: dave@contoso.example\r\n" +
	"To: erika@contoso.example, Expanded: sales@contoso.example\r\n" +
	"To: frank@contoso.example, Expanded: sales@contoso.example\r\n" +
	"Bcc: grete@contoso.example, Expanded: board@contoso.example\r\n" +
	"Cc: hans.private@contoso.example, Forwarded: hans@contoso.example\r\n" +
	"Recipient: ines@fabrikam.example\r\n"

var sampleOriginal = []byte("From: Alice <alice@contoso.example>\r\nTo: bob@contoso.example, sales@contoso.example\r\n" +
	"Cc: carol@fabrikam.example\r\nSubject: Quarterly numbers\r\nMessage-Id: <q3@contoso.example>\r\n\r\n" +
	"Numbers attached.\r\n--_000_journal_report_x is not a delimiter\r\n")

func TestExchangeReport(t *testing.T) {
	for _, cte := range []string{"", "7bit", "base64", "quoted-printable"} {
		raw := report(sampleEnvelope, sampleOriginal, cte)
		c := Parse(raw)
		if c.Format != Exchange || c.Problem != "" {
			t.Fatalf("cte %q: format %v problem %q", cte, c.Format, c.Problem)
		}
		if !bytes.Equal(c.Original, sampleOriginal) {
			t.Fatalf("cte %q: original not byte-exact:\n%q\nwant\n%q", cte, c.Original, sampleOriginal)
		}
		if c.Sender != "alice@contoso.example" || c.Subject != "Quarterly numbers" || c.MessageID != "<q3@contoso.example>" {
			t.Errorf("cte %q: sender %q subject %q mid %q", cte, c.Sender, c.Subject, c.MessageID)
		}
		want := []Recipient{
			{Address: "bob@contoso.example", Field: "To"},
			{Address: "carol@fabrikam.example", Field: "Cc"},
			{Address: "dave@contoso.example", Field: "Bcc"},
			{Address: "erika@contoso.example", Field: "To", Expanded: "sales@contoso.example"},
			{Address: "frank@contoso.example", Field: "To", Expanded: "sales@contoso.example"},
			{Address: "grete@contoso.example", Field: "Bcc", Expanded: "board@contoso.example"},
			{Address: "hans.private@contoso.example", Field: "Cc", Forwarded: "hans@contoso.example"},
			{Address: "ines@fabrikam.example", Field: "Recipient"},
		}
		if !slices.Equal(c.Recipients, want) {
			t.Errorf("cte %q: recipients\n%+v\nwant\n%+v", cte, c.Recipients, want)
		}
		addrs := c.Addresses()
		wantAddrs := []string{"bob@contoso.example", "carol@fabrikam.example", "dave@contoso.example",
			"erika@contoso.example", "sales@contoso.example", "frank@contoso.example", "grete@contoso.example",
			"board@contoso.example", "hans.private@contoso.example", "hans@contoso.example", "ines@fabrikam.example"}
		if !slices.Equal(addrs, wantAddrs) {
			t.Errorf("cte %q: addresses %v\nwant %v", cte, addrs, wantAddrs)
		}
	}
}

func TestExchange2003Report(t *testing.T) {
	// Exchange 2003 marked reports with Content-Identifier and listed
	// recipients on one line.
	raw := report("Sender: alice@contoso.example\r\nMessage-ID: <x@y>\r\nRecipients: bob@contoso.example, <carol@contoso.example>\r\n", sampleOriginal, "")
	raw = bytes.Replace(raw, []byte("X-MS-Journal-Report:\r\n"), []byte("Content-Identifier: ExJournalReport\r\n"), 1)
	c := Parse(raw)
	if c.Format != Exchange || !bytes.Equal(c.Original, sampleOriginal) {
		t.Fatalf("format %v problem %q", c.Format, c.Problem)
	}
	if got := c.Addresses(); !slices.Equal(got, []string{"bob@contoso.example", "carol@contoso.example"}) {
		t.Errorf("addresses %v", got)
	}
}

func TestBrokenReportIsPlain(t *testing.T) {
	cases := map[string][]byte{
		"no attachment":   bytes.Replace(report(sampleEnvelope, sampleOriginal, ""), []byte("message/rfc822"), []byte("text/plain"), 1),
		"not multipart":   []byte("X-MS-Journal-Report:\r\nContent-Type: text/plain\r\n\r\nSender: a@b\r\n"),
		"no boundary":     []byte("X-MS-Journal-Report:\r\nContent-Type: multipart/mixed\r\n\r\nSender: a@b\r\n"),
		"header only":     []byte("X-MS-Journal-Report: "),
		"truncated parts": report(sampleEnvelope, sampleOriginal, "")[:400],
	}
	// An attachment part with no content at all.
	cases["empty original"] = bytes.Replace(report(sampleEnvelope, []byte("x"), ""), []byte("\r\n\r\nx\r\n--_000"), []byte("\r\n\r\n--_000"), 1)
	for name, raw := range cases {
		c := Parse(raw)
		if c.Format != Plain || c.Problem == "" || !bytes.Equal(c.Original, raw) {
			t.Errorf("%s: format %v problem %q, original is input: %v", name, c.Format, c.Problem, bytes.Equal(c.Original, raw))
		}
	}
}

func TestTruncatedReportIsPlain(t *testing.T) {
	// A report cut anywhere in or after its attachment must not yield the
	// attached message as if it were whole: the cut copy would be filed
	// as the message for every recipient.
	full := report(sampleEnvelope, sampleOriginal, "")
	b64 := bytes.Replace(report(sampleEnvelope, nil, ""), []byte("Content-Type: message/rfc822\r\n"),
		[]byte("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n"), 1)
	b64 = bytes.Replace(b64, []byte("\r\n\r\n\r\n--_000_journal_report_--"),
		[]byte("\r\n\r\n"+base64.StdEncoding.EncodeToString(sampleOriginal)[:50]+"\r\n--_000_journal_report_--"), 1)
	cases := map[string][]byte{
		"closing delimiter missing": full[:bytes.LastIndex(full, []byte("\r\n--_000_journal_report_--"))],
		"cut inside the original":   full[:bytes.Index(full, []byte("Numbers attached"))+7],
		"cut inside its header":     full[:bytes.Index(full, []byte("Cc: carol@fabrikam.example\r\nSubject"))+10],
		"base64 original cut":       b64,
	}
	for name, raw := range cases {
		c := Parse(raw)
		if c.Format != Plain || c.Problem == "" || !bytes.Equal(c.Original, raw) {
			t.Errorf("%s: format %v problem %q, original is input: %v", name, c.Format, c.Problem, bytes.Equal(c.Original, raw))
		}
	}
	// An original that is itself malformed (its multipart never closes)
	// inside a complete report is what the recipients received: it is
	// unwrapped as it is.
	sloppy := []byte("From: alice@contoso.example\r\nTo: bob@contoso.example\r\n" +
		"Content-Type: multipart/mixed; boundary=inner\r\n\r\n--inner\r\n\r\nsee attached\r\n")
	if c := Parse(report(sampleEnvelope, sloppy, "")); c.Format != Exchange || !bytes.Equal(c.Original, sloppy) {
		t.Fatalf("complete report of a sloppy original: format %v problem %q", c.Format, c.Problem)
	}
}

func TestPlainDeliveryHeaders(t *testing.T) {
	raw := []byte("Delivered-To: journal@archive.example\r\n" +
		"X-Gm-Original-To: bob@acme.example\r\n" +
		"X-Original-To: carol@acme.example,\r\n dave@acme.example\r\n" +
		"X-Envelope-To: <erika@acme.example>\r\n" +
		"From: alice@acme.example\r\nSubject: hi\r\n\r\nDelivered-To: not@header.example\r\n")
	c := Parse(raw)
	if c.Format != Plain || c.Problem != "" || !bytes.Equal(c.Original, raw) {
		t.Fatalf("format %v problem %q", c.Format, c.Problem)
	}
	want := []string{"journal@archive.example", "bob@acme.example", "carol@acme.example", "dave@acme.example", "erika@acme.example"}
	if got := c.Addresses(); !slices.Equal(got, want) {
		t.Errorf("addresses %v, want %v", got, want)
	}
}

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Address
	}{
		{"journal@archive.example", Address{Base: "journal@archive.example"}},
		{"journal+rcpt=bob=acme.example@archive.example", Address{Base: "journal@archive.example", Recipient: "bob@acme.example"}},
		{"journal+from=alice=acme.example@archive.example", Address{Base: "journal@archive.example", Sender: "alice@acme.example"}},
		{"journal+rcpt=a=b=acme.example@archive.example", Address{Base: "journal@archive.example", Recipient: "a=b@acme.example"}},
		{"journal+tag@archive.example", Address{Base: "journal@archive.example"}},
		{"journal+rcpt=nodomain@archive.example", Address{Base: "journal@archive.example"}},
		{"journal+rcpt=bob=@archive.example", Address{Base: "journal@archive.example"}},
		{"noat", Address{Base: "noat"}},
	} {
		if got := ParseAddress(tc.in); got != tc.want {
			t.Errorf("ParseAddress(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// corpusDir is the shared real-world corpus beside the repository.
func corpusDir(t testing.TB) string {
	dir := filepath.Join("..", "..", "shared", "corpus", "messages")
	if _, err := os.Stat(dir); err != nil {
		t.Skip("corpus not present:", err)
	}
	return dir
}

// TestCorpusWrapped wraps every real message in a report and gets it back
// byte-exact; the bare messages must stay plain copies of themselves.
func TestCorpusWrapped(t *testing.T) {
	dir := corpusDir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) == 0 {
		t.Skip("corpus empty")
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if c := Parse(raw); c.Format != Plain || !bytes.Equal(c.Original, raw) {
			t.Errorf("%s: bare message taken as %v (%s)", f, c.Format, c.Problem)
		}
		if bytes.Contains(raw, []byte("--_000_journal_report_")) {
			continue
		}
		c := Parse(report(sampleEnvelope, raw, ""))
		if c.Format != Exchange || !bytes.Equal(c.Original, raw) {
			t.Errorf("%s: wrapped message not recovered byte-exact (format %v, %s)", f, c.Format, c.Problem)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(report(sampleEnvelope, sampleOriginal, ""))
	f.Add(report(sampleEnvelope, sampleOriginal, "base64"))
	f.Add(report(sampleEnvelope, sampleOriginal, "quoted-printable"))
	f.Add([]byte("X-Original-To: a@b\r\nDelivered-To: c@d, e@f\r\n\r\nbody"))
	f.Add([]byte("Content-Identifier: exjournalreport\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nTo: x@y, Expanded: l@y\n--b\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nSGk=\n--b--\n"))
	for _, n := range []string{"0001.eml", "0002.eml", "0003.eml"} {
		if raw, err := os.ReadFile(filepath.Join("..", "..", "shared", "corpus", "messages", n)); err == nil {
			f.Add(raw)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c := Parse(raw)
		switch c.Format {
		case Plain:
			if !bytes.Equal(c.Original, raw) {
				t.Fatal("plain copy is not the input")
			}
		case Exchange:
			if len(c.Original) == 0 || c.Problem != "" {
				t.Fatalf("report with empty original or problem %q", c.Problem)
			}
		}
		seen := map[string]bool{}
		for _, a := range c.Addresses() {
			k := strings.ToLower(a)
			if seen[k] || !strings.Contains(a, "@") {
				t.Fatalf("address %q repeated or invalid", a)
			}
			seen[k] = true
		}
	})
}

func FuzzParseAddress(f *testing.F) {
	f.Add("bob", "acme.example")
	f.Add("a=b", "x.example")
	f.Fuzz(func(t *testing.T, local, domain string) {
		if local == "" || domain == "" || strings.ContainsAny(local+domain, "@") || strings.Contains(domain, "=") {
			return
		}
		a := ParseAddress("journal+rcpt=" + local + "=" + domain + "@archive.example")
		if a.Base != "journal@archive.example" || a.Recipient != local+"@"+domain {
			t.Fatalf("round trip of %s@%s: %+v", local, domain, a)
		}
	})
}
