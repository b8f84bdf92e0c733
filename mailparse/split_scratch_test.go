package mailparse

import "testing"

func BenchmarkSplitNoText(b *testing.B) {
	raw := benchMessage()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		Parse(raw, Options{MaxText: -1})
	}
}

func BenchmarkSplitHTML(b *testing.B) {
	raw := benchMessage()
	s := Parse(raw, Options{})
	p := partAt(s.Structure, 1, 2)
	body := raw[p.BodyStart:p.End]
	b.SetBytes(int64(len(body)))
	var buf []byte
	for b.Loop() {
		buf = appendHTMLText(buf[:0], body)
	}
}

func BenchmarkSplitQP(b *testing.B) {
	raw := benchMessage()
	s := Parse(raw, Options{})
	p := partAt(s.Structure, 1, 1)
	body := raw[p.BodyStart:p.End]
	b.SetBytes(int64(len(body)))
	var buf []byte
	for b.Loop() {
		buf = appendQP(buf[:0], body)
	}
}

func BenchmarkSplitB64Len(b *testing.B) {
	raw := benchMessage()
	s := Parse(raw, Options{})
	p := partAt(s.Structure, 2)
	body := raw[p.BodyStart:p.End]
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		base64DecodedLen(body)
	}
}
