package mailparse

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

func TestDate(t *testing.T) {
	tests := []struct {
		value string
		want  string // RFC 3339, "" for the zero time
	}{
		{"Tue, 14 Feb 2011 13:16:04 +0100", "2011-02-14T13:16:04+01:00"},
		{"14 Feb 2011 13:16 -0500 (EST)", "2011-02-14T13:16:00-05:00"},
		{"Mon,  1 Jan 01 00:00:00 GMT", "2001-01-01T00:00:00Z"},
		{"Fri, 19 Nov 99 15:21:08 PST", "1999-11-19T15:21:08-08:00"},
		{"Thu Sep  9 09:52:11 2004", "2004-09-09T09:52:11Z"},
		{"2019-04-01 07:55:00 +0900", "2019-04-01T07:55:00+09:00"},
		{"Wed, 1 Feb 2006 9:29:52 GMT+0100", "2006-02-01T09:29:52+01:00"},
		{"Sat, 12 Jun 2004 12:00:00 +0530 (IST)", "2004-06-12T12:00:00+05:30"},
		{"1 Jan 1850 00:00:00 +0000", "1900-01-01T00:00:00Z"},
		{"Mon, 30 Jun 3609 15:33:50 +0600", "2200-12-31T23:59:59Z"},
		{"30 Feb 2011 10:00:00 +0000", ""},
		{"Pn, 29 paX 2007 21:13:00 +0100", ""},
		{"yesterday", ""},
	}
	for _, tt := range tests {
		s := Parse([]byte("Date: "+tt.value+"\r\n\r\n"), Options{})
		// None is written as ENVELOPE writes a parsed date (the first
		// has the wrong weekday): each keeps the field as it is.
		if s.Envelope.RawDate != tt.value {
			t.Errorf("Date %q: RawDate %q", tt.value, s.Envelope.RawDate)
		}
		got := ""
		if !s.Envelope.Date.IsZero() {
			got = s.Envelope.Date.Format(time.RFC3339)
		}
		if got != tt.want {
			t.Errorf("Date %q = %q, want %q", tt.value, got, tt.want)
		}
		if (tt.want == "" || tt.want[:4] == "1900" || tt.want[:4] == "2200") != (len(s.Problems) > 0) {
			t.Errorf("Date %q: problems %q", tt.value, s.Problems)
		}
	}
}

func TestRawDate(t *testing.T) {
	// The parsed time written again: nothing more is stored.
	if s := Parse([]byte("Date: Mon, 14 Feb 2011 13:16:04 +0100\r\n\r\n"), Options{}); s.Envelope.RawDate != "" {
		t.Errorf("RawDate %q, want none", s.Envelope.RawDate)
	}
	// A control character: the parsed time, as before.
	if s := Parse([]byte("Date: 5 Feb 2024 11:30:00 -0500\x00\r\n\r\n"), Options{}); s.Envelope.RawDate != "" || s.Envelope.Date.IsZero() {
		t.Errorf("RawDate %q, Date %v", s.Envelope.RawDate, s.Envelope.Date)
	}
	s := Parse([]byte("Date:  Mon, 5 Feb 2024\r\n\t11:30:00 -0500 (EST) \r\n\r\n"), Options{})
	if want := "Mon, 5 Feb 2024\t11:30:00 -0500 (EST)"; s.Envelope.RawDate != want {
		t.Errorf("RawDate %q, want %q", s.Envelope.RawDate, want)
	}
}

func ad(name, mailbox, host string) Address { return Address{Name: name, Mailbox: mailbox, Host: host} }

func groupStart(name string) Address { return Address{Name: name, Group: GroupStart} }

var groupEnd = Address{Group: GroupEnd}

// addressTests are RFC 5322's examples (Appendix A.1.2, A.1.3, A.5, A.6.1,
// A.6.3) and broken mail as it is found.
var addressTests = []struct {
	value string
	want  []Address
}{
	{`"Joe Q. Public" <john.q.public@example.com>`, []Address{ad("Joe Q. Public", "john.q.public", "example.com")}},
	{`Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>`,
		[]Address{ad("Mary Smith", "mary", "x.test"), ad("", "jdoe", "example.org"), ad("Who?", "one", "y.test")}},
	{`<boss@nil.test>, "Giant; \"Big\" Box" <sysservices@example.net>`,
		[]Address{ad("", "boss", "nil.test"), ad(`Giant; "Big" Box`, "sysservices", "example.net")}},
	// A.1.3: groups.
	{`A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;`,
		[]Address{groupStart("A Group"), ad("Ed Jones", "c", "a.test"), ad("", "joe", "where.test"), ad("John", "jdoe", "one.test"), groupEnd}},
	{`Undisclosed recipients:;`, []Address{groupStart("Undisclosed recipients"), groupEnd}},
	// A.5: comments are dropped; the empty group gets no member from one.
	{`Pete(A nice \) chap) <pete(his account)@silly.test(his host)>`, []Address{ad("Pete", "pete", "silly.test")}},
	{"A Group(Some people)\r\n     :Chris Jones <c@(Chris's host.)public.example>,\r\n         joe@example.org,\r\n  John <jdoe@one.test> (my dear friend); (the end of the group)",
		[]Address{groupStart("A Group"), ad("Chris Jones", "c", "public.example"), ad("", "joe", "example.org"), ad("John", "jdoe", "one.test"), groupEnd}},
	{`(Empty list)(start)Hidden recips :(nobody(that I know))  ;`, []Address{groupStart("Hidden recips"), groupEnd}},
	// A.6.1 and A.6.3: obsolete forms.
	{`Joe Q. Public <john.q.public@example.com>`, []Address{ad("Joe Q. Public", "john.q.public", "example.com")}},
	{`Mary Smith <@node.test:mary@example.net>, , jdoe@test  . example`,
		[]Address{{Name: "Mary Smith", Mailbox: "mary", Host: "example.net", Route: "@node.test"}, ad("", "jdoe", "test.example")}},
	{`John Doe <jdoe@machine(comment).  example>`, []Address{ad("John Doe", "jdoe", "machine.example")}},
	{"Mary Smith\r\n    \r\n <mary@example.net>", []Address{ad("Mary Smith", "mary", "example.net")}},
	{`<@a.test,@b.test:joe@c.test>`, []Address{{Mailbox: "joe", Host: "c.test", Route: "@a.test,@b.test"}}},
	// A comment after a bare addr-spec names it (RFC 8621 4.1.2.3).
	{`jdoe@example.org (John Doe)`, []Address{ad("John Doe", "jdoe", "example.org")}},
	{`"Doe, Jane" <jane@example.com>`, []Address{ad("Doe, Jane", "jane", "example.com")}},
	{`=?UTF-8?Q?J=C3=B6rg?= <joerg@example.org>, bob@example.net`, []Address{ad("Jörg", "joerg", "example.org"), ad("", "bob", "example.net")}},
	{`"=?UTF-8?Q?J=C3=B6rg?=" <joerg@example.org>`, []Address{ad("Jörg", "joerg", "example.org")}},
	{`Jörg Müller <joerg@example.org>`, []Address{ad("Jörg Müller", "joerg", "example.org")}},
	{`"john doe"@example.com, "jane"@example.com`, []Address{ad("", `"john doe"`, "example.com"), ad("", "jane", "example.com")}},
	// Broken lists are read leniently.
	{`John Doe john@example.com`, []Address{ad("John Doe", "john", "example.com")}},
	{`"Cherry  Paul" <Paul.Cherry@ENRON.com>, Watson`, []Address{ad("Cherry  Paul", "Paul.Cherry", "ENRON.com"), ad("", "Watson", "")}},
	{`tim@example.com concierge@example.com`, []Address{ad("", "tim", "example.com"), ad("", "concierge", "example.com")}},
	{`root, Jane Doe`, []Address{ad("", "root", "")}},
	{`<broken@example.com`, []Address{ad("", "broken", "example.com")}},
	{`undisclosed-recipients:`, []Address{groupStart("undisclosed-recipients"), groupEnd}},
	{`<>`, nil},
}

func TestAddresses(t *testing.T) {
	for _, tt := range addressTests {
		s := Parse([]byte("To: "+tt.value+"\r\n\r\n"), Options{})
		if !slices.Equal(s.Envelope.To, tt.want) {
			t.Errorf("To: %s\n got  %q\n want %q", tt.value, s.Envelope.To, tt.want)
		}
		if got, _ := ParseAddresses([]byte(" " + tt.value)); !slices.Equal(got, tt.want) {
			t.Errorf("ParseAddresses(%s)\n got  %q\n want %q", tt.value, got, tt.want)
		}
	}
	// The last From counts, as in JMAP.
	s := Parse([]byte("From: a@example.com\r\nFrom: b@example.com\r\n\r\n"), Options{})
	if want := []Address{ad("", "b", "example.com")}; !slices.Equal(s.Envelope.From, want) {
		t.Errorf("two From fields: %q, want %q", s.Envelope.From, want)
	}
}

// FuzzAddresses: any field value parses, without panic, into addresses and
// balanced group markers, and the stored form reads back the same.
func FuzzAddresses(f *testing.F) {
	for _, tt := range addressTests {
		f.Add(tt.value)
	}
	// A comment that ends the field in a backslash once read past its end.
	f.Add(`a@(\`)
	f.Add(`x <a@(\`)
	f.Fuzz(func(t *testing.T, v string) {
		list, _ := ParseAddresses([]byte(v))
		open := false
		for _, a := range list {
			switch a.Group {
			case GroupStart:
				if open {
					t.Fatalf("%q: nested group in %q", v, list)
				}
				open = true
			case GroupEnd:
				if !open {
					t.Fatalf("%q: group end without start in %q", v, list)
				}
				open = false
			default:
				if a.Mailbox == "" && a.Host == "" {
					t.Fatalf("%q: empty address in %q", v, list)
				}
			}
		}
		if open {
			t.Fatalf("%q: unterminated group in %q", v, list)
		}
		b, err := json.Marshal(list)
		if err != nil {
			t.Fatal(err)
		}
		var back []Address
		if err := json.Unmarshal(b, &back); err != nil || !slices.Equal(back, list) {
			t.Fatalf("%q: stored %s reads back as %q (%v)", v, b, back, err)
		}
	})
}

func TestMessageIDs(t *testing.T) {
	raw := "Message-ID:\r\n <a@example.com> (comment)\r\nIn-Reply-To: bare@example.com\r\n" +
		"References: <r1@example.com>\r\n\t<r2@example.com>,<r3@example.com>\r\n\r\n"
	s := Parse([]byte(raw), Options{})
	if s.Envelope.MessageID != "a@example.com" {
		t.Errorf("MessageID = %q", s.Envelope.MessageID)
	}
	if !slices.Equal(s.Envelope.InReplyTo, []string{"bare@example.com"}) {
		t.Errorf("InReplyTo = %q", s.Envelope.InReplyTo)
	}
	if want := []string{"r1@example.com", "r2@example.com", "r3@example.com"}; !slices.Equal(s.References, want) {
		t.Errorf("References = %q, want %q", s.References, want)
	}
}
