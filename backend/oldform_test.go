package backend

import (
	"context"
	"testing"

	"github.com/tidwall/buntdb"

	"github.com/mailvault/mailvault/mailparse"
)

// writeOldForm stores the summaries of mids as a parser before versions
// wrote them, the way such a tenant's files hold them: the summary's JSON
// alone (records before heads), without bare-LF counts, with address groups
// flattened to their members, without the Date field as written or source
// routes; and message records without the bare-LF count or the parser
// version. The messages, their chain, UIDs and folders stay as they are;
// the records replaced are wiped, as such a tenant never had them.
func writeOldForm(t testing.TB, tn *Tenant, mids []uint64) {
	t.Helper()
	ctx := context.Background()
	recs := make([][]byte, len(mids))
	for i, mid := range mids {
		raw, err := tn.RawMessage(ctx, mid)
		if err != nil {
			t.Fatal(err)
		}
		s := mailparse.Parse(raw, mailparse.Options{MaxText: -1})
		oldSummary(s)
		js, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = tn.seal.SealUncompressed(js, appendSummaryAAD(nil, tn.seal, tn.msgs[mid-1].sum))
	}
	tn.wmu.Lock()
	defer tn.wmu.Unlock()
	offs, err := tn.sums.Append(recs)
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.sums.Sync(); err != nil {
		t.Fatal(err)
	}
	tn.mu.Lock()
	defer tn.mu.Unlock()
	var replaced []int64
	err = tn.db.Update(func(tx *buntdb.Tx) error {
		for i, mid := range mids {
			m := &tn.msgs[mid-1]
			replaced = append(replaced, m.sumOff)
			for _, mem := range m.members {
				tn.folders[mem.folder].size -= int64(m.bareLFs)
			}
			m.sumOff, m.bareLFs, m.parser = offs[i], 0, 0
			if _, _, err := tx.Set(msgKey(mid), encodeMsg(m), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.sums.Wipe(replaced); err != nil {
		t.Fatal(err)
	}
}

// oldSummary takes from s what parsers before versions did not derive.
func oldSummary(s *mailparse.Summary) {
	oldEnvelope(&s.Envelope)
	var parts func(p *mailparse.Part)
	parts = func(p *mailparse.Part) {
		if p == nil {
			return
		}
		p.BareLFs = 0
		for _, c := range p.Children {
			parts(c)
		}
		parts(p.Message)
		if p.MessageEnvelope != nil {
			oldEnvelope(p.MessageEnvelope)
		}
	}
	parts(s.Structure)
}

func oldEnvelope(e *mailparse.Envelope) {
	e.RawDate = ""
	for _, l := range []*[]mailparse.Address{&e.From, &e.Sender, &e.ReplyTo, &e.To, &e.Cc, &e.Bcc} {
		var flat []mailparse.Address
		for _, a := range *l {
			if !a.IsGroupMark() {
				a.Route = ""
				flat = append(flat, a)
			}
		}
		*l = flat
	}
}
