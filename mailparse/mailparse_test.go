package mailparse

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// crlf turns the LF line ends of a test message into CRLF.
func crlf(s string) string {
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// partAt returns the part with the IMAP part number path below root, or nil.
func partAt(root *Part, path ...int) *Part {
	p := root
	for _, n := range path {
		if p.Message != nil {
			p = p.Message
			if p.Type != "multipart" {
				if n != 1 {
					return nil
				}
				continue
			}
		}
		if n < 1 || n > len(p.Children) {
			return nil
		}
		p = p.Children[n-1]
	}
	return p
}

func hasProblem(s *Summary, substr string) bool {
	return slices.ContainsFunc(s.Problems, func(p string) bool { return strings.Contains(p, substr) })
}

var mixedMessage = crlf(`From: "Doe, Jane" <jane@example.com>
To: Team: bob@example.org, "Carol" <carol@example.net>;, dave@example.com
Cc: undisclosed-recipients:;
Subject: =?ISO-8859-1?Q?Gr=FC=DFe?= aus =?UTF-8?B?S8O2bG4=?=
Date: Tue, 14 Feb 2011 13:16:04 +0100 (CET)
Message-ID: <abc.123@example.com>
In-Reply-To: <parent@example.com>
References: <root@example.com>
 <parent@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

This is the preamble.
--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain; charset=windows-1252
Content-Transfer-Encoding: quoted-printable

Caf=E9 costs =80 5, a long line=
 continues.
--inner
Content-Type: text/html; charset=utf-8

<html><head><title>T</title><style>p{color:red}</style></head><body><p>Hello &amp; <b>welcome</b></p><p>Line&nbsp;two &#x263A;</p></body></html>
--inner--

--outer
Content-Type: application/pdf; name="ignored.pdf"
Content-Disposition: attachment;
 filename*0*=iso-8859-1''R%E9sum%E9;
 filename*1=".pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
JSVFT0YK
--outer
Content-Type: message/rfc822
Content-Description: =?UTF-8?Q?weitergeleitete_Nachricht?=

From: Old Sender <old@example.com>
Subject: Forwarded
Message-ID: <fwd@example.com>
Content-Type: text/plain

Inner body text.
--outer--
Epilogue.
`)

func TestParseMixed(t *testing.T) {
	s := Parse([]byte(mixedMessage), Options{})
	env := s.Envelope
	if want := "Grüße aus Köln"; env.Subject != want {
		t.Errorf("Subject = %q, want %q", env.Subject, want)
	}
	if want := time.Date(2011, 2, 14, 12, 16, 4, 0, time.UTC); !env.Date.Equal(want) {
		t.Errorf("Date = %v, want %v", env.Date, want)
	}
	if _, off := env.Date.Zone(); off != 3600 {
		t.Errorf("Date zone offset = %d, want 3600", off)
	}
	wantFrom := []Address{{Name: "Doe, Jane", Mailbox: "jane", Host: "example.com"}}
	if !slices.Equal(env.From, wantFrom) || !slices.Equal(env.Sender, wantFrom) || !slices.Equal(env.ReplyTo, wantFrom) {
		t.Errorf("From/Sender/ReplyTo = %v / %v / %v, want all %v", env.From, env.Sender, env.ReplyTo, wantFrom)
	}
	wantTo := []Address{groupStart("Team"), ad("", "bob", "example.org"), ad("Carol", "carol", "example.net"), groupEnd, ad("", "dave", "example.com")}
	if !slices.Equal(env.To, wantTo) {
		t.Errorf("To = %v, want %v", env.To, wantTo)
	}
	if want := []Address{groupStart("undisclosed-recipients"), groupEnd}; !slices.Equal(env.Cc, want) {
		t.Errorf("Cc = %v, want the empty group %v", env.Cc, want)
	}
	if env.MessageID != "abc.123@example.com" || !slices.Equal(env.InReplyTo, []string{"parent@example.com"}) {
		t.Errorf("MessageID, InReplyTo = %q, %q", env.MessageID, env.InReplyTo)
	}
	if want := []string{"root@example.com", "parent@example.com"}; !slices.Equal(s.References, want) {
		t.Errorf("References = %q, want %q", s.References, want)
	}

	root := s.Structure
	checks := []struct {
		path          []int
		typ, sub, enc string
	}{
		{nil, "multipart", "mixed", "7BIT"},
		{[]int{1}, "multipart", "alternative", "7BIT"},
		{[]int{1, 1}, "text", "plain", "QUOTED-PRINTABLE"},
		{[]int{1, 2}, "text", "html", "7BIT"},
		{[]int{2}, "application", "pdf", "BASE64"},
		{[]int{3}, "message", "rfc822", "7BIT"},
		{[]int{3, 1}, "text", "plain", "7BIT"},
	}
	for _, c := range checks {
		p := partAt(root, c.path...)
		if p == nil {
			t.Errorf("part %v missing", c.path)
			continue
		}
		if p.Type != c.typ || p.Subtype != c.sub || p.Encoding != c.enc {
			t.Errorf("part %v = %s/%s %s, want %s/%s %s", c.path, p.Type, p.Subtype, p.Encoding, c.typ, c.sub, c.enc)
		}
	}
	if len(root.Children) != 3 {
		t.Fatalf("root has %d children, want 3", len(root.Children))
	}
	pdf := partAt(root, 2)
	if got := pdf.FileName(); got != "Résumé.pdf" {
		t.Errorf("RFC 2231 filename = %q, want Résumé.pdf", got)
	}
	if pdf.Size != int64(len("JVBERi0xLjQK\r\nJSVFT0YK")) || pdf.DecodedSize != int64(len("%PDF-1.4\n%%EOF\n")) {
		t.Errorf("pdf Size, DecodedSize = %d, %d", pdf.Size, pdf.DecodedSize)
	}
	fwd := partAt(root, 3)
	if fwd.MessageEnvelope == nil || fwd.MessageEnvelope.Subject != "Forwarded" || fwd.MessageEnvelope.MessageID != "fwd@example.com" {
		t.Errorf("embedded envelope = %+v", fwd.MessageEnvelope)
	}
	if fwd.Description != "weitergeleitete Nachricht" {
		t.Errorf("Content-Description = %q", fwd.Description)
	}
	if fwd.Lines != 6 {
		t.Errorf("message/rfc822 Lines = %d, want 6", fwd.Lines)
	}
	if !s.HasAttachment || !slices.Equal(s.Attachments, []string{"Résumé.pdf"}) {
		t.Errorf("HasAttachment, Attachments = %v, %q", s.HasAttachment, s.Attachments)
	}
	// The HTML title and the shown header of the forwarded message are
	// text a reader sees.
	wantText := "Café costs € 5, a long line continues.\nT\nHello & welcome\nLine two ☺\nFrom: Old Sender <old@example.com>\nSubject: Forwarded\nInner body text."
	if s.Text != wantText {
		t.Errorf("Text = %q, want %q", s.Text, wantText)
	}
	if want := "Café costs € 5, a long line continues. T Hello & welcome Line two ☺ From: Old Sender <old@example.com> Subject: Forwarded Inner body text."; s.Preview != want {
		t.Errorf("Preview = %q, want %q", s.Preview, want)
	}
	if len(s.Headers) != 10 || s.Headers[3] != (Header{"Subject", "Grüße aus Köln"}) || s.Headers[9].Name != "Content-Type" {
		t.Errorf("Headers = %q", s.Headers)
	}
	if len(s.Problems) != 0 {
		t.Errorf("Problems = %q", s.Problems)
	}
	checkSummary(t, []byte(mixedMessage), s, defaultMaxText)
}

func TestParseCases(t *testing.T) {
	tests := []struct {
		name  string
		raw   string
		check func(t *testing.T, raw []byte, s *Summary)
	}{{
		name: "empty message",
		raw:  "",
		check: func(t *testing.T, raw []byte, s *Summary) {
			p := s.Structure
			if p.Type != "text" || p.Subtype != "plain" || p.End != 0 || s.Text != "" || len(s.Headers) != 0 {
				t.Errorf("got %+v, text %q", p, s.Text)
			}
		},
	}, {
		name: "LF only, no Content-Type",
		raw:  "Subject: plain\nFrom: a@example.com\n\nline one\nline two\n",
		check: func(t *testing.T, raw []byte, s *Summary) {
			p := s.Structure
			if p.Type != "text" || p.Subtype != "plain" || p.Encoding != "7BIT" {
				t.Errorf("type = %s/%s %s, want text/plain 7BIT", p.Type, p.Subtype, p.Encoding)
			}
			if p.BodyStart != int64(len("Subject: plain\nFrom: a@example.com\n\n")) || p.Lines != 2 {
				t.Errorf("BodyStart, Lines = %d, %d", p.BodyStart, p.Lines)
			}
			if s.Text != "line one\nline two" || s.Envelope.Subject != "plain" {
				t.Errorf("Text, Subject = %q, %q", s.Text, s.Envelope.Subject)
			}
		},
	}, {
		name: "malformed Content-Type",
		raw:  crlf("Content-Type: text\n\nbody\n"),
		check: func(t *testing.T, raw []byte, s *Summary) {
			if p := s.Structure; p.Type != "application" || p.Subtype != "octet-stream" || !hasProblem(s, "Content-Type") {
				t.Errorf("type = %s/%s, problems %q", p.Type, p.Subtype, s.Problems)
			}
			if s.Text != "" {
				t.Errorf("octet-stream gave text %q", s.Text)
			}
		},
	}, {
		name: "missing final boundary",
		raw:  crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n\nfirst\n--b\nContent-Type: text/plain\n\nsecond, cut off\n"),
		check: func(t *testing.T, raw []byte, s *Summary) {
			root := s.Structure
			if len(root.Children) != 2 || !hasProblem(s, "final delimiter") {
				t.Fatalf("children %d, problems %q", len(root.Children), s.Problems)
			}
			if last := root.Children[1]; last.End != int64(len(raw)) {
				t.Errorf("last part ends at %d, want message end", last.End)
			}
			if s.Text != "first\nsecond, cut off" {
				t.Errorf("Text = %q", s.Text)
			}
		},
	}, {
		name: "multipart without delimiters",
		raw:  crlf("Content-Type: multipart/mixed; boundary=nothere\n\njust text\n"),
		check: func(t *testing.T, raw []byte, s *Summary) {
			if p := s.Structure; p.Type != "text" || len(p.Children) != 0 || s.Text != "just text" {
				t.Errorf("got %s/%s, %d children, text %q", p.Type, p.Subtype, len(p.Children), s.Text)
			}
		},
	}, {
		name: "no header/body separator",
		raw:  crlf("Subject: x\nFrom: a@example.com\nHello, this is the body\nMore body: with a colon\n"),
		check: func(t *testing.T, raw []byte, s *Summary) {
			p := s.Structure
			if want := int64(len(crlf("Subject: x\nFrom: a@example.com\n"))); p.BodyStart != want {
				t.Errorf("BodyStart = %d, want %d", p.BodyStart, want)
			}
			if len(s.Headers) != 2 || !hasProblem(s, "no empty line") {
				t.Errorf("headers %q problems %q", s.Headers, s.Problems)
			}
			if s.Text != "Hello, this is the body\r\nMore body: with a colon" {
				t.Errorf("Text = %q", s.Text)
			}
		},
	}, {
		name: "header only, no body",
		raw:  "Subject: nothing else",
		check: func(t *testing.T, raw []byte, s *Summary) {
			if p := s.Structure; p.BodyStart != p.End || p.End != int64(len("Subject: nothing else")) || s.Envelope.Subject != "nothing else" {
				t.Errorf("got %+v subject %q", p, s.Envelope.Subject)
			}
		},
	}, {
		name: "base64 windows-1252 body",
		raw:  crlf("Content-Type: text/plain; charset=\"windows-1252\"\nContent-Transfer-Encoding: base64\n\nk0RpZSBH9nR0ZXIgc2luZCBr/GhsLpQ=\n"),
		check: func(t *testing.T, raw []byte, s *Summary) {
			if s.Text != "“Die Götter sind kühl.”" {
				t.Errorf("Text = %q", s.Text)
			}
			if p := s.Structure; p.DecodedSize != 23 {
				t.Errorf("DecodedSize = %d, want 23", p.DecodedSize)
			}
		},
	}, {
		name: "broken base64 and unknown charset",
		raw:  crlf("Content-Type: text/plain; charset=x-unknown\nContent-Transfer-Encoding: base64\n\naGVsbG8g d29y*bGQ\n"),
		check: func(t *testing.T, raw []byte, s *Summary) {
			if s.Text != "hello world" || !hasProblem(s, "base64") || !hasProblem(s, "x-unknown") {
				t.Errorf("Text %q, problems %q", s.Text, s.Problems)
			}
		},
	}, {
		name: "raw 8-bit headers",
		raw:  "Subject: Gr\xfc\xdfe\r\nFrom: J\xf6rg <joerg@example.com>\r\nX-Utf8: Stra\xc3\x9fe\r\n\r\nbody\r\n",
		check: func(t *testing.T, raw []byte, s *Summary) {
			if s.Envelope.Subject != "Grüße" || s.Envelope.From[0].Name != "Jörg" || s.Headers[2].Value != "Straße" {
				t.Errorf("Subject %q, From %v, X-Utf8 %q", s.Envelope.Subject, s.Envelope.From, s.Headers[2].Value)
			}
		},
	}, {
		name: "RFC 2231 and RFC 2047 parameters",
		raw: crlf(`Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain; name*=UTF-8''%E2%82%AC%20rate.txt
Content-Disposition: inline

rates
--b
Content-Type: image/png; name="=?UTF-8?B?w6TDtsO8LnBuZw==?="

iVBORw0KGgo=
--b
Content-Type: application/octet-stream; name=plain.bin; name*=us-ascii'en'better.bin

x
--b--
`),
		check: func(t *testing.T, raw []byte, s *Summary) {
			want := []string{"€ rate.txt", "äöü.png", "better.bin"}
			if !slices.Equal(s.Attachments, want) {
				t.Errorf("Attachments = %q, want %q", s.Attachments, want)
			}
			if s.Text != "rates" {
				t.Errorf("Text = %q, want the text attachment's text", s.Text)
			}
		},
	}, {
		name: "inline image with Content-ID is not an attachment",
		raw: crlf(`Content-Type: multipart/related; boundary=r

--r
Content-Type: text/html

<img src="cid:logo">Hi
--r
Content-Type: image/png
Content-ID: <logo>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--r--
`),
		check: func(t *testing.T, raw []byte, s *Summary) {
			if s.HasAttachment || s.Attachments != nil || s.Text != "Hi" {
				t.Errorf("HasAttachment %v, Attachments %q, Text %q", s.HasAttachment, s.Attachments, s.Text)
			}
			if id := partAt(s.Structure, 2).ID; id != "<logo>" {
				t.Errorf("ID = %q", id)
			}
		},
	}, {
		name: "multipart/digest defaults to message/rfc822",
		raw:  crlf("Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: first\n\none\n--d\nContent-Type: text/plain\n\ntwo\n--d--\n"),
		check: func(t *testing.T, raw []byte, s *Summary) {
			first := partAt(s.Structure, 1)
			if first.Type != "message" || first.MessageEnvelope == nil || first.MessageEnvelope.Subject != "first" {
				t.Errorf("first digest part = %s/%s %+v", first.Type, first.Subtype, first.MessageEnvelope)
			}
			if s.Text != "Subject: first\none\ntwo" {
				t.Errorf("Text = %q", s.Text)
			}
		},
	}, {
		name: "deep nesting is capped",
		raw:  deepMessage(100),
		check: func(t *testing.T, raw []byte, s *Summary) {
			depth := 0
			for p := s.Structure; len(p.Children) > 0; p = p.Children[0] {
				depth++
			}
			if depth != maxDepth || !hasProblem(s, "nested deeper") {
				t.Errorf("depth %d, problems %q", depth, s.Problems)
			}
		},
	}, {
		name: "transport padding, LF delimiters, boundary prefix of a line",
		raw:  "Content-Type: multipart/alternative; boundary=ab\n\n--ab  \n\none\n--abc not a delimiter\n--ab\n\ntwo\n--ab-- \n",
		check: func(t *testing.T, raw []byte, s *Summary) {
			root := s.Structure
			if len(root.Children) != 2 || s.Text != "one\n--abc not a delimiter\ntwo" || len(s.Problems) != 0 {
				t.Errorf("%d children, text %q, problems %q", len(root.Children), s.Text, s.Problems)
			}
		},
	}, {
		name: "MaxText cuts on a UTF-8 boundary",
		raw:  "Content-Type: text/plain; charset=utf-8\n\näöü\n",
		check: func(t *testing.T, raw []byte, s *Summary) {
			parsed := Parse(raw, Options{MaxText: 3})
			if parsed.Text != "ä" {
				t.Errorf("Text = %q, want %q", parsed.Text, "ä")
			}
			if none := Parse(raw, Options{MaxText: -1}); none.Text != "" || none.Preview != "" {
				t.Errorf("disabled text extraction gave %q", none.Text)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.raw)
			s := Parse(raw, Options{})
			tt.check(t, raw, s)
			checkSummary(t, raw, s, defaultMaxText)
		})
	}
}

// deepMessage nests n multiparts, each the only part of its parent.
func deepMessage(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("\r\ninnermost\r\n")
	for i := n - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.String()
}
