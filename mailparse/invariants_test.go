package mailparse

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkSummary checks what must hold for any input: offsets inside the
// message and nested, valid UTF-8 text within its cap, a lossless stored form.
func checkSummary(t *testing.T, raw []byte, s *Summary, maxText int) {
	t.Helper()
	root := s.Structure
	if root == nil {
		t.Fatal("no Structure")
	}
	if root.HeaderStart != 0 || root.End != int64(len(raw)) {
		t.Errorf("root spans [%d,%d), want [0,%d)", root.HeaderStart, root.End, len(raw))
	}
	checkPart(t, root, 0, int64(len(raw)), "root")
	if !utf8.ValidString(s.Text) || len(s.Text) > maxText {
		t.Errorf("Text of %d bytes, valid UTF-8 %v, cap %d", len(s.Text), utf8.ValidString(s.Text), maxText)
	}
	if !utf8.ValidString(s.Preview) || utf8.RuneCountInString(s.Preview) > previewRunes {
		t.Errorf("Preview %q", s.Preview)
	}
	checkRoundTrip(t, s)
}

func checkPart(t *testing.T, p *Part, lo, hi int64, name string) {
	t.Helper()
	if !(lo <= p.HeaderStart && p.HeaderStart <= p.BodyStart && p.BodyStart <= p.End && p.End <= hi) {
		t.Errorf("%s: offsets %d,%d,%d not ordered within [%d,%d]", name, p.HeaderStart, p.BodyStart, p.End, lo, hi)
		return
	}
	if p.Size != p.End-p.BodyStart {
		t.Errorf("%s: Size %d, body is %d bytes", name, p.Size, p.End-p.BodyStart)
	}
	if p.Type == "" || p.Subtype == "" || p.Type != strings.ToLower(p.Type) || p.Subtype != strings.ToLower(p.Subtype) || p.Encoding == "" {
		t.Errorf("%s: type %q/%q encoding %q", name, p.Type, p.Subtype, p.Encoding)
	}
	if (p.Type == "multipart") != (len(p.Children) > 0) {
		t.Errorf("%s: %s/%s with %d children", name, p.Type, p.Subtype, len(p.Children))
	}
	prevEnd := p.BodyStart
	for i, c := range p.Children {
		checkPart(t, c, prevEnd, p.End, name+"."+string(rune('1'+i%9)))
		prevEnd = c.End
	}
	if m := p.Message; m != nil {
		if m.HeaderStart != p.BodyStart || m.End != p.End || p.MessageEnvelope == nil {
			t.Errorf("%s: embedded message [%d,%d) in body [%d,%d)", name, m.HeaderStart, m.End, p.BodyStart, p.End)
		}
		checkPart(t, m, p.BodyStart, p.End, name+">")
	}
}

// checkRoundTrip checks that UnmarshalBinary restores everything
// MarshalBinary stores: the Summary but its Text.
func checkRoundTrip(t *testing.T, s *Summary) {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	var back Summary
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatalf("UnmarshalBinary: %v\n%s", err, b)
	}
	want := *s
	want.Text = ""
	// Times come back in an equal instant but another *time.Location.
	sameDate(t, &want.Envelope, &back.Envelope)
	var walk func(w, g *Part)
	walk = func(w, g *Part) {
		if w == nil || g == nil {
			return
		}
		if w.MessageEnvelope != nil && g.MessageEnvelope != nil {
			sameDate(t, w.MessageEnvelope, g.MessageEnvelope)
		}
		for i := range min(len(w.Children), len(g.Children)) {
			walk(w.Children[i], g.Children[i])
		}
		walk(w.Message, g.Message)
	}
	walk(want.Structure, back.Structure)
	if !reflect.DeepEqual(want, back) {
		t.Errorf("round trip changed the Summary:\nstored %s", b)
	}
}

// sameDate checks that got's date is want's and then makes it identical.
func sameDate(t *testing.T, want, got *Envelope) {
	t.Helper()
	if !got.Date.Equal(want.Date) {
		t.Errorf("Date %v came back as %v", want.Date, got.Date)
	}
	got.Date = want.Date
}
