package mailparse

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// benchMessage builds a typical business message of about 30 KB: a routed
// header, a text/plain and text/html alternative, and a base64 PDF.
func benchMessage() []byte {
	var b strings.Builder
	for i := range 6 {
		fmt.Fprintf(&b, "Received: from relay%d.example.net (relay%d.example.net [192.0.2.%d])\r\n\tby mx.example.com with ESMTPS id 4F%dx for <sales@example.com>;\r\n\tTue, 14 Feb 2023 13:16:0%d +0100\r\n", i, i, i, i, i)
	}
	b.WriteString("DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=mail; h=from:to:subject:date;\r\n" +
		"\tbh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSBidXQgaXQgbG9va3MgbGlrZSBvbmU=\r\n" +
		"From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg.mueller@example.org>\r\n" +
		"To: Sales <sales@example.com>, \"Doe, Jane\" <jane.doe@example.com>\r\n" +
		"Cc: accounting@example.com\r\n" +
		"Subject: =?UTF-8?Q?Angebot_f=C3=BCr_Q2_=E2=80=93_bitte_pr=C3=BCfen?=\r\n" +
		"Date: Tue, 14 Feb 2023 13:16:04 +0100\r\n" +
		"Message-ID: <20230214121604.4711@example.org>\r\n" +
		"In-Reply-To: <20230213093000.1234@example.com>\r\n" +
		"References: <20230210080000.1111@example.com> <20230213093000.1234@example.com>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"----=_Part_0_123456.789\"\r\n\r\n" +
		"This is a multi-part message in MIME format.\r\n\r\n" +
		"------=_Part_0_123456.789\r\n" +
		"Content-Type: multipart/alternative; boundary=\"----=_Part_1_987654.321\"\r\n\r\n" +
		"------=_Part_1_987654.321\r\n" +
		"Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	const para = "Sehr geehrte Damen und Herren, anbei erhalten Sie unser Angebot f=C3=BCr das zweite Quartal. =\r\nDie Preise gelten bis zum 31. M=C3=A4rz, Lieferung frei Haus ab 500 =E2=82=AC Bestellwert.\r\n"
	for range 36 {
		b.WriteString(para)
	}
	b.WriteString("\r\n------=_Part_1_987654.321\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" +
		"<html><head><meta charset=\"utf-8\"><style>p { font-family: Arial; }</style></head><body>\r\n")
	const htmlPara = "<p style=\"margin:0\">Sehr geehrte Damen und Herren, anbei erhalten Sie unser <b>Angebot</b> f&uuml;r das zweite Quartal.<br>Die Preise gelten bis zum 31. M\u00e4rz, Lieferung frei Haus ab 500&nbsp;&euro; Bestellwert.</p>\r\n"
	for range 36 {
		b.WriteString(htmlPara)
	}
	b.WriteString("</body></html>\r\n------=_Part_1_987654.321--\r\n\r\n------=_Part_0_123456.789\r\n" +
		"Content-Type: application/pdf; name=\"Angebot_Q2.pdf\"\r\nContent-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=\"Angebot_Q2.pdf\"\r\n\r\n")
	pdf := make([]byte, 9000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range pdf {
		pdf[i] = byte(rng.Uint32())
	}
	enc := base64.StdEncoding.EncodeToString(pdf)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n------=_Part_0_123456.789--\r\n")
	return []byte(b.String())
}

func TestBenchMessage(t *testing.T) {
	raw := benchMessage()
	s := Parse(raw, Options{})
	checkSummary(t, raw, s, defaultMaxText)
	if len(s.Problems) != 0 || len(s.Attachments) != 1 || partAt(s.Structure, 2).DecodedSize != 9000 {
		t.Errorf("problems %q, attachments %q", s.Problems, s.Attachments)
	}
	if !strings.Contains(s.Text, "ab 500 € Bestellwert.\r\nSehr geehrte") || !strings.Contains(s.Text, "für das zweite Quartal.\nDie Preise") {
		t.Errorf("text not decoded: %q", s.Text[:200])
	}
}

func BenchmarkParse(b *testing.B) {
	raw := benchMessage()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		Parse(raw, Options{})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkMarshalBinary(b *testing.B) {
	s := Parse(benchMessage(), Options{})
	b.ReportAllocs()
	var size int
	for b.Loop() {
		stored, err := s.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		size = len(stored)
	}
	b.ReportMetric(float64(size), "bytes/summary")
}

func BenchmarkParseCorpus(b *testing.B) {
	var msgs [][]byte
	var total int64
	for _, name := range corpusFiles(b) {
		raw, err := os.ReadFile(name)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, raw)
		total += int64(len(raw))
	}
	b.SetBytes(total)
	var stored, rawDates, rawDateBytes int
	for b.Loop() {
		stored, rawDates, rawDateBytes = 0, 0, 0
		for _, raw := range msgs {
			s := Parse(raw, Options{})
			enc, err := s.MarshalBinary()
			if err != nil {
				b.Fatal(err)
			}
			stored += len(enc)
			if s.Envelope.RawDate != "" {
				rawDates++
				rawDateBytes += len(`,"dr":""`) + len(s.Envelope.RawDate)
			}
		}
	}
	// What a summary costs, and how much of it the Date field kept as
	// written (only when it is not the parsed time re-formatted) is.
	b.ReportMetric(float64(stored)/float64(len(msgs)), "bytes/summary")
	b.ReportMetric(float64(rawDateBytes)/float64(len(msgs)), "rawdate-bytes/summary")
	b.ReportMetric(100*float64(rawDates)/float64(len(msgs)), "%rawdate")
}
