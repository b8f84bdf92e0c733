package mailparse

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/mailvault/mailvault/mailgen"
)

// headOf encodes and decodes the Head of raw, failing the test on an error.
func headOf(t *testing.T, raw []byte) (*Summary, *Head) {
	t.Helper()
	s := Parse(raw, Options{})
	h, err := DecodeHead(AppendHead(nil, raw, s))
	if err != nil {
		t.Fatal(err)
	}
	return s, h
}

// The structure read back from a Head is the one the stored JSON gives.
func TestHeadStructureAsStored(t *testing.T) {
	var raws [][]byte
	g := mailgen.New(7, []string{"acme.example", "globex.example"}, 30)
	for range 300 {
		raws = append(raws, g.Next().Raw)
	}
	if files, _ := filepath.Glob(filepath.Join("..", "..", "shared", "corpus", "messages", "*.eml")); len(files) > 0 {
		for _, f := range files {
			if raw, err := os.ReadFile(f); err == nil {
				raws = append(raws, raw)
			}
		}
	}
	for i, raw := range raws {
		s, h := headOf(t, raw)
		rec, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var stored Summary
		if err := stored.UnmarshalBinary(rec); err != nil {
			t.Fatal(err)
		}
		if !sameParts(stored.Structure, h.Structure) {
			t.Fatalf("message %d: structure from the head differs from the stored one", i)
		}
		start, end, _ := s.Section(nil, "HEADER")
		if want := AppendCRLF(nil, raw[start:end]); !bytes.Equal(h.Header, want) {
			t.Fatalf("message %d: header block %q, want %q", i, h.Header, want)
		}
	}
}

// sameParts compares two trees; dates by instant and offset, as JSON keeps
// the offset but not the zone's name.
func sameParts(a, b *Part) bool {
	if a == nil || b == nil {
		return a == b
	}
	ac, bc := *a, *b
	if (ac.MessageEnvelope == nil) != (bc.MessageEnvelope == nil) {
		return false
	}
	if ac.MessageEnvelope != nil {
		ae, be := *ac.MessageEnvelope, *bc.MessageEnvelope
		_, ao := ae.Date.Zone()
		_, bo := be.Date.Zone()
		if !ae.Date.Equal(be.Date) || ao != bo {
			return false
		}
		ae.Date, be.Date = time.Time{}, time.Time{}
		if !reflect.DeepEqual(ae, be) {
			return false
		}
	}
	if len(ac.Children) != len(bc.Children) {
		return false
	}
	for i := range ac.Children {
		if !sameParts(ac.Children[i], bc.Children[i]) {
			return false
		}
	}
	if !sameParts(ac.Message, bc.Message) {
		return false
	}
	ac.Children, bc.Children, ac.Message, bc.Message, ac.MessageEnvelope, bc.MessageEnvelope = nil, nil, nil, nil, nil, nil
	return reflect.DeepEqual(ac, bc)
}

// Every field of Part and Envelope survives the binary form: a field added
// to either must be added to the Head's layout too.
func TestHeadKeepsEveryField(t *testing.T) {
	env := Envelope{}
	fill(reflect.ValueOf(&env).Elem())
	env.Date = time.Date(2024, 3, 1, 9, 30, 0, 5, time.FixedZone("", 3600))
	var p Part
	fill(reflect.ValueOf(&p).Elem())
	p.HeaderStart, p.BodyStart, p.End = 1, 2, 3
	p.Size = 1
	child := p
	child.Children, child.Message, child.MessageEnvelope = nil, nil, nil
	p.Children = []*Part{&child}
	p.Message = &child
	p.MessageEnvelope = &env
	h, err := DecodeHead(AppendHead(nil, nil, &Summary{Structure: &p}))
	if err != nil {
		t.Fatal(err)
	}
	if !sameParts(&p, h.Structure) {
		t.Errorf("decoded %+v, want %+v", h.Structure, &p)
	}
}

// fill sets every settable field of v to something not zero.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x" + v.Type().Name())
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(7)
	case reflect.Uint8:
		v.SetUint(1)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Pointer {
			return // Children: set by the caller
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		fill(s.Index(0))
		fill(s.Index(1))
		s.Index(1).Set(s.Index(0))
		if s.Index(0).Kind() == reflect.String {
			s.Index(1).SetString("y")
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		m.SetMapIndex(reflect.ValueOf("k"), reflect.ValueOf("v"))
		m.SetMapIndex(reflect.ValueOf("a"), reflect.ValueOf("b"))
		v.Set(m)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			return
		}
		for i := range v.NumField() {
			if v.Field(i).CanSet() {
				fill(v.Field(i))
			}
		}
	}
}

func TestAppendCRLF(t *testing.T) {
	for in, want := range map[string]string{
		"":                 "",
		"a: b\n\n":         "a: b\r\n\r\n",
		"a: b\r\nc: d\n":   "a: b\r\nc: d\r\n",
		"\n\r\n\n":         "\r\n\r\n\r\n",
		"no end":           "no end",
		"a: b\r\n x\n\r\n": "a: b\r\n x\r\n\r\n",
		"lone\rcr\n":       "lone\rcr\r\n",
	} {
		if got := string(AppendCRLF([]byte("pre"), []byte(in))); got != "pre"+want {
			t.Errorf("AppendCRLF(%q) = %q, want %q", in, got, "pre"+want)
		}
		if n := CRLFLen([]byte(in)); n != int64(len(want)) {
			t.Errorf("CRLFLen(%q) = %d, want %d", in, n, len(want))
		}
	}
}

func TestDecodeHeadDamaged(t *testing.T) {
	raw := mailgen.New(3, []string{"acme.example"}, 5).Next().Raw
	enc := AppendHead(nil, raw, Parse(raw, Options{}))
	for n := range len(enc) {
		if _, err := DecodeHead(enc[:n]); err == nil {
			t.Fatalf("a head cut to %d of %d bytes decodes", n, len(enc))
		}
	}
}

func TestHeadField(t *testing.T) {
	raw := []byte("Subject: x\r\nreferences: <a@b>\r\n\t<c@d> <e@f>\r\nX: <z@z>\r\n\r\nReferences: <body@x>\r\n")
	_, h := headOf(t, raw)
	if got := h.References(); !reflect.DeepEqual(got, []string{"a@b", "c@d", "e@f"}) {
		t.Errorf("References = %q", got)
	}
	if v, ok := h.Field("x"); !ok || v != "<z@z>" {
		t.Errorf("Field(x) = %q, %v", v, ok)
	}
	if _, ok := h.Field("in-reply-to"); ok {
		t.Error("a field that is not there was found")
	}
}
