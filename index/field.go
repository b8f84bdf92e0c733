package index

import (
	"sync"
	"unsafe"

	"github.com/blugelabs/bluge"
	"github.com/blugelabs/bluge/analysis"
	segment "github.com/blugelabs/bluge_segment_api"
)

// textField is the bluge field of every analyzed field of a message.
// bluge's TermField rolls its tokens up into a map with an object per term
// and another per location, garbage by the hundred per message; textField
// keeps its terms in one slice and their locations in another, finding
// repeats through a map reused from field to field. It indexes the same
// terms, frequencies and locations.
type textField struct {
	bluge.FieldOptions
	name     string
	value    []byte
	analyzer bluge.Analyzer
	scratch  *sync.Pool // of *termScratch
	length   int
	terms    []fieldTerm
	preset   bool // terms given, not analyzed (newPresetField)
}

// termScratch is reused between fields: which term each token is.
type termScratch struct {
	ids   map[string]int32
	ofTok []int32
	first [][]byte // term of each id
	// token buffers of the word analyzer; they may hold on to the bytes
	// of the last document analyzed until reused or collected
	toks   []analysis.Token
	stream analysis.TokenStream
}

func newTermScratchPool() *sync.Pool {
	return &sync.Pool{New: func() any { return &termScratch{ids: make(map[string]int32)} }}
}

func newTextField(name string, value []byte, an bluge.Analyzer, scratch *sync.Pool) *textField {
	return &textField{FieldOptions: bluge.Index, name: name, value: value, analyzer: an, scratch: scratch}
}

// newKeywordField is a field whose whole value is its one term, as bluge's
// NewKeywordField.
func newKeywordField(name string, value []byte, scratch *sync.Pool) *textField {
	return newTextField(name, value, nil, scratch)
}

type fieldTerm struct {
	term []byte
	freq int
	locs []fieldLoc
}

// fieldLoc is a term position. Byte offsets are not kept: phrases need
// positions only, snippets analyze the text again, and offsets cost the
// segment two varints per word.
type fieldLoc struct {
	pos int
}

func (f *textField) Name() string            { return f.name }
func (f *textField) Length() int             { return f.length }
func (f *textField) Value() []byte           { return f.value }
func (f *textField) Size() int               { return len(f.value) + len(f.terms)*int(unsafe.Sizeof(fieldTerm{})) }
func (*textField) PositionIncrementGap() int { return 100 }

// AnalyzedTokenFrequencies serves bluge's composite fields, which mailvault
// does not use.
func (*textField) AnalyzedTokenFrequencies() analysis.TokenFrequencies { return nil }

func (f *textField) EachTerm(vt segment.VisitTerm) {
	for i := range f.terms {
		vt(&f.terms[i])
	}
}

// newPresetField is a field of the given distinct terms, each once,
// without locations.
func newPresetField(name string, terms [][]byte) *textField {
	f := &textField{FieldOptions: bluge.Index, name: name, preset: true, length: len(terms)}
	f.terms = make([]fieldTerm, len(terms))
	for i, t := range terms {
		f.terms[i] = fieldTerm{term: t, freq: 1}
	}
	return f
}

// Analyze tokenizes the value and counts its terms; positions start after
// startOffset as in bluge.
func (f *textField) Analyze(startOffset int) int {
	if f.preset {
		return startOffset
	}
	input := f.value
	if f.Store() {
		input = append([]byte(nil), input...) // analyzers lower-case in place
	}
	sc := f.scratch.Get().(*termScratch)
	defer f.scratch.Put(sc)
	tokens := f.analyze(input, sc)
	f.length = len(tokens)
	clear(sc.ids)
	sc.ofTok, sc.first = sc.ofTok[:0], sc.first[:0]
	for _, t := range tokens {
		// The key points into the token and lives only until the clear
		// above, at the next field.
		k := unsafe.String(unsafe.SliceData(t.Term), len(t.Term))
		id, ok := sc.ids[k]
		if !ok {
			id = int32(len(sc.first))
			sc.ids[k] = id
			sc.first = append(sc.first, t.Term)
		}
		sc.ofTok = append(sc.ofTok, id)
	}
	f.terms = make([]fieldTerm, len(sc.first))
	for i, term := range sc.first {
		f.terms[i].term = term
	}
	clear(sc.first) // drop the references to this document's bytes
	for _, id := range sc.ofTok {
		f.terms[id].freq++
	}
	pos := startOffset
	if !f.IncludeLocations() {
		return pos
	}
	// One array holds every location; each term's slice of it has room
	// for exactly its frequency, so the appends below never reallocate.
	locs := make([]fieldLoc, len(tokens))
	n := 0
	for i := range f.terms {
		f.terms[i].locs = locs[n : n : n+f.terms[i].freq]
		n += f.terms[i].freq
	}
	for i, t := range tokens {
		pos += t.PositionIncr
		term := &f.terms[sc.ofTok[i]]
		term.locs = append(term.locs, fieldLoc{pos: pos})
	}
	return pos
}

// analyze runs the field's analyzer. The word analyzer (subject and body,
// most of the tokens) tokenizes into the scratch's buffers: the tokens are
// counted and dropped within Analyze, and the terms kept point into the
// input, not into the tokens.
func (f *textField) analyze(input []byte, sc *termScratch) analysis.TokenStream {
	if f.analyzer == nil { // a keyword: the value is the one term
		sc.toks = append(sc.toks[:0], analysis.Token{Term: input, End: len(input), PositionIncr: 1, Type: analysis.AlphaNumeric})
		sc.stream = append(sc.stream[:0], &sc.toks[0])
		return sc.stream
	}
	an, ok := f.analyzer.(*analysis.Analyzer)
	if !ok {
		return f.analyzer.Analyze(input)
	}
	wt, ok := an.Tokenizer.(wordTokenizer)
	if !ok {
		return f.analyzer.Analyze(input)
	}
	sc.toks = wt.appendTokens(sc.toks[:0], input)
	sc.stream = sc.stream[:0]
	for i := range sc.toks {
		sc.stream = append(sc.stream, &sc.toks[i])
	}
	ts := sc.stream
	for _, filter := range an.TokenFilters {
		ts = filter.Filter(ts)
	}
	return ts
}

func (t *fieldTerm) Term() []byte   { return t.term }
func (t *fieldTerm) Frequency() int { return t.freq }

func (t *fieldTerm) EachLocation(vl segment.VisitLocation) {
	for i := range t.locs {
		vl(&t.locs[i])
	}
}

func (*fieldLoc) Field() string { return "" }
func (*fieldLoc) Start() int    { return 0 }
func (*fieldLoc) End() int      { return 0 }
func (l *fieldLoc) Pos() int    { return l.pos }
func (*fieldLoc) Size() int     { return int(unsafe.Sizeof(fieldLoc{})) }
