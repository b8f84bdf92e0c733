package mailparse

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"time"
	"unsafe"
)

// Head is what a message list reads of a message besides its envelope: the
// header block as presented (every line ending in CRLF, the blank line
// included) and the MIME tree. It is stored beside the Summary, in a compact
// binary form that decodes without reflection, so that reading the headers
// or the structure of a message opens neither the message nor the JSON.
type Head struct {
	Header    []byte
	Structure *Part
}

// headVersion starts an encoded Head; a later layout takes the next value.
// Version 2 added Part.BareLFs, version 3 Address.Route and Group,
// version 4 Envelope.RawDate; older layouts are still read (without them),
// and a store derives their summaries again (see Version).
const headVersion = 4

// maxHeadDepth bounds the nesting a decoded Head may have, far beyond what
// Parse produces (maxDepth).
const maxHeadDepth = 200

// AppendHead appends the encoded Head of raw, whose Summary is s.
func AppendHead(dst, raw []byte, s *Summary) []byte {
	var header []byte
	if p := s.Structure; p != nil && p.BodyStart <= int64(len(raw)) && p.HeaderStart <= p.BodyStart {
		header = raw[p.HeaderStart:p.BodyStart]
	}
	dst = append(dst, headVersion)
	n := CRLFLen(header)
	dst = binary.AppendUvarint(dst, uint64(n))
	dst = AppendCRLF(slices.Grow(dst, int(n)), header)
	return appendPart(dst, s.Structure)
}

// DecodeHead decodes an encoded Head into new memory: b may be reused
// afterwards.
func DecodeHead(b []byte) (*Head, error) { return decodeHead(b, true) }

// DecodeHeader decodes only the header block of an encoded Head (Structure
// is nil), for readers of header fields.
func DecodeHeader(b []byte) (*Head, error) { return decodeHead(b, false) }

func decodeHead(b []byte, structure bool) (*Head, error) {
	if len(b) == 0 || b[0] < 1 || b[0] > headVersion {
		return nil, errors.New("head: unknown layout")
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n > uint64(len(b)-1-k) {
		return nil, errors.New("head: bad header length")
	}
	if !structure {
		return &Head{Header: bytes.Clone(b[1+k : 1+k+int(n)])}, nil
	}
	// One copy holds the header block and, after it, the bytes of every
	// string of the structure, which are never written again.
	own := bytes.Clone(b[1+k:])
	h := &Head{Header: own[:n:n]}
	d := headDecoder{version: b[0]}
	if rest := own[n:]; len(rest) > 0 {
		d.s = unsafe.String(&rest[0], len(rest))
	}
	h.Structure = d.part(0)
	if d.err != nil {
		return nil, d.err
	}
	if d.i != len(d.s) {
		return nil, errors.New("head: trailing bytes")
	}
	return h, nil
}

// The layout: strings and lists are a uvarint length and their elements,
// numbers varints, optional things a 0 or 1 byte first. Maps are written
// sorted by key, so equal Heads encode equally.

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendStrs(dst []byte, l []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(l)))
	for _, s := range l {
		dst = appendStr(dst, s)
	}
	return dst
}

func appendMap(dst []byte, m map[string]string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		dst = appendStr(appendStr(dst, k), m[k])
	}
	return dst
}

func appendPart(dst []byte, p *Part) []byte {
	if p == nil {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	dst = appendStr(dst, p.Type)
	dst = appendStr(dst, p.Subtype)
	dst = appendMap(dst, p.Params)
	dst = appendStr(dst, p.ID)
	dst = appendStr(dst, p.Description)
	dst = appendStr(dst, p.Encoding)
	dst = appendStr(dst, p.Disposition)
	dst = appendMap(dst, p.DispositionParams)
	dst = appendStrs(dst, p.Language)
	dst = appendStr(dst, p.Location)
	dst = appendStr(dst, p.MD5)
	for _, v := range [...]int64{p.DecodedSize, p.Lines, p.HeaderStart, p.BodyStart, p.End, p.BareLFs} {
		dst = binary.AppendVarint(dst, v)
	}
	dst = binary.AppendUvarint(dst, uint64(len(p.Children)))
	for _, c := range p.Children {
		dst = appendPart(dst, c)
	}
	dst = appendPart(dst, p.Message)
	if p.MessageEnvelope == nil {
		return append(dst, 0)
	}
	return appendEnvelope(append(dst, 1), p.MessageEnvelope)
}

func appendAddrs(dst []byte, l []Address) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(l)))
	for _, a := range l {
		dst = appendStr(appendStr(appendStr(dst, a.Name), a.Mailbox), a.Host)
		dst = append(appendStr(dst, a.Route), byte(a.Group))
	}
	return dst
}

func appendEnvelope(dst []byte, e *Envelope) []byte {
	if e.Date.IsZero() {
		dst = append(dst, 0)
	} else {
		_, off := e.Date.Zone()
		dst = append(dst, 1)
		dst = binary.AppendVarint(dst, e.Date.Unix())
		dst = binary.AppendUvarint(dst, uint64(e.Date.Nanosecond()))
		dst = binary.AppendVarint(dst, int64(off))
	}
	dst = appendStr(dst, e.RawDate)
	dst = appendStr(dst, e.Subject)
	dst = appendAddrs(dst, e.From)
	// As in the JSON form, Sender and Reply-To equal to From are not
	// written twice: an empty list stands for From.
	for _, l := range [][]Address{e.Sender, e.ReplyTo} {
		if slices.Equal(l, e.From) {
			l = nil
		}
		dst = appendAddrs(dst, l)
	}
	dst = appendAddrs(dst, e.To)
	dst = appendAddrs(dst, e.Cc)
	dst = appendAddrs(dst, e.Bcc)
	dst = appendStrs(dst, e.InReplyTo)
	return appendStr(dst, e.MessageID)
}

type headDecoder struct {
	s       string
	i       int
	version byte
	err     error
	// slab backs the parts: one allocation for a few instead of one each.
	slab []Part
}

func (d *headDecoder) fail(msg string) {
	if d.err == nil {
		d.err = errors.New("head: " + msg)
	}
	d.i = len(d.s)
}

func (d *headDecoder) byte() byte {
	if d.i >= len(d.s) {
		d.fail("truncated")
		return 0
	}
	d.i++
	return d.s[d.i-1]
}

func (d *headDecoder) uvarint() uint64 {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		c := d.byte()
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
	d.fail("bad number")
	return 0
}

func (d *headDecoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

// count reads a list length, which can be no more than the bytes left.
func (d *headDecoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.s)-d.i) {
		d.fail("bad length")
		return 0
	}
	return int(n)
}

func (d *headDecoder) str() string {
	n := d.count()
	s := d.s[d.i : d.i+n]
	d.i += n
	return s
}

func (d *headDecoder) strs() []string {
	n := d.count()
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.str()
	}
	return out
}

func (d *headDecoder) dict() map[string]string {
	n := d.count()
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := d.str()
		m[k] = d.str()
	}
	return m
}

func (d *headDecoder) part(depth int) *Part {
	if d.byte() == 0 {
		return nil
	}
	if depth > maxHeadDepth {
		d.fail("nested too deep")
		return nil
	}
	if len(d.slab) == cap(d.slab) {
		d.slab = make([]Part, 0, 4)
	}
	d.slab = d.slab[:len(d.slab)+1]
	p := &d.slab[len(d.slab)-1]
	p.Type = d.str()
	p.Subtype = d.str()
	p.Params = d.dict()
	p.ID = d.str()
	p.Description = d.str()
	p.Encoding = d.str()
	p.Disposition = d.str()
	p.DispositionParams = d.dict()
	p.Language = d.strs()
	p.Location = d.str()
	p.MD5 = d.str()
	p.DecodedSize = d.varint()
	p.Lines = d.varint()
	p.HeaderStart = d.varint()
	p.BodyStart = d.varint()
	p.End = d.varint()
	if d.version >= 2 {
		p.BareLFs = d.varint()
	}
	p.Size = p.End - p.BodyStart
	if n := d.count(); n > 0 {
		p.Children = make([]*Part, n)
		for i := range p.Children {
			p.Children[i] = d.part(depth + 1)
		}
	}
	p.Message = d.part(depth + 1)
	if d.byte() == 1 {
		p.MessageEnvelope = d.envelope()
	}
	if d.err == nil && (p.HeaderStart < 0 || p.HeaderStart > p.BodyStart || p.BodyStart > p.End) {
		d.fail("part offsets out of order")
	}
	return p
}

func (d *headDecoder) addrs() []Address {
	n := d.count()
	if n == 0 {
		return nil
	}
	out := make([]Address, n)
	for i := range out {
		out[i] = Address{Name: d.str(), Mailbox: d.str(), Host: d.str()}
		if d.version >= 3 {
			out[i].Route = d.str()
			out[i].Group = GroupMark(d.byte())
		}
	}
	return out
}

func (d *headDecoder) envelope() *Envelope {
	e := &Envelope{}
	if d.byte() == 1 {
		sec, nsec, off := d.varint(), d.uvarint(), d.varint()
		loc := time.UTC
		if off != 0 {
			loc = time.FixedZone("", int(off))
		}
		e.Date = time.Unix(sec, int64(nsec)).In(loc)
	}
	if d.version >= 4 {
		e.RawDate = d.str()
	}
	e.Subject = d.str()
	e.From = d.addrs()
	e.Sender = d.addrs()
	e.ReplyTo = d.addrs()
	if len(e.Sender) == 0 {
		e.Sender = e.From
	}
	if len(e.ReplyTo) == 0 {
		e.ReplyTo = e.From
	}
	e.To = d.addrs()
	e.Cc = d.addrs()
	e.Bcc = d.addrs()
	e.InReplyTo = d.strs()
	e.MessageID = d.str()
	return e
}

// Field returns the value of the first header field called name (any
// case), unfolded and trimmed, and whether there is one.
func (h *Head) Field(name string) (string, bool) {
	b := h.Header
	for len(b) > 0 {
		end := bytes.IndexByte(b, '\n') + 1
		if end == 0 {
			end = len(b)
		}
		if end <= 2 && len(bytes.TrimRight(b[:end], "\r\n")) == 0 {
			return "", false // the blank line
		}
		for end < len(b) && (b[end] == ' ' || b[end] == '\t') {
			if i := bytes.IndexByte(b[end:], '\n'); i >= 0 {
				end += i + 1
			} else {
				end = len(b)
			}
		}
		field := b[:end]
		b = b[end:]
		colon := bytes.IndexByte(field, ':')
		if colon > 0 && bytes.EqualFold(bytes.TrimRight(field[:colon], " \t"), []byte(name)) {
			return fieldString(field[colon+1:]), true
		}
	}
	return "", false
}

// References returns the message identifiers of the References field,
// without their angle brackets.
func (h *Head) References() []string {
	v, ok := h.Field("References")
	if !ok {
		return nil
	}
	return msgIDs(v)
}
