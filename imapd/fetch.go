package imapd

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"runtime"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/mailparse"
)

// loaded is what FETCH needs of one message.
type loaded struct {
	pos  int
	info backend.MessageInfo
	env  *imap.Envelope
	sum  *mailparse.Summary
	// head, when set, serves the header sections and the structure
	// instead of sum and raw.
	head *mailparse.Head
	// rendered, when set, is the BODYSTRUCTURE as written; fields the
	// FETCH's one HEADER.FIELDS (.NOT) section, before any <partial>.
	rendered, fields []byte
	raw              []byte
	err              error
}

// structure returns the message's MIME tree.
func (m *loaded) structure() *mailparse.Part {
	if m.head != nil {
		return m.head.Structure
	}
	return m.sum.Structure
}

// Fetch answers FETCH and UID FETCH from metadata, the stored Summary and,
// for body sections, the archived bytes.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	t, sel, err := s.current()
	if err != nil {
		return err
	}
	if options.Vanished {
		if err := s.writeVanished(t, sel, w, numSet, options.ChangedSince); err != nil {
			return err
		}
	}
	spans := s.spans(sel, numSet)
	if len(spans) == 0 {
		return nil
	}
	bodies := len(options.BodySection) > 0 || len(options.BinarySection) > 0 || len(options.BinarySectionSize) > 0
	// Header sections and the structure come from the heads stored with
	// the summaries, read in batches; other sections from the message.
	heads := headerSectionsOnly(options) && (bodies || options.BodyStructure != nil)
	needRaw := bodies && !heads
	needSum := !heads && (needRaw || options.BodyStructure != nil)
	// A listing of structures alone, or of one set of header fields,
	// writes them as kept from an earlier FETCH, if the tenant still has
	// them (backend.Tenant.Rendered).
	var render *renderSlot
	if ext, nonExt := w.BodyStructureItems(); heads && ext && !nonExt && !bodies && !options.Envelope {
		render = &renderSlot{}
		if en := s.enabled(); en.Has(imap.CapIMAP4rev2) || en.Has(imap.CapUTF8Accept) {
			render.slot, render.utf8 = slotStructureUTF8, true
		}
	}
	if bs := options.BodySection; heads && len(bs) == 1 && len(bs[0].HeaderFields)+len(bs[0].HeaderFieldsNot) > 0 && options.BodyStructure == nil && !options.Envelope {
		render = &renderSlot{fields: bs[0], slot: fieldsSlot(bs[0])}
	}
	if bodies || options.BodyStructure != nil || options.Envelope {
		var items []string
		if options.Envelope {
			items = append(items, "ENVELOPE")
		}
		if options.BodyStructure != nil {
			items = append(items, "BODYSTRUCTURE")
		}
		if bodies {
			items = append(items, "BODY")
		}
		s.audit(t, "imap-fetch", fmt.Sprintf("%s uids %s %s", sel.ref.display(), uidSetOf(sel.uids, spans), strings.Join(items, " ")))
	}

	var overlay map[uint32][]string
	setSeen := map[uint32]bool{}
	if options.Flags || !sel.readOnly && marksSeen(options) {
		if overlay, err = t.FlagOverlay(s.login, sel.ref.info.ID); err != nil {
			return s.fail("fetch", err)
		}
	}
	defaults := backend.DefaultFlags()
	flagsOf := func(uid uint32) []string {
		if fl, ok := overlay[uid]; ok {
			return fl
		}
		return defaults
	}
	if !sel.readOnly && marksSeen(options) {
		// Reading a body marks it \Seen (RFC 9051 6.4.5), in the user's
		// overlay only.
		var unseen []uint32
		for _, sp := range spans {
			for i := sp.lo; i < sp.hi; i++ {
				if !slices.Contains(flagsOf(sel.uids[i]), backend.FlagSeen) {
					unseen = append(unseen, sel.uids[i])
				}
			}
		}
		if len(unseen) > 0 {
			changed, err := t.StoreFlags(s.ctx, s.login, sel.ref.info.ID, unseen, backend.FlagsAdd, []string{backend.FlagSeen})
			if err != nil {
				return s.fail("fetch", err)
			}
			for uid, fl := range changed {
				overlay[uid] = fl
				setSeen[uid] = true
			}
		}
	}

	// MODSEQ and CHANGEDSINCE (RFC 7162): the user's mod-sequences of the
	// folder, read after the \Seen above; CHANGEDSINCE keeps the messages
	// changed after it.
	var modSeqs []uint64
	if options.ModSeq {
		if _, modSeqs, err = t.ModSeqs(s.login, sel.ref.info.ID, sel.uids, sel.mids); err != nil {
			return s.fail("fetch", err)
		}
		if options.ChangedSince > 0 {
			spans = changedSpans(spans, modSeqs, options.ChangedSince)
			if len(spans) == 0 {
				return nil
			}
		}
	}

	var failed []uint32
	err = s.load(t, sel, spans, options.Envelope, needSum, needRaw, heads, options.BodyStructure != nil, render, func(m *loaded) error {
		uid := sel.uids[m.pos]
		if m.err != nil {
			s.srv.log.Error("imap fetch: cannot read message", "tenant", s.tenant, "folder", sel.ref.display(), "uid", uid, "err", m.err)
			failed = append(failed, uid)
			return nil
		}
		var ms uint64
		if modSeqs != nil {
			ms = modSeqs[m.pos]
		}
		return writeMessage(w, m, uid, options, flagsOf(uid), ms, setSeen[uid])
	})
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeServerBug,
			Text: fmt.Sprintf("%d messages could not be read (UIDs %s); the administrator should run mailvault verify", len(failed), imap.UIDSetNum(uids32(failed)...))}
	}
	return nil
}

// changedSpans keeps of spans the positions whose mod-sequence is above
// since.
func changedSpans(spans []span, modSeqs []uint64, since uint64) []span {
	var out []span
	for _, sp := range spans {
		for i := sp.lo; i < sp.hi; i++ {
			if modSeqs[i] <= since {
				continue
			}
			if n := len(out); n > 0 && out[n-1].hi == i {
				out[n-1].hi++
			} else {
				out = append(out, span{i, i + 1})
			}
		}
	}
	return out
}

func uids32(l []uint32) []imap.UID {
	out := make([]imap.UID, len(l))
	for i, u := range l {
		out[i] = imap.UID(u)
	}
	return out
}

// headerSectionsOnly reports whether every section the FETCH asks for is
// the message's header or fields of it (BODY[HEADER], BODY[HEADER.FIELDS
// (...)], RFC822.HEADER).
func headerSectionsOnly(options *imap.FetchOptions) bool {
	if len(options.BinarySection) > 0 || len(options.BinarySectionSize) > 0 {
		return false
	}
	for _, bs := range options.BodySection {
		if len(bs.Part) > 0 || bs.Specifier != imap.PartSpecifierHeader {
			return false
		}
	}
	return true
}

// marksSeen reports whether the FETCH reads a body without .PEEK.
func marksSeen(options *imap.FetchOptions) bool {
	for _, bs := range options.BodySection {
		if !bs.Peek {
			return true
		}
	}
	for _, bs := range options.BinarySection {
		if !bs.Peek {
			return true
		}
	}
	return false
}

// load reads the messages of spans in order and hands each to emit. Reading
// summaries and blobs (decrypting, decompressing) is spread over the CPUs,
// while emit runs in order on the caller's goroutine.
func (s *session) load(t *backend.Tenant, sel *selection, spans []span, needEnv, needSum, needRaw, heads, needStructure bool, render *renderSlot, emit func(*loaded) error) error {
	one := func(pos int) *loaded {
		m := &loaded{pos: pos}
		mid := sel.mids[pos]
		if m.info, m.err = t.Message(mid); m.err != nil {
			return m
		}
		if needSum {
			if m.sum, m.err = t.Summary(s.ctx, mid); m.err != nil {
				return m
			}
			if needEnv {
				m.env = envelope(&m.sum.Envelope)
			}
		}
		if needRaw {
			m.raw, m.err = t.RawMessage(s.ctx, mid)
		}
		return m
	}
	// Listing a folder (envelopes, header sections or structure, no other
	// body): the backend reads the summaries of a chunk in one pass over
	// the summary log.
	listing := heads || needEnv && !needSum
	loadChunk := func(pos []int) ([]*loaded, error) {
		res := make([]*loaded, len(pos))
		if !listing {
			for k, p := range pos {
				res[k] = one(p)
			}
			return res, nil
		}
		mids := make([]uint64, len(pos))
		for k, p := range pos {
			mids[k] = sel.mids[p]
		}
		if render != nil {
			return s.loadRendered(t, pos, mids, render)
		}
		var list []backend.ListedMessage
		var err error
		if heads {
			list, err = t.ListHeads(s.ctx, mids, needEnv, needStructure)
		} else {
			list, err = t.ListMessages(s.ctx, mids)
		}
		if err != nil {
			return nil, err
		}
		all := make([]loaded, len(pos))
		for k, p := range pos {
			l := &list[k]
			all[k] = loaded{pos: p, info: l.MessageInfo, head: l.Head, err: l.Err}
			if l.Err == nil && needEnv {
				// Converted here, off the connection's goroutine.
				all[k].env = envelope(l.Envelope)
			}
			res[k] = &all[k]
		}
		return res, nil
	}
	var positions []int
	for _, sp := range spans {
		for i := sp.lo; i < sp.hi; i++ {
			positions = append(positions, i)
		}
	}
	// Whole messages can be large, so they go one at a time; envelopes go
	// in chunks, large enough for long sequential reads of the summary log
	// and rare hand-offs. The window below bounds memory to a few chunks
	// per worker.
	chunk := 64
	switch {
	case needRaw:
		chunk = 1
	case listing:
		chunk = 256
	}
	workers := min(runtime.GOMAXPROCS(0), (len(positions)+chunk-1)/chunk)
	if !needEnv && !needSum && !heads || workers < 2 {
		for lo := 0; lo < len(positions); lo += chunk {
			res, err := loadChunk(positions[lo:min(lo+chunk, len(positions))])
			if err != nil {
				return s.fail("fetch", err)
			}
			for _, m := range res {
				if err := emit(m); err != nil {
					return err
				}
			}
		}
		return nil
	}
	type result struct {
		msgs []*loaded
		err  error
	}
	type job struct {
		pos []int
		out chan result
	}
	window := make(chan chan result, 4*workers)
	jobs := make(chan job, 4*workers)
	stop := make(chan struct{})
	defer close(stop)
	for range workers {
		go func() {
			for j := range jobs {
				msgs, err := loadChunk(j.pos)
				j.out <- result{msgs, err}
			}
		}()
	}
	go func() {
		defer close(jobs)
		defer close(window)
		for lo := 0; lo < len(positions); lo += chunk {
			out := make(chan result, 1)
			select {
			case window <- out:
			case <-stop:
				return
			}
			select {
			case jobs <- job{positions[lo:min(lo+chunk, len(positions))], out}:
			case <-stop:
				return
			}
		}
	}()
	for out := range window {
		res := <-out
		if res.err != nil {
			return s.fail("fetch", res.err)
		}
		for _, m := range res.msgs {
			if err := emit(m); err != nil {
				return err
			}
		}
	}
	return nil
}

// renderSlot says what is kept: BODYSTRUCTUREs as written with or without
// UTF-8 in quoted strings, or the header fields one section names.
type renderSlot struct {
	slot   uint64
	utf8   bool
	fields *imap.FetchItemBodySection
}

// The slots of backend.Tenant.Rendered that imapd uses for structures;
// those of header fields (fieldsSlot) have the top bit set.
const (
	slotStructure uint64 = iota
	slotStructureUTF8
)

// fieldsSlot names a set of header fields (or all but them), whatever
// their order and case.
func fieldsSlot(bs *imap.FetchItemBodySection) uint64 {
	names, not := bs.HeaderFields, false
	if len(names) == 0 {
		names, not = bs.HeaderFieldsNot, true
	}
	l := make([]string, len(names))
	for i, n := range names {
		l[i] = strings.ToLower(n)
	}
	slices.Sort(l)
	l = slices.Compact(l)
	h := fnv.New64a()
	fmt.Fprint(h, not, l)
	return h.Sum64() | 1<<63
}

// loadRendered loads the messages at pos (MIDs mids) with their
// BODYSTRUCTURE as written: as kept, or from the head, then kept.
func (s *session) loadRendered(t *backend.Tenant, pos []int, mids []uint64, render *renderSlot) ([]*loaded, error) {
	infos, err := t.MessageInfos(mids)
	if err != nil {
		return nil, err
	}
	kept := make([][]byte, len(mids))
	t.Rendered(mids, render.slot, kept)
	var miss []int
	for k := range mids {
		if kept[k] == nil {
			miss = append(miss, k)
		}
	}
	all := make([]loaded, len(pos))
	res := make([]*loaded, len(pos))
	if len(miss) > 0 {
		missMIDs := make([]uint64, len(miss))
		for i, k := range miss {
			missMIDs[i] = mids[k]
		}
		list, err := t.ListHeads(s.ctx, missMIDs, false, render.fields == nil)
		if err != nil {
			return nil, err
		}
		for i, k := range miss {
			if all[k].err = list[i].Err; all[k].err != nil {
				continue
			}
			if f := render.fields; f != nil {
				kept[k] = appendHeaderFields(nil, list[i].Head.Header, f.HeaderFields, false)
				if len(f.HeaderFields) == 0 {
					kept[k] = appendHeaderFields(nil, list[i].Head.Header, f.HeaderFieldsNot, true)
				}
			} else {
				kept[k] = imapserver.AppendBodyStructure(nil, bodyStructure(list[i].Head.Structure), true, render.utf8)
			}
			t.KeepRendered(mids[k], render.slot, kept[k])
		}
	}
	for k, p := range pos {
		all[k].pos, all[k].info = p, infos[k]
		if render.fields != nil {
			all[k].fields = kept[k]
		} else {
			all[k].rendered = kept[k]
		}
		res[k] = &all[k]
	}
	return res, nil
}

// writeMessage writes the FETCH response of one message; seenNow says the
// FETCH just set \Seen, which the client must be told.
func writeMessage(w *imapserver.FetchWriter, m *loaded, uid uint32, options *imap.FetchOptions, flags []string, modSeq uint64, seenNow bool) error {
	// Compute every section before the response starts: the writer holds
	// the connection until Close.
	type section struct {
		body   *imap.FetchItemBodySection
		binary *imap.FetchItemBinarySection
		data   []byte
		crlf   bool // data has bare LFs, written as CRLF
	}
	// IMAP presents messages with CRLF line ends: those archived with bare
	// LFs (known at ingest) are converted while written.
	bare := m.info.IMAPSize != m.info.Size
	var sections []section
	for _, bs := range options.BodySection {
		var data []byte
		var crlf bool
		switch {
		case m.fields != nil:
			data = m.fields
			if bs.Partial != nil {
				data = partial(data, bs.Partial.Offset, bs.Partial.Size)
			}
		case m.head != nil:
			// The stored head is in CRLF form already.
			data, _ = headerSection(m.head.Header, bs, false)
		default:
			data, crlf = bodySection(m.sum, m.raw, bs, bare)
		}
		sections = append(sections, section{body: bs, data: data, crlf: crlf})
	}
	for _, bs := range options.BinarySection {
		data, crlf, err := binarySection(m.sum, m.raw, bs.Part, bare)
		if err != nil {
			return err
		}
		if bs.Partial != nil {
			data, crlf = partialCRLF(data, crlf, bs.Partial.Offset, bs.Partial.Size)
		}
		sections = append(sections, section{binary: bs, data: data, crlf: crlf})
	}
	var binarySizes []uint32
	for _, bs := range options.BinarySectionSize {
		data, crlf, err := binarySection(m.sum, m.raw, bs.Part, bare)
		if err != nil {
			return err
		}
		binarySizes = append(binarySizes, uint32(min(presentedLen(data, crlf), 1<<32-1)))
	}

	r := w.CreateMessage(uint32(m.pos + 1))
	if options.UID {
		r.WriteUID(imap.UID(uid))
	}
	if options.Flags || seenNow {
		r.WriteFlags(imapFlags(flags))
	}
	if options.ModSeq {
		r.WriteModSeq(modSeq)
	}
	if options.InternalDate {
		r.WriteInternalDate(m.info.Received)
	}
	if options.RFC822Size {
		r.WriteRFC822Size(m.info.IMAPSize)
	}
	if options.Envelope {
		r.WriteEnvelope(m.env)
	}
	if options.BodyStructure != nil {
		if m.rendered != nil {
			r.WriteBodyStructureBytes(true, m.rendered)
		} else {
			r.WriteBodyStructure(bodyStructure(m.structure()))
		}
	}
	for _, sec := range sections {
		var lw interface {
			Write([]byte) (int, error)
			Close() error
		}
		size := presentedLen(sec.data, sec.crlf)
		if sec.body != nil {
			lw = r.WriteBodySection(sec.body, size)
		} else {
			lw = r.WriteBinarySection(sec.binary, size)
		}
		var err error
		if sec.crlf {
			err = mailparse.WriteCRLF(lw, sec.data)
		} else {
			_, err = lw.Write(sec.data)
		}
		if err != nil {
			lw.Close()
			r.Close()
			return err
		}
		if err := lw.Close(); err != nil {
			r.Close()
			return err
		}
	}
	for i, bs := range options.BinarySectionSize {
		r.WriteBinarySectionSize(bs, binarySizes[i])
	}
	return r.Close()
}

func imapFlags(l []string) []imap.Flag {
	out := make([]imap.Flag, len(l))
	for i, f := range l {
		out[i] = imap.Flag(f)
	}
	return out
}

// bodySection returns BODY[section]<partial>; a section the message does
// not have is empty. bare says the message has bare LFs; crlf that data
// still has some, to be written as CRLF.
func bodySection(sum *mailparse.Summary, raw []byte, bs *imap.FetchItemBodySection, bare bool) (data []byte, crlf bool) {
	start, end, ok := sum.Section(bs.Part, string(bs.Specifier))
	if !ok || end > int64(len(raw)) {
		return nil, false
	}
	return headerSection(raw[start:end], bs, bare)
}

// headerSection returns the fields bs names of a section (all of it if it
// names none), <partial> applied; crlf is as for bodySection.
func headerSection(data []byte, bs *imap.FetchItemBodySection, crlf bool) ([]byte, bool) {
	switch {
	case len(bs.HeaderFields) > 0:
		data, crlf = appendHeaderFields(nil, data, bs.HeaderFields, false), false
	case len(bs.HeaderFieldsNot) > 0:
		data, crlf = appendHeaderFields(nil, data, bs.HeaderFieldsNot, true), false
	}
	if bs.Partial != nil {
		data, crlf = partialCRLF(data, crlf, bs.Partial.Offset, bs.Partial.Size)
	}
	return data, crlf
}

// binarySection returns BINARY[part]: the part's body without its transfer
// encoding; BINARY[] is the whole message. bare and crlf are as for
// bodySection: a text encoding is decoded from the CRLF form, as the
// message is presented so.
func binarySection(sum *mailparse.Summary, raw []byte, path []int, bare bool) (data []byte, crlf bool, err error) {
	if len(path) == 0 {
		return raw, bare, nil
	}
	p := findPart(sum.Structure, path)
	if p == nil || p.End > int64(len(raw)) {
		return nil, false, nil
	}
	body := raw[p.BodyStart:p.End]
	switch p.Encoding {
	case "7BIT", "8BIT", "BINARY":
		return body, bare, nil
	}
	if p.Type == "multipart" {
		return body, bare, nil
	}
	if bare && p.BareLFs > 0 && p.Encoding != "BASE64" {
		body = mailparse.AppendCRLF(nil, body)
	}
	data, ok := appendDecoded(nil, body, p.Encoding)
	if !ok {
		return nil, false, &imap.Error{Type: imap.StatusResponseTypeNo, Code: "UNKNOWN-CTE",
			Text: fmt.Sprintf("Part %s has the unknown transfer encoding %q; fetch it with BODY[] instead", partPath(path), p.Encoding)}
	}
	return data, false, nil
}

// partialCRLF returns the <offset.size> slice of data as presented: of its
// CRLF form when crlf is set, converting only that slice.
func partialCRLF(data []byte, crlf bool, offset, size int64) ([]byte, bool) {
	if !crlf {
		return partial(data, offset, size), false
	}
	return mailparse.AppendCRLFRange(nil, data, offset, size), false
}

// presentedLen is the length of data as written: with bare LFs as CRLF
// when crlf is set.
func presentedLen(data []byte, crlf bool) int64 {
	if crlf {
		return mailparse.CRLFLen(data)
	}
	return int64(len(data))
}

func partPath(path []int) string {
	var b strings.Builder
	for i, n := range path {
		if i > 0 {
			b.WriteByte('.')
		}
		fmt.Fprint(&b, n)
	}
	return b.String()
}

// writeVanished answers QRESYNC's VANISHED modifier (and the SELECT
// parameter, which the library turns into it): the UIDs of numSet removed
// from the folder after the mod-sequence since, as VANISHED (EARLIER).
func (s *session) writeVanished(t *backend.Tenant, sel *selection, w *imapserver.FetchWriter, numSet imap.NumSet, since uint64) error {
	gone, err := t.Vanished(s.login, sel.ref.info.ID, since)
	if err != nil {
		return s.fail("fetch", err)
	}
	if len(gone) == 0 {
		return nil
	}
	asked, ok := numSet.(imap.UIDSet)
	if !ok {
		return nil
	}
	if imap.IsSearchRes(asked) {
		asked = imap.UIDSetNum(uids32(s.saved)...)
	}
	var out imap.UIDSet
	for _, r := range asked {
		// "*" is the largest UID; gaps end below UIDNEXT anyway.
		lo, hi := resolveRange(uint32(r.Start), uint32(r.Stop), ^uint32(0))
		for _, g := range gone {
			if a, b := max(lo, g.Lo), min(hi, g.Hi); a <= b {
				out = append(out, imap.UIDRange{Start: imap.UID(a), Stop: imap.UID(b)})
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return w.WriteVanished(compactUIDs(out))
}

// compactUIDs sorts ranges and merges those that overlap or touch.
func compactUIDs(set imap.UIDSet) imap.UIDSet {
	slices.SortFunc(set, func(a, b imap.UIDRange) int { return cmp.Compare(a.Start, b.Start) })
	out := set[:1]
	for _, r := range set[1:] {
		last := &out[len(out)-1]
		if uint64(r.Start) <= uint64(last.Stop)+1 {
			last.Stop = max(last.Stop, r.Stop)
		} else {
			out = append(out, r)
		}
	}
	return out
}
