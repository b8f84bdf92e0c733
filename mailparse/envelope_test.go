package mailparse

import (
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

func TestAddresses(t *testing.T) {
	tests := []struct {
		value string
		want  []Address
	}{
		{`"Doe, Jane" <jane@example.com>`, []Address{{"Doe, Jane", "jane", "example.com"}}},
		{`=?UTF-8?Q?J=C3=B6rg?= <joerg@example.org>, bob@example.net`, []Address{{"Jörg", "joerg", "example.org"}, {"", "bob", "example.net"}}},
		{`Team: a@example.com, B <b@example.com>;`, []Address{{"", "a", "example.com"}, {"B", "b", "example.com"}}},
		{`undisclosed-recipients:;`, nil},
		// Broken lists are read leniently.
		{`John Doe john@example.com`, []Address{{"John Doe", "john", "example.com"}}},
		{`"Cherry  Paul" <Paul.Cherry@ENRON.com>, Watson`, []Address{{"Cherry  Paul", "Paul.Cherry", "ENRON.com"}, {"", "Watson", ""}}},
		{`tim@example.com concierge@example.com`, []Address{{"", "tim", "example.com"}, {"", "concierge", "example.com"}}},
		{`root, Jane Doe`, []Address{{"", "root", ""}}},
		{`<broken@example.com`, []Address{{"", "broken", "example.com"}}},
	}
	for _, tt := range tests {
		s := Parse([]byte("To: "+tt.value+"\r\n\r\n"), Options{})
		if !slices.Equal(s.Envelope.To, tt.want) {
			t.Errorf("To: %s = %q, want %q", tt.value, s.Envelope.To, tt.want)
		}
	}
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
