package index

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/blugelabs/bluge"
	"github.com/blugelabs/bluge/analysis"
)

// Doc is what the index knows of one archived message.
type Doc struct {
	MID     uint64   // tenant-local message number: the document's identity
	Members []Member // folder memberships; a search in a folder returns its UIDs
	From    []Address
	To      []Address
	Cc      []Address
	Bcc     []Address
	// Rcpt are the envelope or journal recipients. They are searchable as To
	// and Bcc: a Bcc recipient is only known from the envelope.
	Rcpt        []string
	Subject     string
	Body        string        // decoded text, capped at MaxBody
	Attachments []string      // file names
	Headers     []HeaderField // every top-level header, decoded
	MessageID   string
	Sent        time.Time // Date: header; zero when unknown
	Received    time.Time
	Size        int64
	// HasAttachment is decided by the caller (which parts count is a MIME
	// question).
	HasAttachment bool
}

// Address is a mailbox of an address header.
type Address struct {
	Name, Email string
}

// Member is one folder membership of a message.
type Member struct {
	Folder uint64
	UID    uint32
}

// HeaderField is one header field.
type HeaderField struct {
	Name, Value string
}

// Caps on what one document may put into the index; the rest is dropped.
const (
	MaxBody         = 2 << 20
	maxSubject      = 16 << 10
	maxHeaderBytes  = 64 << 10 // all header values together
	maxAddresses    = 1000     // per address field
	maxAttachments  = 1000
	maxSortKeyBytes = 128
)

// Dates are clamped into this range: hostile Date: headers say year 0 or
// 9999, and bluge numbers must stay exact.
var (
	minTime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 12, 31, 23, 59, 59, 0, time.UTC)
)

func clampTime(t time.Time) time.Time {
	if t.Before(minTime) {
		return minTime
	}
	if t.After(maxTime) {
		return maxTime
	}
	return t
}

// Field names. Text fields hold positions for phrase search.
const (
	fieldID         = "_id"  // decimal MID; bluge's identity field
	fieldMeta       = "m"    // packed MID, dates, size, members: the doc value read per hit
	fieldFolder     = "f"    // decimal folder ids
	fieldFrom       = "from" // address fields, see addressAnalyzer
	fieldTo         = "to"
	fieldCc         = "cc"
	fieldBcc        = "bcc"
	fieldRcpt       = "rcpt"
	fieldSubject    = "subj" // stored, for snippets
	fieldBody       = "body"
	fieldAttachment = "att"
	fieldHeader     = "hdr"  // see headerAnalyzer
	fieldHeaderName = "hn"   // lower-case names of the headers present
	fieldReceived   = "recv" // numeric; sent time and size are read from the meta
	fieldHasAtt     = "ha"   // "1" or "0"
	fieldSortFrom   = "fs"   // sort keys, doc values
	fieldSortSubj   = "ss"
	fieldSentDay    = "sd" // calendar day, month and year of Date: as written, see dayTerms
	fieldVocab      = "v"  // of vocabulary documents only, see vocabulary.go
	fieldKind       = "k"  // "v" on vocabulary documents
)

// HeaderValueIndexed tells whether the values of a header (lower-case name)
// are indexed. Not indexed, only their presence: signatures and blobs, trace
// headers, the date and the MIME structure headers, whose values nobody
// searches by word and whose unique tokens (boundaries, relay ids, times)
// cost up to a quarter of the indexing time. Header on such a header
// matches every message that has it: the caller must check the value.
func HeaderValueIndexed(lowerName string) bool {
	switch lowerName {
	case "dkim-signature", "domainkey-signature", "x-google-dkim-signature",
		"arc-seal", "arc-message-signature", "autocrypt", "autocrypt-gossip",
		"received", "authentication-results", "arc-authentication-results", "received-spf",
		"date", "mime-version", "content-type", "content-transfer-encoding",
		"content-disposition", "content-id":
		return false
	}
	return !strings.HasPrefix(lowerName, "x-ms-exchange-antispam-messagedata")
}

// routedHeader tells headers that have their own fields: HEADER searches on
// them go there, so their values are not indexed twice.
func routedHeader(lowerName string) bool {
	switch lowerName {
	case "from", "to", "cc", "bcc", "subject":
		return true
	}
	return false
}

// analyzers are shared by all documents and queries; they hold no state.
type analyzers struct {
	words   *analysis.Analyzer
	address bluge.Analyzer
	header  bluge.Analyzer
	list    bluge.Analyzer // keyword list
	att     bluge.Analyzer
	scratch *sync.Pool // of *termScratch, for textField
}

func newAnalyzers() *analyzers {
	w := newWordAnalyzer()
	return &analyzers{
		words:   w,
		address: newAddressAnalyzer(),
		header:  newHeaderAnalyzer(),
		list:    newKeywordListAnalyzer(),
		att:     newListAnalyzer(w),
		scratch: newTermScratchPool(),
	}
}

// document builds the bluge document of d.
func (a *analyzers) document(d *Doc) bluge.Document {
	doc := make(bluge.Document, 0, 20)
	doc = append(doc,
		newKeywordField(fieldID, []byte(docID(d.MID)), a.scratch),
		sortable(newKeywordField(fieldMeta, encodeMeta(d), a.scratch)),
	)
	addField := func(name string, value []byte, an bluge.Analyzer) *textField {
		if len(value) == 0 {
			return nil
		}
		f := newTextField(name, value, an, a.scratch)
		doc = append(doc, f)
		return f
	}
	addField(fieldFolder, joinList(d.Members, len(d.Members), func(b []byte, m Member) []byte {
		return strconv.AppendUint(b, m.Folder, 10)
	}), a.list)
	addField(fieldFrom, joinAddresses(d.From), a.address)
	addField(fieldTo, joinAddresses(d.To), a.address)
	addField(fieldCc, joinAddresses(d.Cc), a.address)
	addField(fieldBcc, joinAddresses(d.Bcc), a.address)
	addField(fieldRcpt, joinList(d.Rcpt, maxAddresses, appendClean), a.address)
	if d.Subject != "" {
		subj := truncate(d.Subject, maxSubject)
		f := addField(fieldSubject, []byte(subj), a.words)
		f.FieldOptions |= bluge.SearchTermPositions | bluge.Store
		if k := subjectSortKey(subj); k != "" {
			doc = append(doc, sortable(newKeywordField(fieldSortSubj, []byte(k), a.scratch)))
		}
	}
	if d.Body != "" {
		f := addField(fieldBody, []byte(truncate(d.Body, MaxBody)), a.words)
		f.FieldOptions |= bluge.SearchTermPositions // phrases
	}
	if f := addField(fieldAttachment, joinList(d.Attachments, maxAttachments, appendClean), a.att); f != nil {
		f.FieldOptions |= bluge.SearchTermPositions
	}
	names, values := joinHeaders(d)
	addField(fieldHeaderName, names, a.list)
	if f := addField(fieldHeader, values, a.header); f != nil {
		f.FieldOptions |= bluge.SearchTermPositions
	}
	doc = append(doc, numericField(fieldReceived, clampTime(d.Received).Unix()))
	if !d.Sent.IsZero() {
		addField(fieldSentDay, appendDayTerms(nil, clampTime(d.Sent)), a.list)
	}
	hasAtt := "0"
	if d.HasAttachment {
		hasAtt = "1"
	}
	doc = append(doc, newKeywordField(fieldHasAtt, []byte(hasAtt), a.scratch))
	if len(d.From) > 0 {
		if k := addressSortKey(d.From[0]); k != "" {
			doc = append(doc, sortable(newKeywordField(fieldSortFrom, []byte(k), a.scratch)))
		}
	}
	return doc
}

// sortable keeps f's terms as doc values, for sorting.
func sortable(f *textField) *textField {
	f.FieldOptions |= bluge.Sortable
	return f
}

// numericField is searchable by range only: sorting reads the packed meta.
func numericField(name string, v int64) *bluge.TermField {
	f := bluge.NewNumericField(name, float64(v))
	f.FieldOptions = bluge.Index
	return f
}

// joinList encodes up to limit items as the value of a multi-valued field.
func joinList[T any](items []T, limit int, appendItem func([]byte, T) []byte) []byte {
	var b []byte
	for i, it := range items[:min(len(items), limit)] {
		if i > 0 {
			b = append(b, valueSep)
		}
		b = appendItem(b, it)
	}
	return b
}

// joinAddresses encodes addresses for addressAnalyzer.
func joinAddresses(as []Address) []byte {
	return joinList(as, maxAddresses, func(b []byte, a Address) []byte {
		b = appendClean(b, a.Email)
		if a.Name != "" {
			b = append(b, nameSep)
			b = appendClean(b, a.Name)
		}
		return b
	})
}

// joinHeaders encodes header names for the keyword list and the values for
// headerAnalyzer, within maxHeaderBytes.
func joinHeaders(d *Doc) (names, values []byte) {
	add := func(name, value string) {
		if len(names) > 0 {
			names = append(names, valueSep)
		}
		names = appendClean(names, name)
		if value == "" || routedHeader(name) || !HeaderValueIndexed(name) || len(values)+len(value) > maxHeaderBytes {
			return
		}
		if len(values) > 0 {
			values = append(values, valueSep)
		}
		values = appendClean(values, name)
		values = append(values, nameSep)
		values = appendClean(values, value)
	}
	for _, h := range d.Headers {
		name := strings.ToLower(strings.TrimSpace(h.Name))
		if name == "" || name == "message-id" && d.MessageID != "" {
			continue
		}
		add(name, h.Value)
	}
	if d.MessageID != "" {
		add("message-id", d.MessageID)
	}
	return names, values
}

// appendClean appends s without the separator bytes of multi-valued fields.
func appendClean(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == valueSep || c == nameSep {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

// sortKey lower-cases s into valid UTF-8 (doc values must not hold 0xff).
func sortKey(s string) string {
	return truncate(strings.ToLower(strings.ToValidUTF8(strings.TrimSpace(s), "")), maxSortKeyBytes)
}

// addressSortKey is JMAP's "from" order: the display name, else the address.
func addressSortKey(a Address) string {
	if k := sortKey(a.Name); k != "" {
		return k
	}
	return sortKey(a.Email)
}

// subjectSortKey is the subject without reply and forward prefixes (a
// simplified RFC 5256 base subject), lower case.
func subjectSortKey(s string) string {
	s = strings.TrimSpace(s)
	for {
		t := strings.TrimLeft(s, " \t")
		if strings.HasPrefix(t, "[") {
			if end := strings.IndexByte(t, ']'); end > 0 && strings.TrimSpace(t[end+1:]) != "" {
				t = t[end+1:]
			}
		}
		t = strings.TrimLeft(t, " \t")
		t = trimReplyPrefix(t)
		if t == s {
			return sortKey(s)
		}
		s = t
	}
}

// trimReplyPrefix removes one "Re:", "Fwd:", "AW:", "Re[2]:"... prefix.
func trimReplyPrefix(s string) string {
	colon := strings.IndexByte(s, ':')
	if colon <= 0 || colon > 12 {
		return s
	}
	word := strings.ToLower(s[:colon])
	if open := strings.IndexByte(word, '['); open > 0 && strings.HasSuffix(word, "]") {
		word = word[:open]
	}
	switch strings.TrimSpace(word) {
	case "re", "fw", "fwd", "aw", "wg", "sv", "vs", "antw", "tr", "rif", "r", "i", "enc", "doorst":
		return s[colon+1:]
	}
	return s
}

// The packed meta doc value: MID, received, sent, size, then (folder, uid)
// pairs, each a var (see appendVar). Times are seconds since minTime; sent
// is stored +1 so that 0 means unknown.
func encodeMeta(d *Doc) []byte {
	b := make([]byte, 0, 24+8*len(d.Members))
	b = appendVar(b, d.MID)
	b = appendVar(b, uint64(clampTime(d.Received).Unix()-minTime.Unix()))
	var sent uint64
	if !d.Sent.IsZero() {
		sent = uint64(clampTime(d.Sent).Unix()-minTime.Unix()) + 1
	}
	b = appendVar(b, sent)
	b = appendVar(b, uint64(max(d.Size, 0)))
	members := slices.Clone(d.Members)
	slices.SortFunc(members, func(x, y Member) int {
		if c := cmp.Compare(x.Folder, y.Folder); c != 0 {
			return c
		}
		return cmp.Compare(x.UID, y.UID)
	})
	for _, m := range slices.Compact(members) {
		b = appendVar(b, m.Folder)
		b = appendVar(b, uint64(m.UID))
	}
	return b
}

// meta is the decoded head of the packed meta; members stay encoded.
type meta struct {
	mid, received, sent, size uint64
	members                   []byte
}

func decodeMeta(b []byte) (m meta, ok bool) {
	var n1, n2, n3, n4 int
	m.mid, n1 = readVar(b)
	m.received, n2 = readVar(b[n1:])
	m.sent, n3 = readVar(b[n1+n2:])
	m.size, n4 = readVar(b[n1+n2+n3:])
	if n1 == 0 || n2 == 0 || n3 == 0 || n4 == 0 {
		return meta{}, false
	}
	m.members = b[n1+n2+n3+n4:]
	return m, true
}

// appendVar encodes v in 7-bit groups, least significant first; the last
// byte carries 6 bits and the 0x80 flag. No byte is ever 0xfe or 0xff, which
// bluge doc values reserve as a separator.
func appendVar(b []byte, v uint64) []byte {
	for v >= 0x40 {
		b = append(b, byte(v&0x7f))
		v >>= 7
	}
	return append(b, 0x80|byte(v))
}

// readVar decodes a var; n is 0 when b holds none.
func readVar(b []byte) (v uint64, n int) {
	var shift uint
	for i, c := range b {
		if shift > 63 {
			return 0, 0
		}
		if c&0x80 != 0 {
			if c >= 0xc0 {
				return 0, 0
			}
			return v | uint64(c&0x3f)<<shift, i + 1
		}
		v |= uint64(c) << shift
		shift += 7
	}
	return 0, 0
}
