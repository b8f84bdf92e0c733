package index

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/blugelabs/bluge"
	"github.com/blugelabs/bluge/search"
	"github.com/blugelabs/bluge/search/searcher"
	"github.com/blugelabs/bluge/search/similarity"
	segment "github.com/blugelabs/bluge_segment_api"
)

// Substring search (IMAP's SEARCH semantics) needs the indexed words that
// contain a string anywhere: "echnung" must find "rechnung" and
// "rechnungsnummer". Every batch writes one vocabulary document besides its
// messages: for each distinct word of the batch's text and address fields
// and each of its suffixes, the term "suffix\x00rest", where rest is the
// part of the word before the suffix. A prefix range over these terms lists
// the words containing a string; "s\x00" lists those ending with s. The
// vocabulary costs terms per distinct word of a batch, not per word of
// every message, and lands in the batch's own segment, so it is exactly as
// durable as the messages it describes. A vocabulary document has no
// folder: no scoped search returns it.
const (
	// maxVocabWord: longer words (base64 runs, hashes, long URLs) are
	// found by their beginning only.
	maxVocabWord = 48
	// maxSubstringWords bounds the words one substring stands for; beyond
	// it the string matches as the start of a word only.
	maxSubstringWords = 1 << 16
	vocabKind         = "v"
)

// vocabSource tells the fields whose words go into the vocabulary.
func vocabSource(field string) bool {
	switch field {
	case fieldSubject, fieldBody, fieldAttachment, fieldHeader,
		fieldFrom, fieldTo, fieldCc, fieldBcc, fieldRcpt:
		return true
	}
	return false
}

// vocabSet gathers the distinct words of a batch that the vocabulary does
// not hold yet; its keys point into analyzed documents, which outlive it.
type vocabSet struct {
	words map[string]bool          // true: new, false: known from earlier batches
	known segment.DictionaryLookup // the vocabulary of earlier batches; nil: none
	mark  []byte                   // see vocabMark
	key   []byte
}

func (v *vocabSet) addDoc(doc bluge.Document) {
	for _, f := range doc {
		tf, ok := f.(*textField)
		if !ok || !vocabSource(tf.name) {
			continue
		}
		for i := range tf.terms {
			t := tf.terms[i].term
			if len(t) == 0 || len(t) > maxVocabWord || (tf.name == fieldHeader && bytes.IndexByte(t, nameSep) >= 0) {
				continue
			}
			w := unsafe.String(unsafe.SliceData(t), len(t))
			if _, ok := v.words[w]; ok {
				continue
			}
			isNew := true
			if v.known != nil {
				// The whole word's term tells a known word. A word known
				// from a snapshot older than the last batch only costs a
				// repeated entry.
				v.key = append(append(v.key[:0], t...), v.mark...)
				found, err := v.known.Contains(v.key)
				isNew = err != nil || !found
			}
			v.words[w] = isNew
		}
	}
}

// vocabMark ends the term of a whole word: "\x00\x01" and the vocabulary's
// generation, which each rebuild (Rewind to 0) counts up. A rebuild
// deletes the vocabulary documents, but their terms stay in the segments'
// dictionaries until merged: the generation keeps them from passing for
// known words.
func vocabMark(gen uint64) []byte {
	return strconv.AppendUint([]byte{nameSep, 1}, gen, 36)
}

// vocabDoc builds the vocabulary document of a batch of words, those true
// in words.
func vocabDoc(id string, words map[string]bool, mark []byte, scratch *sync.Pool) analyzedDoc {
	size := 0
	n := 0
	for w, isNew := range words {
		if !isNew {
			continue
		}
		runes := utf8.RuneCountInString(w)
		size += runes*(len(w)+1) + len(mark)
		n += runes
	}
	buf := make([]byte, 0, size)
	terms := make([][]byte, 0, n)
	for w, isNew := range words {
		if !isNew {
			continue
		}
		for i := range w {
			if !utf8.RuneStart(w[i]) {
				continue
			}
			start := len(buf)
			buf = append(buf, w[i:]...)
			if i == 0 {
				buf = append(buf, mark...)
			} else {
				buf = append(buf, nameSep)
				buf = append(buf, w[:i]...)
			}
			terms = append(terms, buf[start:len(buf):len(buf)])
		}
	}
	doc := bluge.Document{
		newKeywordField(fieldID, []byte(id), scratch),
		newPresetField(fieldKind, [][]byte{[]byte(vocabKind)}),
		newPresetField(fieldVocab, terms),
	}
	doc.Analyze() // the id's term; the preset fields are ready
	return analyzedDoc{Document: doc, id: bluge.Identifier(id)}
}

// vocabID names the vocabulary document of a batch of messages first..last
// prepared at nanosecond now. Each is unique: a batch fed again must not
// replace the document its words were found known in.
func vocabID(first, last uint64, now int64) string {
	return "v" + strconv.FormatUint(first, 10) + "-" + strconv.FormatUint(last, 10) + "-" + strconv.FormatInt(now, 36)
}

// vocabMode selects the words vocabWords lists.
type vocabMode uint8

const (
	wordsContaining vocabMode = iota
	wordsEndingWith
)

// vocabWords lists the distinct indexed words containing (or ending with)
// s, at most limit of them; complete is false when there were more.
func vocabWords(r search.Reader, s string, mode vocabMode, limit int) (words []string, complete bool, err error) {
	start, end := []byte(s), prefixEnd(s)
	if mode == wordsEndingWith {
		start = append([]byte(s), nameSep)
		end = append([]byte(s), nameSep+1)
	}
	it, err := r.DictionaryIterator(fieldVocab, nil, start, end)
	if err != nil {
		return nil, false, fmt.Errorf("vocabulary %q: %w", s, err)
	}
	defer it.Close()
	seen := make(map[string]struct{})
	for {
		e, err := it.Next()
		if err != nil {
			return nil, false, fmt.Errorf("vocabulary %q: %w", s, err)
		}
		if e == nil {
			return words, true, nil
		}
		term := e.Term()
		sep := bytesIndexString(term, nameSep)
		if sep < 0 {
			continue
		}
		rest := term[sep+1:]
		if rest != "" && rest[0] == 1 {
			rest = "" // the whole word, see vocabMark
		}
		w := rest + term[:sep]
		if _, ok := seen[w]; ok {
			continue
		}
		if len(words) == limit {
			return words, false, nil
		}
		seen[w] = struct{}{}
		words = append(words, w)
	}
}

func bytesIndexString(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// substringQuery matches s (already split into index words) as a substring
// of one of fields: one word anywhere inside an indexed word; several as a
// phrase whose first word ends an indexed word and whose last word starts
// one. In address fields, which have no word positions, every word must be
// inside one of the field's terms.
type substringQuery struct {
	ix     *Index
	fields []string
	words  []string
}

func (q substringQuery) Searcher(r search.Reader, opts search.SearcherOptions) (search.Searcher, error) {
	var ss []search.Searcher
	closeAll := func() {
		for _, s := range ss {
			_ = s.Close()
		}
	}
	containing := make([][]string, len(q.words))
	inside := func(i int) ([]string, error) {
		if containing[i] == nil {
			ws, complete, err := vocabWords(r, q.words[i], wordsContaining, maxSubstringWords)
			if err != nil {
				return nil, err
			}
			if !complete {
				q.ix.log.Debug("index: substring too common, matching word starts", "substring", q.words[i])
				if ws, err = q.ix.expand(r, fieldBody, q.words[i], false); err != nil {
					return nil, err
				}
			}
			containing[i] = append(ws, q.words[i]) // the vocabulary of an index written before it existed
		}
		return containing[i], nil
	}
	for _, f := range q.fields {
		var s search.Searcher
		var err error
		switch {
		case isAddressField(f):
			s, err = q.allInside(r, f, inside, opts)
		case len(q.words) == 1:
			var ws []string
			if ws, err = inside(0); err == nil {
				s, err = termsSearcher(r, f, ws, opts)
			}
		default:
			s, err = q.phrase(r, f, opts)
		}
		if err != nil {
			closeAll()
			return nil, err
		}
		ss = append(ss, s)
	}
	if len(ss) == 1 {
		return ss[0], nil
	}
	return searcher.NewDisjunctionSearcher(r, ss, 1, similarity.NewCompositeSumScorer(), opts)
}

func isAddressField(f string) bool {
	switch f {
	case fieldFrom, fieldTo, fieldCc, fieldBcc, fieldRcpt:
		return true
	}
	return false
}

// allInside matches when every word is inside a term of field.
func (q substringQuery) allInside(r search.Reader, field string, inside func(int) ([]string, error), opts search.SearcherOptions) (search.Searcher, error) {
	var ss []search.Searcher
	for i := range q.words {
		ws, err := inside(i)
		if err == nil {
			var s search.Searcher
			if s, err = termsSearcher(r, field, ws, opts); err == nil {
				ss = append(ss, s)
			}
		}
		if err != nil {
			for _, s := range ss {
				_ = s.Close()
			}
			return nil, err
		}
	}
	if len(ss) == 1 {
		return ss[0], nil
	}
	return searcher.NewConjunctionSearcher(r, ss, similarity.NewCompositeSumScorer(), opts)
}

// phrase matches the words at consecutive positions of field: the first
// ending an indexed word, the last starting one. A first or last word
// standing for more than maxExpansion words matches whole words only: the
// phrase searcher's disjunctions are capped there.
func (q substringQuery) phrase(r search.Reader, field string, opts search.SearcherOptions) (search.Searcher, error) {
	n := len(q.words)
	first, complete, err := vocabWords(r, q.words[0], wordsEndingWith, maxExpansion)
	if err != nil {
		return nil, err
	}
	if !complete || len(first) == 0 {
		first = []string{q.words[0]}
	}
	last, err := q.ix.expand(r, field, q.words[n-1], false)
	if err != nil {
		return nil, err
	}
	if field == fieldHeader {
		// Header terms "name\x00word" sit beside each plain word.
		last = deleteWithSep(last)
		if len(last) == 0 {
			last = []string{q.words[n-1]}
		}
	}
	phrase := make([][]string, n)
	phrase[0] = first
	for i := 1; i < n-1; i++ {
		phrase[i] = []string{q.words[i]}
	}
	phrase[n-1] = last
	return searcher.NewMultiPhraseSearcher(r, phrase, field, similarity.ConstantScorer(1), opts)
}

func deleteWithSep(terms []string) []string {
	out := terms[:0]
	for _, t := range terms {
		if bytesIndexString(t, nameSep) < 0 {
			out = append(out, t)
		}
	}
	return out
}
