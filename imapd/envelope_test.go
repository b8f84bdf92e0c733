package imapd

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/mailvault/mailvault/mailparse"
)

// TestEnvelopeGroups: ENVELOPE writes groups in RFC 3501 group syntax (a
// NIL-host start marker naming the group, the members, an all-NIL end
// marker), drops comments, makes no address of a comment in an empty group
// and puts a source route in the route field (RFC 5322 A.1.3, A.5, A.6.1).
func TestEnvelopeGroups(t *testing.T) {
	f := newFixture(t, 0, false)
	msg := "From: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>\r\n" +
		"To: A Group(Some people)\r\n     :Chris Jones <c@(Chris's host.)public.example>,\r\n" +
		"         joe@example.org,\r\n  John <jdoe@one.test> (my dear friend); (the end of the group)\r\n" +
		"Cc: (Empty list)(start)Hidden recips :(nobody(that I know))  ;\r\n" +
		"Bcc: Mary Smith <@node.test,@relay.test:mary@example.net>, , jdoe@test  . example\r\n" +
		"Subject: groups\r\nDate: Thu, 13 Feb 1969 23:32:54 -0330\r\nMessage-ID: <testabcd.1234@silly.test>\r\n\r\nTesting.\r\n"
	f.wireFolder(t, "Groups", msg)
	c := dialRaw(t, f.addr)
	c.login("alice@acme.example")
	c.OK("EXAMINE Groups")
	u := c.OK("FETCH 1 ENVELOPE")
	if len(u) != 1 {
		t.Fatalf("FETCH: %q", u)
	}
	for _, want := range []string{
		`(("Pete" NIL "pete" "silly.test")) (("Pete" NIL "pete" "silly.test")) (("Pete" NIL "pete" "silly.test"))`,
		`((NIL NIL "A Group" NIL)("Chris Jones" NIL "c" "public.example")(NIL NIL "joe" "example.org")("John" NIL "jdoe" "one.test")(NIL NIL NIL NIL))`,
		`((NIL NIL "Hidden recips" NIL)(NIL NIL NIL NIL))`,
		`(("Mary Smith" "@node.test,@relay.test" "mary" "example.net")(NIL NIL "jdoe" "test.example"))`,
	} {
		if !strings.Contains(u[0], want) {
			t.Errorf("ENVELOPE lacks %s:\n%s", want, u[0])
		}
	}
}

// TestEnvelopeDate: ENVELOPE's date is the Date field's value as written,
// unfolded (RFC 9051 7.5.2), in the message and in the envelope of an
// attached message; NIL without a Date field. A local part is written
// without its quoting (RFC 3501 addr-mailbox).
func TestEnvelopeDate(t *testing.T) {
	f := newFixture(t, 0, false)
	msg := func(subject, date string) string {
		return date + "From: \"odd \\\"local\\\"\"@acme.example\r\nSubject: " + subject + "\r\n\r\nbody\r\n"
	}
	f.wireFolder(t, "Dates",
		msg("zone", "Date: 14 Feb 2024 06:00:00 -0000 (UTC)\r\n"),
		msg("folded", "Date:   Mon, 5 Feb 2024\r\n 11:30:00 -0500  \r\n"),
		msg("plain", "Date: Tue, 06 Feb 2024 08:15:00 +0100\r\n"),
		msg("bad", "Date: the day before yesterday\r\n"),
		msg("none", ""),
		"Date: Fri, 09 Feb 2024 16:00:00 +0000\r\nFrom: bob@acme.example\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n"+
			"Content-Type: message/rfc822\r\n\r\nDate: 7 Feb 2024 09:00 GMT\r\nFrom: news@partner.example\r\nSubject: inner\r\n\r\ninner\r\n")
	c := dialRaw(t, f.addr)
	c.login("alice@acme.example")
	c.OK("EXAMINE Dates")
	u := c.OK("FETCH 1:6 (ENVELOPE BODYSTRUCTURE)")
	want := map[string]string{
		"zone":   `(ENVELOPE ("14 Feb 2024 06:00:00 -0000 (UTC)" "zone" ((NIL NIL "odd \"local\"" "acme.example"))`,
		"folded": `(ENVELOPE ("Mon, 5 Feb 2024 11:30:00 -0500" "folded" `,
		"plain":  `(ENVELOPE ("Tue, 06 Feb 2024 08:15:00 +0100" "plain" `,
		"bad":    `(ENVELOPE ("the day before yesterday" "bad" `,
		"none":   `(ENVELOPE (NIL "none" `,
		// The attached message's envelope, in BODYSTRUCTURE.
		"fwd": `("7 Feb 2024 09:00 GMT" "inner" `,
	}
	if len(u) != len(want) {
		t.Fatalf("FETCH: %q", u)
	}
	for _, l := range u {
		found := false
		for subject, w := range want {
			if strings.Contains(l, `"`+subject+`" ((`) {
				found = true
				if !strings.Contains(l, w) {
					t.Errorf("got  %s\nwant %s...", l, w)
				}
			}
		}
		if !found {
			t.Errorf("unexpected %s", l)
		}
	}
}

// lastField returns the raw value of the last header field called name.
func lastField(raw []byte, name string) (val []byte, found bool) {
	in := false // in the field's continuation lines
	for len(raw) > 0 {
		end := bytes.IndexByte(raw, '\n')
		if end < 0 {
			end = len(raw) - 1
		}
		line := raw[:end+1]
		raw = raw[end+1:]
		switch colon := bytes.IndexByte(line, ':'); {
		case len(bytes.TrimRight(line, "\r\n")) == 0:
			return val, found
		case line[0] == ' ' || line[0] == '\t':
			if in {
				val = append(val, line...)
			}
		case colon > 0 && strings.EqualFold(string(bytes.TrimRight(line[:colon], " \t")), name):
			val, found, in = append([]byte(nil), line[colon+1:]...), true, true
		default:
			in = false
		}
	}
	return val, found
}

// wantEnvelopeAddrs is an address field as ENVELOPE must show it: what
// mailparse's one parser, which JMAP's header forms use as well, makes of
// the field.
func wantEnvelopeAddrs(raw []byte, name string) []imap.Address {
	v, ok := lastField(raw, name)
	if !ok {
		return nil
	}
	list, _ := mailparse.ParseAddresses(v)
	var out []imap.Address
	for _, a := range list {
		switch a.Group {
		case mailparse.GroupStart:
			out = append(out, imap.Address{Mailbox: a.Name})
		case mailparse.GroupEnd:
			out = append(out, imap.Address{})
		default:
			ia := imap.Address{Name: a.Name, ADL: a.Route, Mailbox: a.LocalPart(), Host: a.Host}
			if ia.Mailbox == "" {
				ia.Mailbox = "MISSING_MAILBOX"
			}
			if ia.Host == "" {
				ia.Host = "MISSING_DOMAIN"
			}
			out = append(out, ia)
		}
	}
	return out
}

// checkEnvelopeAddrs compares every address list of env with the fields
// of raw.
func checkEnvelopeAddrs(raw []byte, env *imap.Envelope) error {
	from := wantEnvelopeAddrs(raw, "From")
	for _, l := range []struct {
		name string
		got  []imap.Address
	}{{"From", env.From}, {"Sender", env.Sender}, {"Reply-To", env.ReplyTo}, {"To", env.To}, {"Cc", env.Cc}, {"Bcc", env.Bcc}} {
		want := wantEnvelopeAddrs(raw, l.name)
		if len(want) == 0 && (l.name == "Sender" || l.name == "Reply-To") {
			want = from // RFC 3501 7.4.2
		}
		if !slices.Equal(l.got, want) {
			return fmt.Errorf("%s: ENVELOPE %q, the field says %q", l.name, l.got, want)
		}
	}
	return nil
}
